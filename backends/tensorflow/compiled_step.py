"""A compiled function called with a flat list of tensors: :class:`FlatCompiled`.

``tf.function`` spends most of the fixed cost of a call before anything runs: at every call
it binds the arguments to its signature, works out a type for each of them and casts each
tensor to it, and packs the outputs back into their nesting. For a training step that takes
and returns 20 parameter and optimizer-state arrays that is over a millisecond per call
(TensorFlow 2.21 on a CPU), about as long as the step's arithmetic itself, where a Keras step
keeps its variables in place and passes none.

:class:`FlatCompiled` keeps the contract pure (arrays in, new arrays out, nothing mutated) and
removes that cost instead: the function is traced once per kind of arguments as a function of
a flat list of tensors, and called through the traced function's flat entry point with the
caller's tensors in the order :func:`portable_dl.tree.tree_flatten` gives them. The key that
picks the trace (the nesting, each tensor's dtype and shape, each Python scalar's type and
value) is what ``tf.function`` itself would key on, so a new shape, dtype or tree traces anew
and never reuses a trace that does not fit. Anything else among the arguments (variables,
NumPy arrays, symbolic tensors inside another traced function) goes through ``tf.function``
as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from portable_dl.tree import tree_flatten, tree_unflatten

__all__ = ["FlatCompiled"]

#: Python values a ``tf.function`` keys its traces on by value.
_PYTHON_SCALARS = (bool, int, float, complex, str, type(None))

#: The class of computed (eager) tensors; symbolic tensors inside a trace are of another. Set by
#: the first :class:`FlatCompiled` (:func:`_eager_tensor_type`), before any call needs it.
_EAGER_TENSOR: Any = None


def _eager_tensor_type() -> type:
    """``EagerTensor`` (TensorFlow does not export it), from a tensor made outside any trace.
    Found when the first function is compiled rather than at import: making a tensor starts
    TensorFlow's runtime, and on a GPU its memory allocator."""
    global _EAGER_TENSOR
    if _EAGER_TENSOR is None:
        with tf.init_scope():
            _EAGER_TENSOR = type(tf.constant(0))
    return _EAGER_TENSOR


def _call_structure(tree: Any, tensors: list) -> Any:
    """A hashable key for arguments ``tree`` without the tensors' shapes: the nesting of dicts,
    lists and tuples (by their exact types and dict keys, in order), each eager tensor's dtype
    and each Python scalar's type and value. The eager tensors are appended to ``tensors`` in
    flattening order. None when ``tree`` holds anything else (then only ``tf.function`` can
    pick the trace); ``tensors`` is then incomplete."""
    kind = type(tree)
    if kind is _EAGER_TENSOR:
        tensors.append(tree)
        return tree.dtype
    if kind in _PYTHON_SCALARS:
        return (kind, tree)
    if kind is dict:
        items = []
        for key, value in tree.items():
            structure = _call_structure(value, tensors)
            if structure is None or type(key) not in _PYTHON_SCALARS:
                return None
            items.append((key, structure))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        items = []
        for item in tree:
            structure = _call_structure(item, tensors)
            if structure is None:
                return None
            items.append(structure)
        return (kind, tuple(items))
    return None


class _Trace:
    """One traced function of flat tensors, and how its flat outputs become ``f``'s result.

    ``outputs`` says where each leaf of the result comes from: ``("output", i)`` the i-th
    output of the traced function, ``("input", i)`` the caller's i-th tensor returned as it is
    (a frozen parameter: the very same array, no copy), ``("static", value)`` a Python value
    the function returned."""

    __slots__ = ("_call", "concrete", "output_def", "outputs")

    def __init__(self, concrete: Any, output_def: Any, outputs: list[tuple[str, Any]]):
        self.concrete = concrete
        self.output_def = output_def
        self.outputs = outputs
        # ``_call_flat`` is the entry point behind ConcreteFunction.__call__ once the arguments
        # are bound and flattened (it still records the call on a watching GradientTape). A
        # TensorFlow without it gets the public call, slower but correct.
        call_flat = getattr(concrete, "_call_flat", None)
        if call_flat is None:
            self._call = lambda tensors: concrete(*tensors)
        else:
            self._call = lambda tensors: call_flat(tensors, concrete.captured_inputs)

    def __call__(self, tensors: list) -> Any:
        flat = self._call(tensors)
        leaves = [
            flat[where] if source == "output" else tensors[where] if source == "input" else where
            for source, where in self.outputs
        ]
        return tree_unflatten(self.output_def, leaves)


class FlatCompiled:
    """``f`` compiled by ``tf.function(jit_compile=jit_compile)`` and called with flat tensors.

    ``FlatCompiled(f)(*args, **kwargs)`` returns what ``f(*args, **kwargs)`` returns, computed
    by the compiled trace: the same nesting of dicts, lists and tuples, with new tensors where
    ``f`` computed them. Nothing passed in is changed, so old arguments stay valid after a call
    and a call that raises leaves them as they were.
    """

    def __init__(self, f: Callable, *, jit_compile: bool = True):
        self._f = f
        self._jit_compile = jit_compile
        _eager_tensor_type()
        # Arguments that are not all eager tensors and Python scalars go here. Traces keep
        # every dimension known (no ``reduce_retracing``): a trace with unknown dimensions hands
        # ``None`` to code that reads shapes (checks, their messages, sizes it computes), and
        # XLA compiles for each shape anyway.
        self._function = tf.function(f, jit_compile=jit_compile, autograph=False)
        self._flat_functions: dict[Any, tuple[Any, dict]] = {}  # call structure -> (tf.function, plans)
        self._traces: dict[Any, _Trace] = {}  # (call structure, shapes) -> trace
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not tf.executing_eagerly():  # inside another traced function: it inlines this one
            return self._function(*args, **kwargs)
        tensors: list = []
        structure = _call_structure((args, kwargs), tensors)
        if structure is None:
            return self._function(*args, **kwargs)
        key = (structure, tuple(tuple(tensor.shape.as_list()) for tensor in tensors))
        trace = self._traces.get(key)
        if trace is None:
            trace = self._traces[key] = self._trace(structure, args, kwargs, tensors)
        return trace(tensors)

    @property
    def trace_count(self) -> int:
        """How many traces the flat path holds (one per call structure and shapes)."""
        return len(self._traces)

    def _trace(self, structure: Any, args: tuple, kwargs: dict, tensors: list) -> _Trace:
        """The trace for arguments like ``args`` and ``kwargs`` (``tensors`` are their eager
        tensors): one ``tf.function`` of flat tensors per call structure, traced for these shapes."""
        if structure not in self._flat_functions:
            self._flat_functions[structure] = self._flat_function(args, kwargs)
        function, plans = self._flat_functions[structure]
        concrete = function.get_concrete_function(*tensors)
        output_def, outputs = plans[concrete.graph]
        return _Trace(concrete, output_def, outputs)

    def _flat_function(self, args: tuple, kwargs: dict) -> tuple[Any, dict]:
        """``f`` as a ``tf.function`` of the eager tensors among ``args`` and ``kwargs`` (in
        flattening order), the Python scalars among them fixed, returning the tensors ``f``
        computes as a flat list. Each trace leaves in ``plans`` (keyed by its graph) how to
        rebuild ``f``'s result from that list."""
        leaves, treedef = tree_flatten((args, kwargs))
        positions = [index for index, leaf in enumerate(leaves) if type(leaf) is _EAGER_TENSOR]
        # The Python scalars stay; the tensors' places are filled at each trace (holding on to
        # this call's tensors would keep them alive as long as the step).
        static = [None if type(leaf) is _EAGER_TENSOR else leaf for leaf in leaves]
        plans: dict = {}

        def f_of_tensors(*tensors: Any) -> list:
            values = list(static)
            for position, tensor in zip(positions, tensors):
                values[position] = tensor
            call_args, call_kwargs = tree_unflatten(treedef, values)
            result_leaves, result_def = tree_flatten(self._f(*call_args, **call_kwargs))
            inputs = {id(tensor): index for index, tensor in enumerate(tensors)}
            computed: list = []
            outputs: list[tuple[str, Any]] = []
            for leaf in result_leaves:
                if id(leaf) in inputs:
                    outputs.append(("input", inputs[id(leaf)]))
                elif isinstance(leaf, (tf.Tensor, tf.Variable)):
                    outputs.append(("output", len(computed)))
                    computed.append(leaf)
                else:
                    outputs.append(("static", leaf))
            plans[tf.compat.v1.get_default_graph()] = (result_def, outputs)
            return computed

        function = tf.function(f_of_tensors, jit_compile=self._jit_compile, autograph=False)
        return function, plans
