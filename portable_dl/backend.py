"""The Backend contract: what every adapter gives the front end.

A Backend bundles, for one framework on one device:

========================  ==============================================================
``name``, ``version``     identity: ``"torch"``, ``"2.13.0"``
``devices()``, ``device`` device strings: ``"cpu"``, ``"cuda:0"``, ``"gpu"``, ``"mps"``
``xp``                    an array-API namespace for the framework
``asarray``/``to_numpy``  data in and out; NumPy is the lingua franca
``value_and_grad``/``grad`` the framework's OWN reverse-mode autodiff over pytrees
``compile(f)``            the framework's own compiler (identity where there is none)
``scan(f, carry, xs)``    ``f`` over the leading axis of ``xs``, in the framework's own loop
``synchronize(tree)``     wait for lazy or asynchronous work, so timings are honest
``supports(dtype)``       whether this backend on this device can compute in ``dtype``
``distributed_engine``    the framework's own multi-process engine (none by default)
``fused_update(opt)``     an optional faster eager optimizer update (none by default)
``kernel(name)``          an optional framework implementation of a front-end function
                          named in :data:`KERNEL_NAMES` (none by default)
========================  ==============================================================

Adapters subclass :class:`Backend` and implement the abstract members. The pytree and
``argnums`` handling of ``value_and_grad`` is written once here: an adapter only says how
its framework differentiates a function of a flat list of arrays
(:meth:`Backend._value_and_grad_of_leaves`).

This module imports no framework.
"""

from __future__ import annotations

import abc
import functools
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import BackendUnavailable, DistributedError, DTypeError, ShapeError
from .tree import tree_flatten, tree_map, tree_unflatten

__all__ = [
    "Backend",
    "require_framework",
    "STANDARD_DTYPE_NAMES",
    "HALF_DTYPE_NAMES",
    "DTYPE_NAMES",
    "FLOAT_DTYPE_NAMES",
    "KERNEL_NAMES",
]

#: The dtypes of the array API standard (2024.12, ``data_types.rst``): the one list of them.
#: ``backends/_common/surface.py`` takes its ``DTYPES`` from here (the front end may not import
#: the backends, so the list lives on this side).
STANDARD_DTYPE_NAMES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
#: The half-precision floats, an extension of the standard: each namespace that has them
#: exposes ``xp.float16`` and ``xp.bfloat16`` (NumPy's bfloat16 comes from ``ml_dtypes``).
#: ``Backend.supports`` says whether one is usable on a backend's device.
HALF_DTYPE_NAMES = ("float16", "bfloat16")
#: The dtypes portable_dl moves between backends (checkpoints, ``asarray``): the standard's
#: but the complex ones, which not every backend's autodiff and serialisation carries, and
#: the half-precision floats.
DTYPE_NAMES = tuple(name for name in STANDARD_DTYPE_NAMES if not name.startswith("complex")) + HALF_DTYPE_NAMES
FLOAT_DTYPE_NAMES = ("float32", "float64")
#: The front-end functions a backend may implement with its framework's own kernels
#: (:meth:`Backend.kernel`); the contract of each is in that method's docstring.
KERNEL_NAMES = ("relu", "cross_entropy")


def require_framework(module: str, backend: str, extra: str | None = None) -> None:
    """Raise :class:`BackendUnavailable` naming the extra to install when ``module``
    cannot be found. Looks the module up without importing it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendUnavailable(
            f"the {backend} backend needs {module}, which is not installed: "
            f'pip install "portable-dl[{extra or backend}]"'
        )


class Backend(abc.ABC):
    """One framework on one device, seen through the contract above.

    Subclasses set ``name`` (the registry name) and implement the abstract members.
    """

    #: registry name, also the name of the pip extra that installs the framework
    name: str = ""

    def __init__(self, device: str | None = None):
        known = self.devices()
        chosen = device if device is not None else self.default_device()
        chosen = self.canonical_device(chosen)
        if chosen not in known:
            raise BackendUnavailable(
                f"device {device!r} is not available to the {self.name} backend; available devices: {', '.join(known)}"
            )
        self._device = chosen

    # ------------------------------------------------------------------ identity
    @property
    @abc.abstractmethod
    def version(self) -> str:
        """The framework's version string."""

    @abc.abstractmethod
    def devices(self) -> list[str]:
        """Device strings this backend can run on here, default first: ``["cpu", "cuda:0"]``."""

    def default_device(self) -> str:
        """The device a backend created without ``device=`` runs on: the framework's own default."""
        return self.devices()[0]

    def canonical_device(self, device: str) -> str:
        """Spell ``device`` as :meth:`devices` does (``"cuda"`` -> ``"cuda:0"``)."""
        return str(device).lower()

    @property
    def device(self) -> str:
        """The device arrays of this backend live on."""
        return self._device

    @property
    @abc.abstractmethod
    def xp(self) -> Any:
        """The array-API namespace of this framework."""

    @abc.abstractmethod
    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this framework, including an array being traced
        by its autodiff or its compiler. Lets front-end code that is given only arrays
        (``model.apply(params, x)``) find its namespace: :func:`portable_dl.backend_of`."""

    # --------------------------------------------------------------------- dtypes
    def supports(self, dtype: Any) -> bool:
        """Whether this backend, on its device, computes in ``dtype`` (a name or a dtype)."""
        try:
            self.dtype(dtype)
        except DTypeError:
            return False
        return True

    def dtype(self, dtype: Any) -> Any:
        """The framework dtype for ``dtype``: a name such as ``"float32"``, a NumPy dtype, or
        already a framework dtype. Raises :class:`DTypeError` when unsupported here."""
        name = self.dtype_name(dtype)
        unsupported = self._unsupported_dtype_reason(name)
        if unsupported:
            raise DTypeError(unsupported)
        return getattr(self.xp, name)

    def dtype_name(self, dtype: Any) -> str:
        """The standard's name of ``dtype`` (``"float32"``), whatever object spells it."""
        if isinstance(dtype, str):
            name = dtype
        else:
            name = _name_of_dtype_object(dtype)
        if name not in DTYPE_NAMES:
            raise DTypeError(f"{dtype!r} is not one of the dtypes portable_dl supports: {', '.join(DTYPE_NAMES)}")
        return name

    def _unsupported_dtype_reason(self, name: str) -> str | None:
        """Why ``name`` cannot be used here, or None. Adapters override (MLX GPU has no float64)."""
        return None

    def is_concrete(self, x: Any) -> bool:
        """Whether ``x``'s values exist now, rather than being traced symbolically by a
        compiler (``jax.jit``, ``tf.function``, ``torch.compile``). Front-end checks that
        read values (labels in range) run only on concrete arrays. Adapters override; the
        default, True, suits eager-only backends."""
        return True

    def fused_update(self, optimizer: Any) -> Callable | None:
        """An optional faster eager implementation of ``optimizer``'s update (multi-tensor
        kernels), or None (the default): the optimizer then runs its pure per-parameter rule.

        The function returned is called only on concrete arrays (:meth:`is_concrete`) as
        ``fused(params, grads, slots, lr, t) -> (new_params, new_slots)`` or None, where
        ``params`` and ``grads`` are equal-length lists of the trainable arrays, all of one
        floating dtype, the gradients already clipped but not yet weight-decayed; ``slots`` the
        list of their slot dicts; ``lr`` and ``t`` the learning rate and update number exactly
        as :meth:`portable_dl.optimizers.Optimizer.update_single` receives them. It must apply
        weight decay and the rule with the same operations in the same order as the pure
        update (the conformance case ``fused_optimizers`` checks it against the pure path),
        mutate nothing it is given, and return None to decline (an option or an array it does
        not handle), in which case the pure path runs."""
        return None

    def kernel(self, name: str) -> Callable | None:
        """The framework's own implementation of the front-end function ``name`` (one of
        :data:`KERNEL_NAMES`), or None (the default): the front end then evaluates its pure
        expression, which stays the reference (the conformance family ``native_kernels``
        checks each kernel's values and gradients against it on the same backend).

        A kernel must compute the same values (to a few ulps) and, by this backend's
        :meth:`value_and_grad`, the same gradients as the pure expression, conventions
        included, in eager code, inside ``value_and_grad`` (nested too) and inside
        :meth:`compile`; where it cannot, this method returns None. The front end calls it
        only with arrays this backend owns, after every check of its arguments:

        ``"relu"``: ``kernel(x) -> y``, ``x`` a floating array of any shape, ``y`` of ``x``'s
            shape and dtype: ``x`` where ``x > 0``, else ``+0.0``; NaN stays NaN; the
            derivative is 1 where ``x > 0`` (the smallest subnormal too) and 0 where
            ``x <= 0`` (``relu'(0) = 0``).
        ``"cross_entropy"``: ``kernel(logits, labels, label_smoothing, reduction) -> loss``,
            ``logits`` floating ``(N, C)`` (float32 or float64; half precision is cast to
            float32 before), ``labels`` integer ``(N,)`` whose values were read and found in
            ``[0, C)`` (never called where a compiler traces them), ``label_smoothing`` a
            Python float in [0, 1], ``reduction`` ``"mean"``, ``"sum"`` or ``"none"``: with
            ``e = label_smoothing`` each sample's loss is
            ``-((1 - e) log_softmax(logits)[i, labels[i]] + e * mean_c log_softmax(logits)[i, c])``,
            reduced to the mean over N, the sum, or kept as ``(N,)``; of ``logits``' dtype.
        """
        return None

    # ------------------------------------------------------------ data in and out
    @abc.abstractmethod
    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """An array of this backend on its device from ``x`` (NumPy array, nested lists,
        Python scalar, or an array of this backend). ``dtype`` as for :meth:`dtype`;
        None keeps ``x``'s dtype (Python floats become the default float dtype)."""

    @abc.abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy array with the same values, shape and dtype as the array ``x``."""

    def tree_asarray(self, tree: Any, dtype: Any = None) -> Any:
        """:meth:`asarray` leaf by leaf over a pytree."""
        return tree_map(lambda leaf: self.asarray(leaf, dtype), tree)

    def tree_to_numpy(self, tree: Any) -> Any:
        """:meth:`to_numpy` leaf by leaf over a pytree."""
        return tree_map(self.to_numpy, tree)

    # ------------------------------------------------------------------ autodiff
    def value_and_grad(self, f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
        """Return ``g`` with ``g(*args) == (f(*args), gradient)``, by the framework's own
        reverse-mode autodiff.

        ``f`` must return a scalar (shape ``()``) floating-point array, or ``(scalar, aux)``
        when ``has_aux`` is true, in which case ``g`` returns ``((scalar, aux), gradient)``.
        The arguments at ``argnums`` are pytrees of floating-point arrays; the gradient has
        the same structure and dtypes. With an int ``argnums`` the gradient is that of one
        argument; with a tuple it is a tuple, one per argument, in the order of ``argnums``
        (``(1, 0)`` gives ``(d/d arg1, d/d arg0)``). Negative ``argnums`` count from the last
        positional argument, as in JAX; naming an argument twice raises TypeError.

        ``f`` runs inside :func:`portable_dl.using` (this backend), so front-end code in it
        finds this backend's namespace even where another backend owns the same arrays.
        """
        _check_argnums(argnums)

        def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
            positions = _positions(argnums, len(args))
            if self._is_current():  # no `with` while a compiler traces (see _is_current)
                return self._value_and_grad_at(f, positions, isinstance(argnums, int), has_aux, args)
            from .registry import using

            with using(self):
                return self._value_and_grad_at(f, positions, isinstance(argnums, int), has_aux, args)

        return value_and_grad_f

    def grad(self, f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable:
        """Like :meth:`value_and_grad` but returns only the gradient (``(gradient, aux)``
        when ``has_aux`` is true)."""
        value_and_grad_f = self.value_and_grad(f, argnums, has_aux)

        def grad_f(*args: Any) -> Any:
            value, gradient = value_and_grad_f(*args)
            return (gradient, value[1]) if has_aux else gradient

        return grad_f

    def _value_and_grad_at(self, f: Callable, positions: tuple, single: bool, has_aux: bool, args: tuple) -> tuple:
        """The work of :meth:`value_and_grad`: flatten the arguments at ``positions``,
        differentiate by the adapter's own autodiff, rebuild the gradient trees."""
        flat, treedefs = [], []
        for position in positions:
            leaves, treedef = tree_flatten(args[position])
            self._check_differentiable(leaves, position)
            flat.append(leaves)
            treedefs.append(treedef)
        counts = [len(leaves) for leaves in flat]

        def f_of_leaves(all_leaves: list) -> tuple[Any, Any]:
            call_args = list(args)
            start = 0
            for position, treedef, count in zip(positions, treedefs, counts):
                call_args[position] = tree_unflatten(treedef, all_leaves[start : start + count])
                start += count
            out = f(*call_args)
            value, aux = _split_aux(out, has_aux)
            _check_scalar(value)
            return value, aux

        all_leaves = [leaf for leaves in flat for leaf in leaves]
        value, aux, grads = self._value_and_grad_of_leaves(f_of_leaves, all_leaves)
        grad_trees, start = [], 0
        for treedef, count in zip(treedefs, counts):
            grad_trees.append(tree_unflatten(treedef, grads[start : start + count]))
            start += count
        gradient = grad_trees[0] if single else tuple(grad_trees)
        return ((value, aux) if has_aux else value), gradient

    def _is_current(self) -> bool:
        """Whether the innermost :func:`portable_dl.using` block is this backend's. Then
        nothing needs entering, which keeps a compiled step's graph whole: :meth:`compile`
        enters the block outside the compiled function, and TorchDynamo would break the
        graph at a ``with`` inside it."""
        from .registry import current_backend

        return current_backend() is self

    def _compiled_as_current(self, compiled: Callable, f: Callable) -> Callable:
        """``compiled`` run inside :func:`portable_dl.using` (this backend), so that
        front-end code traced by the compiler finds this backend; adapters' :meth:`compile`
        return this."""
        from .registry import using

        @functools.wraps(f)
        def run_as_current(*args: Any, **kwargs: Any) -> Any:
            if self._is_current():
                return compiled(*args, **kwargs)
            with using(self):
                return compiled(*args, **kwargs)

        return run_as_current

    @abc.abstractmethod
    def _value_and_grad_of_leaves(self, f: Callable[[list], tuple[Any, Any]], leaves: list) -> tuple[Any, Any, list]:
        """Differentiate ``f(leaves) -> (scalar, aux)`` with respect to every array in the
        list ``leaves``; return ``(scalar, aux, gradients)`` with one gradient per leaf, of the
        leaf's shape and dtype (zeros where the scalar does not depend on the leaf)."""

    def _check_differentiable(self, leaves: list, position: int) -> None:
        for leaf in leaves:
            dtype = getattr(leaf, "dtype", None)
            if dtype is None:
                raise DTypeError(
                    f"value_and_grad differentiates floating-point arrays only; argument {position} "
                    f"holds a {type(leaf).__name__}, not an array"
                )
            if not self.xp.isdtype(dtype, "real floating"):
                # The standard's name of the dtype, not the framework's repr: one message everywhere.
                try:
                    name = self.dtype_name(dtype)
                except DTypeError:
                    name = str(dtype)
                raise DTypeError(
                    f"value_and_grad differentiates floating-point arrays only; argument {position} "
                    f"holds an array of dtype {name}"
                )

    # ----------------------------------------------------------- compile and sync
    def compile(self, f: Callable) -> Callable:
        """``f`` compiled by the framework's own compiler; where there is none, ``f`` itself,
        run inside :func:`portable_dl.using` (this backend) as every compiled function is."""
        return self._compiled_as_current(f, f)

    def scan(self, f: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any) -> tuple[Any, Any]:
        """``f`` applied along the leading axis of ``xs``, threading ``carry``, as ``jax.lax.scan``:

            for i in range(k): carry, y_i = f(carry, xs[i])   ->   (carry, stack(y_0 ... y_{k-1}))

        ``xs`` is a pytree whose leaves all have the same leading length ``k >= 1``; each ``y_i``
        a pytree of arrays of one structure, stacked into leaves of shape ``(k, ...)``. ``f``
        must keep the carry's structure, shapes and dtypes; the carry comes back in the
        caller's key order. Inside :meth:`compile` this is
        the framework's own loop where it has one (``jax.lax.scan``, ``tf.while_loop``); this
        default, a Python loop, is what ``torch.compile`` and ``mx.compile`` unroll."""
        leaves, treedef = tree_flatten(xs)
        initial, ys = carry, []
        for i in range(_leading_length(leaves)):
            carry, y = f(carry, tree_unflatten(treedef, [leaf[i] for leaf in leaves]))
            ys.append(y)
        # The carry comes back in the caller's order (dicts matched by key), whatever order f
        # built it in, as on every backend (JAX's own pytrees would sort the keys).
        return tree_map(lambda _, last: last, initial, carry), tree_map(lambda *ys_i: self.xp.stack(ys_i), *ys)

    def synchronize(self, tree: Any = None) -> Any:
        """Wait until every array in ``tree`` is computed (and, on asynchronous devices,
        until the device is idle); return ``tree``."""
        return tree

    # ------------------------------------------------------------- scale-out
    def distributed_engine(self, placement: Any, timeout: float) -> Any:
        """This framework's own collectives for ``placement`` (a
        :class:`~portable_dl.distributed.Placement` of more than one process), as a
        :class:`~portable_dl.distributed.Engine`; :func:`portable_dl.distributed.init` calls it.
        Adapters with a multi-process engine override it; the default says there is none."""
        raise DistributedError(
            f"the {self.name} backend has no multi-process engine: it runs a world of one process only, "
            f"but the launcher asked for {placement.size}; use torch, jax, mlx or tensorflow to train "
            "data-parallel"
        )

    def __repr__(self) -> str:
        return f"<portable_dl backend {self.name} {self.version} on {self.device}>"


def _leading_length(leaves: list) -> int:
    """The common leading length of ``leaves`` (the arrays a :meth:`Backend.scan` runs over)."""
    lengths = {int(leaf.shape[0]) if len(getattr(leaf, "shape", ())) else None for leaf in leaves}
    if len(lengths) != 1 or None in lengths or 0 in lengths:
        raise ShapeError(f"scan needs arrays with one common leading length >= 1, got leading lengths {lengths}")
    return lengths.pop()


def _check_argnums(argnums: Any) -> None:
    """``argnums`` is an int or a non-empty tuple (or list) of distinct ints; negative ints
    count from the last positional argument, as in JAX. Checked when ``value_and_grad`` is
    called, so the mistake shows where it was made."""
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple, list)):
        raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not positions or not all(isinstance(p, int) and not isinstance(p, bool) for p in positions):
        raise TypeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    if len(set(positions)) != len(positions):
        raise TypeError(f"argnums must not repeat an argument, got {argnums!r}")


def _positions(argnums: int | Sequence[int], count: int) -> tuple[int, ...]:
    """``argnums`` as non-negative positions among ``count`` positional arguments."""
    requested = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    positions = []
    for position in requested:
        if not -count <= position < count:
            raise TypeError(f"argnums {argnums!r} names argument {position}, but only {count} were given")
        positions.append(position % count)
    if len(set(positions)) != len(positions):
        raise TypeError(f"argnums {argnums!r} names the same argument twice among {count} arguments")
    return tuple(positions)


def _split_aux(out: Any, has_aux: bool) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("with has_aux=True the function must return a pair (scalar, aux)")
    return out[0], out[1]


def _check_scalar(value: Any) -> None:
    shape = getattr(value, "shape", None)
    if shape is None:
        raise TypeError(f"value_and_grad needs the function to return an array, got {type(value).__name__}")
    if tuple(shape) != ():
        raise ShapeError(f"value_and_grad needs a scalar output of shape (), got shape {tuple(shape)}")


def _name_of_dtype_object(dtype: Any) -> str:
    """``numpy.float32``, ``torch.float32``, ``tf.float32``, ``mx.float32``, ``jnp.float32``
    all print or name themselves with the standard's name somewhere; find it."""
    for attribute in ("name", "__name__"):
        value = getattr(dtype, attribute, None)
        if isinstance(value, str) and value in DTYPE_NAMES:
            return value
    text = str(dtype).rsplit(".", 1)[-1].strip("'>")
    if text == "bool_":
        text = "bool"
    if text in DTYPE_NAMES:
        return text
    try:
        return np.dtype(dtype).name
    except TypeError:
        return text
