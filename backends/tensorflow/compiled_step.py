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

What a call costs now (TensorFlow 2.21, 2-core CPU, the MLP[784, 256, 256, 10] Adam step of
``bench/train_step.py``, 21 tensors in and 20 out; CPU time, medians under load): the Python
side of a call is about 70 us on top of the flat call itself, against 150 to 250 us before
this module picked its key by the tensors' dtype enums and shape tuples (no ``TensorShape``
built), rebuilt the result by one expression compiled per trace (walking the output's tree
cost about 70 us) and called the atomic function directly when no tape can record (the
checks and output packing of ``ConcreteFunction._call_flat``); ``tf.function`` itself takes
about 800 us for the native Keras step's two arguments. What remains is TensorFlow's: the
device scope (about 10 us), the flat call's own dispatch (about 40 us for 21 tensors against
one) and running the XLA program, which is the same work as the Keras step's (the same 8
dots; 43 fusions against 36 and 4 copies).

Why not keep the state in ``tf.Variable`` objects inside the compiled step, as Keras does:
updated in place, variables spare the XLA program its 20 new output buffers (297 us against
372 to 437 us for a trivial update of these 20 arrays), but only while nothing else holds
their values. A pure step's caller holds the old parameters during the call (``params, state,
loss = step(params, state, batch)``), so TensorFlow copies each variable before updating it
(857 to 964 us for the same update). Passing the tensors is also cheaper than reading and
assigning variables on the dispatch side (74 us against 90 us for 20 small tensors). The pure
contract and in-place variables cannot both gain; several steps per call
(``steps_per_call``) amortize the fixed cost instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import tensorflow as tf

try:  # which GradientTapes could record a call: the check ``ConcreteFunction._call_flat`` makes first
    from tensorflow.python.ops.gradients_util import POSSIBLE_GRADIENT_TYPES_NONE as _NO_TAPE
    from tensorflow.python.ops.gradients_util import PossibleTapeGradientTypes as _possible_tape_gradients
except ImportError:  # another TensorFlow: every call goes through ``_call_flat``
    _NO_TAPE = _possible_tape_gradients = None

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


def _call_key(tree: Any, tensors: list) -> Any:
    """A hashable key for arguments ``tree``: the nesting of dicts, lists and tuples (by their
    exact types and dict keys, in order), each eager tensor's dtype and shape and each Python
    scalar's type and value: what ``tf.function`` keys its traces on. The eager tensors are
    appended to ``tensors`` in flattening order. None when ``tree`` holds anything else (then
    only ``tf.function`` can pick the trace); ``tensors`` is then incomplete.

    It runs at every call, so it reads each tensor's dtype and shape by the cheapest way
    there is (the dtype's enum, the shape as a tuple: no ``TensorShape`` is built)."""
    kind = type(tree)
    if kind is _EAGER_TENSOR:
        tensors.append(tree)
        return (tree._datatype_enum(), tree._shape_tuple())
    if kind in _PYTHON_SCALARS:
        return (kind, tree)
    if kind is dict:
        items = []
        for key, value in tree.items():
            part = _call_key(value, tensors)
            if part is None or type(key) not in _PYTHON_SCALARS:
                return None
            items.append((key, part))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        items = []
        for item in tree:
            part = _call_key(item, tensors)
            if part is None:
                return None
            items.append(part)
        return (kind, tuple(items))
    return None


def _builder(treedef: Any, outputs: list[tuple[str, Any]]) -> Callable[[Any, list], Any]:
    """``build(flat, tensors)``: the result of nesting ``treedef`` with the leaves ``outputs``
    names (see :class:`_Trace`), from the traced function's outputs ``flat`` and the caller's
    ``tensors``.

    The nesting is written out once as one Python expression (``{"layers": [{"W": o[0], ...``)
    and compiled, so that a call builds its result without walking ``treedef``: for a training
    step's 20 outputs that walk costs as much as the rest of the Python side of the call. Dict
    keys and returned Python values are looked up in lists, never written into the source."""
    keys: list = []
    statics: list = []
    leaves = iter(outputs)

    def source(node: Any) -> str:
        if node.kind == "leaf":
            where, index = next(leaves)
            if where == "output":
                return f"o[{index}]"
            if where == "input":
                return f"t[{index}]"
            statics.append(index)
            return f"s[{len(statics) - 1}]"
        if node.kind == "none":
            return "None"
        items = [source(child) for child in node.children]
        if node.kind == "dict":
            keys.extend(node.keys)
            first = len(keys) - len(node.keys)
            return "{" + ", ".join(f"k[{first + i}]: {item}" for i, item in enumerate(items)) + "}"
        if node.kind == "list":
            return "[" + ", ".join(items) + "]"
        return "(" + "".join(item + ", " for item in items) + ")"

    try:
        expression = source(treedef)
        build = eval(f"lambda o, t: {expression}", {"k": keys, "s": statics})  # noqa: S307 (our own source)
    except (RecursionError, SyntaxError, MemoryError):  # a nesting too deep to write out
        plan = list(outputs)

        def build(flat: Any, tensors: list) -> Any:
            leaves = [flat[i] if where == "output" else tensors[i] if where == "input" else i for where, i in plan]
            return tree_unflatten(treedef, leaves)

    return build


class _Trace:
    """One traced function of flat tensors, and how its flat outputs become ``f``'s result.

    ``outputs`` says where each leaf of the result comes from: ``("output", i)`` the i-th
    output of the traced function, ``("input", i)`` the caller's i-th tensor returned as it is
    (a frozen parameter: the very same array, no copy), ``("static", value)`` a Python value
    the function returned."""

    __slots__ = ("_atomic", "_build", "_call_flat", "concrete")

    def __init__(self, concrete: Any, output_def: Any, outputs: list[tuple[str, Any]]):
        self.concrete = concrete
        self._build = _builder(output_def, outputs)
        # ``_call_flat`` is the entry point behind ConcreteFunction.__call__ once the arguments
        # are bound and flattened (it records the call on a watching GradientTape). When no
        # tape can watch the call and the function captures nothing (a variable read inside
        # needs the tape's bookkeeping), it ends in the atomic function's own ``call_flat``:
        # called here directly, as a list in and a list out. A TensorFlow without these entry
        # points gets the public call, slower but correct.
        call_flat = getattr(concrete, "_call_flat", None)
        atomic = getattr(concrete, "_inference_function", None)
        self._atomic = None
        if call_flat is None:
            self._call_flat = lambda tensors: concrete(*tensors)
            return
        captured = concrete.captured_inputs
        self._call_flat = lambda tensors: call_flat(tensors, captured)
        if not captured and _NO_TAPE is not None and callable(getattr(atomic, "call_flat", None)):
            self._atomic = atomic.call_flat

    def __call__(self, tensors: list) -> Any:
        if self._atomic is not None and _possible_tape_gradients(tensors) == _NO_TAPE:
            return self._build(self._atomic(*tensors), tensors)
        return self._build(self._call_flat(tensors), tensors)


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
        self._traces: dict[Any, _Trace] = {}  # call key -> trace
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not tf.executing_eagerly():  # inside another traced function: it inlines this one
            return self._function(*args, **kwargs)
        tensors: list = []
        key = _call_key((args, kwargs), tensors)
        if key is None:
            return self._function(*args, **kwargs)
        trace = self._traces.get(key)
        if trace is None:
            trace = self._traces[key] = self._trace(args, kwargs, tensors)
        return trace(tensors)

    @property
    def trace_count(self) -> int:
        """How many traces the flat path holds (one per call structure and shapes)."""
        return len(self._traces)

    def _trace(self, args: Any, kwargs: dict, tensors: list) -> _Trace:
        """The trace for arguments like ``args`` and ``kwargs`` (``tensors`` are their eager
        tensors): a ``tf.function`` of the flat tensors, traced for these shapes and dtypes."""
        function, plans = self._flat_function(args, kwargs)
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
