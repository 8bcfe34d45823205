"""Planted-fault backends: the NumPy backend with ONE subtle fault each.

The conformance suite is worth only the faults it catches. Each mutant here is a plausible
bug an adapter author could write (a shortcut, an off-by-one, a wrong convention, a
precision loss), never a crash on import; the mutation harness
(:mod:`portable_dl.conformance.mutation`) runs the suite against every one of them through
``--backend-module`` and reports which cases caught it.

:data:`MUTANTS` maps a mutant's name (also its backend name) to
``Mutant(description, factory, category)``; every factory is also a module attribute named
like the mutant with ``_`` for ``-``, so ``--backend-module
portable_dl.conformance.mutants:round_half_away_from_zero`` loads one by hand.

Faults live either in the namespace (one function replaced, see :func:`namespace_with`)
or in a Backend method (one method overridden). Functions that the reference autodiff
differentiates are written with ``autograd.numpy`` or as autograd primitives with their
own VJP, so that a value fault stays a value fault and a gradient fault a gradient fault.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import getval
from portable_dl.backends._common.broadcasting import (
    checks_matmul_shapes,
    raises_broadcast_error,
)
from portable_dl.backends.numpy import namespace as numpy_namespace
from portable_dl.backends.numpy.backend import NumPyBackend

from portable_dl.backend import Backend
from portable_dl.tree import tree_map

CATEGORIES = (
    "contract",
    "autodiff",
    "compile",
    "element-wise values",
    "element-wise gradients",
    "reductions",
    "linear algebra",
    "indexing",
    "shapes and broadcasting",
    "dtypes and promotion",
    "creation",
    "front end",
)


class Mutant(NamedTuple):
    """One planted fault: what it is, how to make the backend, which kind of fault."""

    description: str
    factory: Callable[..., Backend]
    category: str


#: name -> Mutant, in the order the faults are planted below
MUTANTS: dict[str, Mutant] = {}


def factory_attribute(name: str) -> str:
    """The module attribute holding mutant ``name``'s factory."""
    return name.replace("-", "_")


def spec(name: str) -> str:
    """The ``--backend-module`` argument that loads mutant ``name``."""
    return f"{__name__}:{factory_attribute(name)}"


def namespace_with(**replacements: Any) -> types.SimpleNamespace:
    """The NumPy backend's namespace with some functions replaced."""
    names = {name: getattr(numpy_namespace, name) for name in dir(numpy_namespace) if not name.startswith("__")}
    names["__array_namespace_info__"] = numpy_namespace.__array_namespace_info__
    names["__array_api_version__"] = numpy_namespace.__array_api_version__
    names.update(replacements)
    return types.SimpleNamespace(**names)


def plant(
    name: str, category: str, description: str, namespace: types.SimpleNamespace | None = None, **methods: Any
) -> Callable[..., Backend]:
    """Register mutant ``name``: the NumPy backend with ``namespace`` as its ``xp`` and/or
    ``methods`` (Backend members) overridden. Returns its factory ``create(device=None)``."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    members: dict[str, Any] = {"name": name, "__doc__": description, **methods}
    if namespace is not None:
        members["xp"] = property(lambda self: namespace)
    backend_class = type(f"Mutant_{factory_attribute(name)}", (NumPyBackend,), members)

    def create(device: str | None = None) -> Backend:
        return backend_class(device)

    create.__name__ = factory_attribute(name)
    create.__doc__ = description
    globals()[factory_attribute(name)] = create
    MUTANTS[name] = Mutant(description, create, category)
    return create


ns = numpy_namespace
_sum_to_shape = numpy_namespace._sum_to_shape


def _is_float32(x: Any) -> bool:
    return getattr(getval(x), "dtype", None) == np.float32


# =============================================================== the Backend contract


def _asarray_keeping_array_dtype(self, x, dtype=None):
    # the early return for "already an array" forgets the requested dtype
    if isinstance(getval(x), np.ndarray):
        return np.asarray(getval(x))
    return NumPyBackend.asarray(self, x, dtype)


plant(
    "asarray-ignores-dtype-of-arrays",
    "contract",
    "asarray(x, dtype) ignores dtype when x is already a NumPy array",
    asarray=_asarray_keeping_array_dtype,
)


def _asarray_through_float16(self, x, dtype=None):
    result = NumPyBackend.asarray(self, x, dtype)
    return result.astype(np.float16).astype(np.float32) if result.dtype == np.float32 else result


plant(
    "asarray-float32-through-float16",
    "contract",
    "asarray to float32 rounds through float16 (a half-precision staging buffer)",
    asarray=_asarray_through_float16,
)

plant(
    "to-numpy-loses-negative-zero",
    "contract",
    "to_numpy adds 0.0 to floating arrays, turning -0.0 into +0.0",
    to_numpy=lambda self, x: (
        np.asarray(getval(x)) + 0.0 if np.asarray(getval(x)).dtype.kind == "f" else np.asarray(getval(x))
    ),
)

plant(
    "to-numpy-0d-as-1d",
    "contract",
    "to_numpy returns a 0-d array as shape (1,)",
    to_numpy=lambda self, x: np.asarray(getval(x)).reshape(1) if np.ndim(getval(x)) == 0 else np.asarray(getval(x)),
)

plant(
    "to-numpy-transposes-square",
    "contract",
    "to_numpy returns square matrices transposed (column-major buffer read row-major)",
    to_numpy=lambda self, x: (
        np.asarray(getval(x)).T
        if np.ndim(getval(x)) == 2 and len(set(np.shape(getval(x)))) == 1
        else np.asarray(getval(x))
    ),
)


def _dtype_int64_as_int32(self, dtype):
    return np.int32 if self.dtype_name(dtype) == "int64" else NumPyBackend.dtype(self, dtype)


plant(
    "dtype-int64-is-int32",
    "contract",
    "dtype('int64') gives int32 (a 32-bit default integer leaking in)",
    dtype=_dtype_int64_as_int32,
)

plant(
    "supports-says-yes-to-anything",
    "contract",
    "supports(dtype) returns True without checking the dtype",
    supports=lambda self, dtype: True,
)

plant(
    "owns-rejects-numpy-scalars",
    "contract",
    "owns(x) is False for NumPy scalars (0-d results of reductions)",
    owns=lambda self, x: isinstance(getval(x), np.ndarray),
)

plant(
    "device-not-among-devices",
    "contract",
    "device reports 'cpu:0' while devices() lists 'cpu'",
    device=property(lambda self: "cpu:0"),
)

plant(
    "synchronize-returns-none",
    "contract",
    "synchronize(tree) waits but returns None instead of tree",
    synchronize=lambda self, tree=None: None,
)


# ======================================================================= autodiff


def _value_and_grad_sorted_argnums(self, f, argnums=0, has_aux=False):
    if isinstance(argnums, int):
        return NumPyBackend.value_and_grad(self, f, argnums, has_aux)
    return NumPyBackend.value_and_grad(self, f, tuple(sorted(argnums)), has_aux)


plant(
    "argnums-sorted",
    "autodiff",
    "value_and_grad with argnums=(1, 0) returns the gradients in the order (0, 1)",
    value_and_grad=_value_and_grad_sorted_argnums,
)


def _value_and_grad_dropping_aux(self, f, argnums=0, has_aux=False):
    value_and_grad_f = NumPyBackend.value_and_grad(self, f, argnums, has_aux)
    if not has_aux:
        return value_and_grad_f

    def without_aux(*args):
        (value, _aux), gradient = value_and_grad_f(*args)
        return (value, None), gradient

    return without_aux


plant(
    "has-aux-dropped",
    "autodiff",
    "value_and_grad(has_aux=True) returns None in place of the auxiliary output",
    value_and_grad=_value_and_grad_dropping_aux,
)


def _reverse_equal_shaped_lists(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _reverse_equal_shaped_lists(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        items = [_reverse_equal_shaped_lists(item) for item in tree]
        if (
            isinstance(tree, list)
            and len(items) > 1
            and all(hasattr(i, "shape") for i in items)
            and len({np.shape(i) for i in items}) == 1
        ):
            items = items[::-1]
        return type(tree)(items)
    return tree


def _value_and_grad_reversing_lists(self, f, argnums=0, has_aux=False):
    value_and_grad_f = NumPyBackend.value_and_grad(self, f, argnums, has_aux)

    def reversed_lists(*args):
        value, gradient = value_and_grad_f(*args)
        if isinstance(argnums, int):
            return value, _reverse_equal_shaped_lists(gradient)
        return value, tuple(_reverse_equal_shaped_lists(g) for g in gradient)

    return reversed_lists


plant(
    "nested-list-gradients-reversed",
    "autodiff",
    "gradients of the leaves of a list of equal-shaped arrays inside a pytree come back in reverse order",
    value_and_grad=_value_and_grad_reversing_lists,
)


def _value_and_grad_accumulating(self, f, argnums=0, has_aux=False):
    value_and_grad_f = NumPyBackend.value_and_grad(self, f, argnums, has_aux)
    previous: list = []

    def accumulating(*args):
        # like a framework's .grad buffer that is never zeroed between calls
        value, gradient = value_and_grad_f(*args)
        if previous and _signature(previous[0]) == _signature(gradient):
            gradient = tree_map(lambda g, p: g + p, gradient, previous[0])
        previous[:] = [gradient]
        return value, gradient

    return accumulating


plant(
    "gradients-accumulate-across-calls",
    "autodiff",
    "a value_and_grad function adds the previous call's gradient to each new one (buffer never zeroed)",
    value_and_grad=_value_and_grad_accumulating,
)


def _gradients_in_float64(self, f, leaves):
    value, aux, gradients = NumPyBackend._value_and_grad_of_leaves(self, f, leaves)
    return value, aux, [g.astype(np.float64) if hasattr(g, "astype") else g for g in gradients]


plant(
    "gradients-in-float64",
    "autodiff",
    "gradients of float32 leaves are returned in float64",
    _value_and_grad_of_leaves=_gradients_in_float64,
)


# ======================================================================== compile


def _signature(tree: Any) -> tuple:
    """Shapes and dtypes of a pytree's array leaves, with its structure: what a tracing
    compiler keys its cache on."""
    if isinstance(tree, dict):
        return ("dict",) + tuple((k, _signature(v)) for k, v in sorted(tree.items(), key=lambda kv: str(kv[0])))
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__,) + tuple(_signature(v) for v in tree)
    if hasattr(tree, "shape"):
        return ("array", tuple(np.shape(tree)), str(getattr(tree, "dtype", "")))
    return ("python", type(tree).__name__)


def _compile_caching_results(self, f):
    f = NumPyBackend.compile(self, f)
    cache: dict = {}

    def compiled(*args, **kwargs):
        key = _signature((args, kwargs))
        if key not in cache:
            cache[key] = f(*args, **kwargs)  # caches the output, not the traced program
        return cache[key]

    return compiled


plant(
    "compile-caches-first-result",
    "compile",
    "a compiled function returns its first result again for every later call with the same shapes",
    compile=_compile_caching_results,
)


def _compile_to_float64(self, f):
    f = NumPyBackend.compile(self, f)

    def compiled(*args, **kwargs):
        return tree_map(
            lambda x: x.astype(np.float64) if getattr(x, "dtype", None) == np.float32 else x, f(*args, **kwargs)
        )

    return compiled


plant(
    "compile-drops-float32",
    "compile",
    "a compiled function returns float32 results as float64",
    compile=_compile_to_float64,
)


def _compile_for_one_shape(self, f):
    f = NumPyBackend.compile(self, f)
    traced: list = []

    def compiled(*args, **kwargs):
        key = _signature((args, kwargs))
        if traced and traced[0] != key:
            raise RuntimeError("compiled function called with new input shapes; it was traced for the first ones")
        traced[:] = [key]
        return f(*args, **kwargs)

    return compiled


plant(
    "compile-breaks-on-new-shape",
    "compile",
    "a compiled function raises when called with new input shapes",
    compile=_compile_for_one_shape,
)


def _compile_static_scalars(self, f):
    f = NumPyBackend.compile(self, f)
    first_scalars: list = []

    def compiled(*args, **kwargs):
        # Python numbers are baked into the trace as constants on the first call
        positions = [i for i, a in enumerate(args) if type(a) in (int, float, bool)]
        if not first_scalars:
            first_scalars.append({i: args[i] for i in positions})
        baked = first_scalars[0]
        args = tuple(baked.get(i, a) if i in positions else a for i, a in enumerate(args))
        return f(*args, **kwargs)

    return compiled


plant(
    "compile-bakes-python-scalars",
    "compile",
    "a compiled function keeps the Python-number arguments of its first call for every later call",
    compile=_compile_static_scalars,
)


# ============================================================ element-wise values

plant(
    "round-half-away-from-zero",
    "element-wise values",
    "round(0.5) is 1 (half away from zero, not half to even)",
    namespace_with(round=lambda x, /: anp.sign(x) * anp.floor(anp.abs(x) + 0.5)),
)

plant(
    "log1p-as-log-of-1-plus-x",
    "element-wise values",
    "log1p(x) computed as log(1 + x): tiny x gives 0",
    namespace_with(log1p=lambda x, /: anp.log(1 + x)),
)

plant(
    "expm1-as-exp-minus-1",
    "element-wise values",
    "expm1(x) computed as exp(x) - 1: tiny x gives 0",
    namespace_with(expm1=lambda x, /: anp.exp(x) - 1),
)


def _sign_zero_is_one(x, /):
    value = getval(x)
    return np.where(value == 0, np.ones_like(value), np.sign(value))


plant(
    "sign-of-zero-is-one",
    "element-wise values",
    "sign(0) and sign(-0) give 1 (a x >= 0 test)",
    namespace_with(sign=_sign_zero_is_one),
)


@primitive
def _abs_keeping_negative_zero(x):
    return np.where(x < 0, -x, x)


defvjp(_abs_keeping_negative_zero, lambda ans, x: lambda g: g * np.sign(x))

plant(
    "abs-of-negative-zero",
    "element-wise values",
    "abs(-0.0) gives -0.0 (where(x < 0, -x, x))",
    namespace_with(abs=_abs_keeping_negative_zero),
)

plant(
    "maximum-ignores-nan-in-second",
    "element-wise values",
    "maximum(x, NaN) gives x instead of NaN",
    namespace_with(
        maximum=raises_broadcast_error(lambda x1, x2, /: anp.where(anp.isnan(x2), x1, anp.maximum(x1, x2)), "maximum")
    ),
)


def _floor_divide_truncating(x1, x2, /):
    a, b = getval(x1), getval(x2)
    if np.result_type(a, b).kind in "iu":
        return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))  # C's truncating division
    return ns.floor_divide(x1, x2)


plant(
    "floor-divide-truncates",
    "element-wise values",
    "integer floor_divide rounds toward zero (-7 // 2 == -3)",
    namespace_with(floor_divide=raises_broadcast_error(_floor_divide_truncating, "floor_divide")),
)

plant(
    "remainder-as-fmod",
    "element-wise values",
    "remainder takes the sign of the dividend (C fmod), not of the divisor",
    namespace_with(remainder=raises_broadcast_error(lambda x1, x2, /: np.fmod(getval(x1), getval(x2)), "remainder")),
)

plant(
    "hypot-overflows",
    "element-wise values",
    "hypot computed as sqrt(x*x + y*y): overflows for large finite inputs",
    namespace_with(hypot=raises_broadcast_error(lambda x1, x2, /: anp.sqrt(x1 * x1 + x2 * x2), "hypot")),
)

plant(
    "logaddexp-overflows",
    "element-wise values",
    "logaddexp computed as log(exp(x) + exp(y)): overflows",
    namespace_with(logaddexp=raises_broadcast_error(lambda x1, x2, /: anp.log(anp.exp(x1) + anp.exp(x2)), "logaddexp")),
)

plant(
    "copysign-ignores-negative-zero",
    "element-wise values",
    "copysign(x, -0.0) gives +|x| (a y < 0 test)",
    namespace_with(
        copysign=raises_broadcast_error(
            lambda x1, x2, /: np.where(getval(x2) < 0, -np.abs(getval(x1)), np.abs(getval(x1))), "copysign"
        )
    ),
)


def _exp_low_precision(x, /):
    # a fast polynomial good to 3e-5, fine for graphics, not for a float32 reference
    return anp.exp(x) * (1 + 3e-5) if _is_float32(x) else anp.exp(x)


plant(
    "exp-float32-relative-3e-5",
    "element-wise values",
    "float32 exp is off by a relative 3e-5 (a fast approximation)",
    namespace_with(exp=_exp_low_precision),
)


# ========================================================= element-wise gradients


def _tanh_with_vjp(derivative: Callable) -> Callable:
    @primitive
    def tanh(x):
        return np.tanh(x)

    defvjp(tanh, lambda ans, x: lambda g: g * derivative(ans))
    return tanh


plant(
    "tanh-gradient-1-minus-y",
    "element-wise gradients",
    "tanh'(x) computed as 1 - tanh(x) instead of 1 - tanh(x)**2",
    namespace_with(tanh=_tanh_with_vjp(lambda y: 1 - y)),
)

plant(
    "tanh-gradient-relative-1e-3",
    "element-wise gradients",
    "tanh'(x) off by a relative 1e-3",
    namespace_with(tanh=_tanh_with_vjp(lambda y: (1 - y * y) * (1 + 1e-3))),
)


@primitive
def _sqrt(x):
    return np.sqrt(x)


defvjp(_sqrt, lambda ans, x: lambda g: g * 0.5 / ans * (1 + 1e-4))
plant(
    "sqrt-gradient-relative-1e-4",
    "element-wise gradients",
    "sqrt'(x) off by a relative 1e-4 (caught in float32 too)",
    namespace_with(sqrt=_sqrt),
)


@primitive
def _abs(x):
    return np.abs(x)


defvjp(_abs, lambda ans, x: lambda g: g * np.where(x >= 0, 1.0, -1.0))
plant("abs-gradient-at-zero-is-one", "element-wise gradients", "abs'(0) is 1 instead of 0", namespace_with(abs=_abs))


@primitive
def _expm1(x):
    return np.expm1(x)


defvjp(_expm1, lambda ans, x: lambda g: g * ans)
plant(
    "expm1-gradient-forgets-the-1",
    "element-wise gradients",
    "expm1'(x) computed as expm1(x) instead of exp(x)",
    namespace_with(expm1=_expm1),
)


@primitive
def _pow(x1, x2):
    return np.power(x1, x2)


defvjp(
    _pow,
    lambda ans, x1, x2: lambda g: _sum_to_shape(g * x2 * np.power(x1, x2 - 1), np.shape(x1)),
    lambda ans, x1, x2: lambda g: np.zeros(np.shape(x2)),
)
plant(
    "pow-no-exponent-gradient",
    "element-wise gradients",
    "pow(x, y) gives no gradient to the exponent y",
    namespace_with(pow=raises_broadcast_error(_pow, "pow")),
)


@primitive
def _maximum(x1, x2):
    return np.maximum(x1, x2)


defvjp(
    _maximum,
    lambda ans, x1, x2: lambda g: _sum_to_shape(g * (x1 >= x2), np.shape(x1)),
    lambda ans, x1, x2: lambda g: _sum_to_shape(g * (x2 > x1), np.shape(x2)),
)
plant(
    "maximum-ties-gradient-to-first",
    "element-wise gradients",
    "maximum(x, y) on ties gives the whole gradient to x",
    namespace_with(maximum=raises_broadcast_error(_maximum, "maximum")),
)


def _clip_closed(x, /, min=None, max=None):
    # less_equal where less is meant: x exactly at a bound takes the (constant) bound
    result = x
    if min is not None:
        result = ns.where(
            ns.less_equal(result, min), ns.astype(ns.asarray(min), x.dtype) if hasattr(min, "shape") else min, result
        )
    if max is not None:
        result = ns.where(
            ns.greater_equal(result, max), ns.astype(ns.asarray(max), x.dtype) if hasattr(max, "shape") else max, result
        )
    return result


plant(
    "clip-no-gradient-at-bounds",
    "element-wise gradients",
    "clip gives zero gradient to x exactly at a bound",
    namespace_with(clip=_clip_closed),
)


@primitive
def _where_leaking(condition, x1, x2):
    return np.where(condition, x1, x2)


defvjp(
    _where_leaking,
    None,
    lambda ans, c, x1, x2: lambda g: _sum_to_shape(np.where(c, g, 0.0), np.shape(x1)),
    lambda ans, c, x1, x2: lambda g: _sum_to_shape(g, np.shape(x2)),
)


def _where_gradient_leaks(condition, x1, x2, /):
    ns.where(condition, getval(x1), getval(x2))  # the shape checks
    return _where_leaking(getval(condition), x1, x2)


plant(
    "where-gradient-leaks-to-x2",
    "element-wise gradients",
    "where(c, x1, x2) passes the whole gradient to x2, taken or not",
    namespace_with(where=_where_gradient_leaks),
)


# ===================================================================== reductions


def _sum_ignoring_keepdims_for_tuples(x, /, *, axis=None, dtype=None, keepdims=False):
    return ns.sum(x, axis=axis, dtype=dtype, keepdims=keepdims and not isinstance(axis, tuple))


plant(
    "sum-keepdims-ignored-for-axis-tuples",
    "reductions",
    "sum(keepdims=True) drops the axes when axis is a tuple",
    namespace_with(sum=_sum_ignoring_keepdims_for_tuples),
)


def _mean_dividing_by_first_axis(x, /, *, axis=None, keepdims=False):
    if isinstance(axis, tuple) and len(axis) > 1:
        return ns.sum(x, axis=axis, keepdims=keepdims) / getval(x).shape[axis[0]]
    return ns.mean(x, axis=axis, keepdims=keepdims)


plant(
    "mean-divides-by-first-axis",
    "reductions",
    "mean over a tuple of axes divides by the first axis' length only",
    namespace_with(mean=_mean_dividing_by_first_axis),
)


def _normalized_axes(axis: Any, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


@primitive
def _max_first(x, axis, keepdims):
    return np.max(x, axis=axis, keepdims=keepdims)


def _max_first_vjp(ans, x, axis, keepdims):
    def vjp(g):
        axes = _normalized_axes(axis, x.ndim)
        kept = [a for a in range(x.ndim) if a not in axes]
        moved = np.transpose(x, kept + list(axes)).reshape([x.shape[a] for a in kept] + [-1])
        first = np.argmax(moved, axis=-1)  # the first of the tied maxima takes everything
        one_hot = (np.arange(moved.shape[-1]) == first[..., None]).reshape([x.shape[a] for a in kept + list(axes)])
        one_hot = np.transpose(one_hot, np.argsort(kept + list(axes)))
        g_kept = g if keepdims else np.expand_dims(g, axes)
        return one_hot * g_kept

    return vjp


defvjp(_max_first, _max_first_vjp)
plant(
    "max-ties-gradient-to-first",
    "reductions",
    "max reduction gives the whole gradient to the first of tied maxima",
    namespace_with(max=lambda x, /, *, axis=None, keepdims=False: _max_first(x, axis, keepdims)),
)

plant(
    "std-ignores-correction",
    "reductions",
    "std ignores its correction argument (always divides by N)",
    namespace_with(
        std=lambda x, /, *, axis=None, correction=0.0, keepdims=False: ns.std(x, axis=axis, keepdims=keepdims)
    ),
)


def _cumulative_sum_exclusive(x, /, *, axis=None, dtype=None, include_initial=False):
    inclusive = ns.cumulative_sum(x, axis=axis, dtype=dtype, include_initial=include_initial)
    return inclusive if include_initial else inclusive - x  # an exclusive scan: off by one


plant(
    "cumulative-sum-exclusive",
    "reductions",
    "cumulative_sum is an exclusive scan (each sum misses its own element)",
    namespace_with(cumulative_sum=_cumulative_sum_exclusive),
)


# ================================================================= linear algebra


def _matmul_transposing_square(x1, x2, /):
    if np.ndim(getval(x2)) == 2 and np.shape(getval(x2))[0] == np.shape(getval(x2))[1]:
        return anp.matmul(x1, anp.transpose(x2))  # a square matrix read in the wrong layout
    return anp.matmul(x1, x2)


plant(
    "matmul-transposes-square-x2",
    "linear algebra",
    "matmul uses x2 transposed when x2 is a square matrix",
    namespace_with(matmul=checks_matmul_shapes(_matmul_transposing_square)),
)


@primitive
def _batched_matmul(x1, x2):
    return np.matmul(x1, x2)


def _batched_matmul_vjp_x2(ans, x1, x2):
    def vjp(g):
        full = np.matmul(np.swapaxes(x1, -1, -2), g)
        reduced = _sum_to_shape(full, np.shape(x2))
        return reduced / (full.size // reduced.size)  # averaged over the broadcast batch, not summed

    return vjp


defvjp(
    _batched_matmul,
    lambda ans, x1, x2: lambda g: _sum_to_shape(np.matmul(g, np.swapaxes(x2, -1, -2)), np.shape(x1)),
    _batched_matmul_vjp_x2,
)


def _matmul_batched_gradient(x1, x2, /):
    a, b = getval(x1), getval(x2)
    if np.ndim(a) >= 2 and np.ndim(b) >= 2 and max(np.ndim(a), np.ndim(b)) >= 3:
        return _batched_matmul(x1, x2)
    return anp.matmul(x1, x2)


plant(
    "batched-matmul-gradient-averaged",
    "linear algebra",
    "batched matmul's gradient of an operand broadcast over batch axes is averaged, not summed",
    namespace_with(matmul=checks_matmul_shapes(_matmul_batched_gradient)),
)


def _tensordot_ignoring_axis_lists(x1, x2, /, *, axes=2):
    if not isinstance(axes, int):
        axes = len(axes[0])  # contracts the last axes of x1 with the first of x2, whichever were named
    return ns.tensordot(x1, x2, axes=axes)


plant(
    "tensordot-ignores-axis-lists",
    "linear algebra",
    "tensordot with axes=(list, list) contracts the last axes of x1 with the first of x2 instead",
    namespace_with(tensordot=_tensordot_ignoring_axis_lists),
)

plant(
    "vecdot-ignores-axis",
    "linear algebra",
    "vecdot always contracts the last axis, whatever axis says",
    namespace_with(vecdot=lambda x1, x2, /, *, axis=-1: ns.vecdot(x1, x2, axis=-1)),
)

plant(
    "matrix-transpose-reverses-all-axes",
    "linear algebra",
    "matrix_transpose reverses every axis (NumPy's .T), not the last two",
    namespace_with(matrix_transpose=lambda x, /: anp.transpose(x)),
)


# ======================================================================= indexing


def _argmax_last(x, /, *, axis=None, keepdims=False):
    value = getval(x)
    if axis is None:
        index = value.size - 1 - np.argmax(value.reshape(-1)[::-1])
        result = np.asarray(index, dtype=np.int64)
        return result.reshape((1,) * value.ndim) if keepdims else result
    flipped = np.flip(value, axis=axis)
    result = (value.shape[axis] - 1 - np.argmax(flipped, axis=axis)).astype(np.int64)
    return np.expand_dims(result, axis) if keepdims else result


plant(
    "argmax-last-on-ties",
    "indexing",
    "argmax returns the last of tied maxima, not the first",
    namespace_with(argmax=_argmax_last),
)


def _argsort_descending_by_flip(x, /, *, axis=-1, descending=False, stable=True):
    if not descending:
        return ns.argsort(x, axis=axis, stable=stable)
    return np.flip(ns.argsort(x, axis=axis, stable=stable), axis=axis)  # ties come out last-first


plant(
    "argsort-descending-reverses-ties",
    "indexing",
    "descending argsort is the ascending one flipped, so tied elements are not in their original order",
    namespace_with(argsort=_argsort_descending_by_flip),
)


def _where_by_arithmetic(condition, x1, x2, /):
    ns.where(condition, getval(x1), getval(x2))  # the shape checks
    c = np.asarray(getval(condition))
    return x2 + c * (x1 - x2)  # select by arithmetic: NaN and inf leak from the branch not taken


plant(
    "where-by-arithmetic",
    "indexing",
    "where(c, x1, x2) computed as x2 + c * (x1 - x2): NaN/inf of the other branch leak",
    namespace_with(where=_where_by_arithmetic),
)


@primitive
def _take_overwriting(x, indices, axis):
    return np.take(x, indices, axis=axis)


def _take_overwriting_vjp(ans, x, indices, axis):
    def vjp(g):
        grad = np.zeros(x.shape, dtype=g.dtype)
        index = [slice(None)] * x.ndim
        index[axis] = indices
        grad[tuple(index)] = g  # assignment: a repeated index keeps one contribution
        return grad

    return vjp


defvjp(_take_overwriting, _take_overwriting_vjp)


def _take_with_overwriting_gradient(x, indices, /, *, axis=None):
    if axis is None:
        axis = 0
    return _take_overwriting(x, np.asarray(getval(indices)), axis)


plant(
    "take-gradient-overwrites-repeats",
    "indexing",
    "take's gradient keeps one contribution of a repeated index instead of adding",
    namespace_with(take=_take_with_overwriting_gradient),
)

plant(
    "take-along-axis-ignores-axis",
    "indexing",
    "take_along_axis always gathers along the last axis",
    namespace_with(take_along_axis=lambda x, indices, /, *, axis=-1: ns.take_along_axis(x, indices, axis=-1)),
)


def _flip_first_axis_only(x, /, *, axis=None):
    return ns.flip(x, axis=axis[0] if isinstance(axis, tuple) else axis)


plant(
    "flip-tuple-flips-first-axis",
    "indexing",
    "flip over a tuple of axes flips only the first of them",
    namespace_with(flip=_flip_first_axis_only),
)


# ========================================================== shapes and broadcasting


def _add_aligning_rows(x1, x2, /):
    x1_shape, x2_shape = np.shape(getval(x1)), np.shape(getval(x2))
    if len(x1_shape) == 2 and len(x2_shape) == 1 and x2_shape[0] == x1_shape[0] != x1_shape[1]:
        x2 = ns.reshape(x2, (-1, 1))
    return ns.add(x1, x2)


plant(
    "broadcast-aligns-vector-with-rows",
    "shapes and broadcasting",
    "(m, n) + (m,) is accepted, the vector aligned with the rows",
    namespace_with(add=_add_aligning_rows),
)

plant(
    "reshape-column-major",
    "shapes and broadcasting",
    "reshape reads and writes elements in column-major (Fortran) order",
    namespace_with(reshape=lambda x, /, shape, *, copy=None: anp.reshape(x, tuple(shape), order="F")),
)

plant(
    "squeeze-drops-every-unit-axis",
    "shapes and broadcasting",
    "squeeze(x, axis) removes every axis of length 1, not only axis",
    namespace_with(squeeze=lambda x, /, axis: anp.squeeze(x)),
)


def _concat_none_column_major(arrays, /, *, axis=0):
    if axis is None:
        return anp.concatenate([anp.reshape(a, (-1,), order="F") for a in arrays], axis=0)
    return ns.concat(arrays, axis=axis)


plant(
    "concat-axis-none-column-major",
    "shapes and broadcasting",
    "concat(axis=None) flattens its arrays in column-major order",
    namespace_with(concat=_concat_none_column_major),
)


def _expand_dims_off_by_one(x, /, *, axis=0):
    if axis < 0:
        axis = getval(x).ndim + axis  # list.insert arithmetic: -1 lands before the last axis
    return ns.expand_dims(x, axis=axis)


plant(
    "expand-dims-negative-axis-off-by-one",
    "shapes and broadcasting",
    "expand_dims(axis=-1) inserts before the last axis",
    namespace_with(expand_dims=_expand_dims_off_by_one),
)


# ========================================================== dtypes and promotion


def _strong_python_float(function: Callable) -> Callable:
    def strong(x1, x2, /):
        # a Python float becomes a float64 array before meeting x1: float32 results become float64
        if type(x2) is float:
            x2 = np.asarray(x2, dtype=np.float64)
        return function(x1, x2)

    return strong


plant(
    "python-float-not-weak-in-multiply",
    "dtypes and promotion",
    "multiply(float32 array, Python float) gives float64",
    namespace_with(multiply=_strong_python_float(ns.multiply)),
)


def _python_float_in_float32(function: Callable) -> Callable:
    def rounded(x1, x2, /):
        # Python floats are converted through float32, whatever the array's dtype
        if type(x2) is float:
            x2 = float(np.float32(x2))
        if type(x1) is float:
            x1 = float(np.float32(x1))
        return function(x1, x2)

    return rounded


plant(
    "python-float-rounded-to-float32",
    "dtypes and promotion",
    "Python floats in add, subtract, multiply, divide are rounded to float32 first, also in float64",
    namespace_with(
        **{name: _python_float_in_float32(getattr(ns, name)) for name in ("add", "subtract", "multiply", "divide")}
    ),
)


def _integer_with_float32_to_float64(function: Callable) -> Callable:
    def widened(x1, x2, /):
        kinds = {np.asarray(getval(x1)).dtype.kind, np.asarray(getval(x2)).dtype.kind}
        result = function(x1, x2)
        if kinds == {"i", "f"} and getval(result).dtype == np.float32:
            result = ns.astype(result, np.float64)  # NumPy 1's value-based promotion
        return result

    return widened


plant(
    "integer-with-float32-gives-float64",
    "dtypes and promotion",
    "an integer array meeting a float32 array gives float64",
    namespace_with(
        **{
            name: _integer_with_float32_to_float64(getattr(ns, name))
            for name in ("add", "subtract", "multiply", "divide")
        }
    ),
)

plant(
    "sum-of-float32-in-float64",
    "dtypes and promotion",
    "sum of float32 accumulates and returns float64",
    namespace_with(
        sum=lambda x, /, *, axis=None, dtype=None, keepdims=False: ns.sum(
            ns.astype(x, np.float64), axis=axis, dtype=dtype, keepdims=keepdims
        )
    ),
)


def _astype_rounding(x, dtype, /, *, copy=True, device=None):
    if np.dtype(dtype).kind in "iu" and getval(x).dtype.kind == "f":
        x = np.rint(getval(x))  # rounds to nearest before the cast
    return ns.astype(x, dtype, copy=copy)


plant(
    "astype-float-to-int-rounds",
    "dtypes and promotion",
    "astype from float to int rounds to nearest instead of truncating",
    namespace_with(astype=_astype_rounding),
)


def _sum_keeping_small_integers(x, /, *, axis=None, dtype=None, keepdims=False):
    if dtype is None and getval(x).dtype.kind in "iu":
        dtype = getval(x).dtype  # accumulates in the input's integer type, which overflows
    return ns.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


plant(
    "integer-sum-keeps-input-dtype",
    "dtypes and promotion",
    "sum of an int8 array stays int8 (and wraps around)",
    namespace_with(sum=_sum_keeping_small_integers),
)


# ======================================================================= creation


def _arange_with_stop(start, /, stop=None, step=1, *, dtype=None, device=None):
    if stop is None:
        start, stop = 0, start
    result = ns.arange(start, stop, step, dtype=dtype)
    count = (stop - start) / step
    if abs(count - round(count)) < 1e-9:  # a stop that is hit exactly is included
        result = ns.concat([result, ns.asarray([stop], dtype=result.dtype)])
    return result


plant(
    "arange-includes-stop",
    "creation",
    "arange includes stop when it falls exactly on a step",
    namespace_with(arange=_arange_with_stop),
)

plant(
    "linspace-excludes-endpoint",
    "creation",
    "linspace leaves out the endpoint (endpoint=False by default)",
    namespace_with(
        linspace=lambda start, stop, /, num, *, dtype=None, device=None, endpoint=True: ns.linspace(
            start, stop, num, dtype=dtype, endpoint=False
        )
    ),
)

plant(
    "eye-ignores-k",
    "creation",
    "eye(n, m, k=k) ignores k (always the main diagonal)",
    namespace_with(
        eye=lambda n_rows, n_cols=None, /, *, k=0, dtype=None, device=None: ns.eye(n_rows, n_cols, dtype=dtype)
    ),
)

plant(
    "full-ignores-dtype-for-floats",
    "creation",
    "full(shape, python_float, dtype=float32) gives float64",
    namespace_with(
        full=lambda shape, fill_value, *, dtype=None, device=None: ns.full(
            shape, fill_value, dtype=None if type(fill_value) is float else dtype
        )
    ),
)

plant(
    "ones-like-gives-float64",
    "creation",
    "ones_like returns the default float dtype instead of x's dtype",
    namespace_with(ones_like=lambda x, /, *, dtype=None, device=None: ns.ones_like(x, dtype=dtype or np.float64)),
)


# ======================================================================= front end
# Faults in namespace functions that the front end leans on: an optimizer's denominator,
# a schedule's boundary test, a schedule's 0-d arithmetic.

plant(
    "sqrt-with-epsilon-inside",
    "front end",
    "sqrt(x) computed as sqrt(x + 1e-10), a 'safe' sqrt that shifts Adam's denominator",
    namespace_with(sqrt=lambda x, /: anp.sqrt(x + 1e-10)),
)


def _less_equal_on_scalars(x1, x2, /):
    if np.ndim(getval(x1)) == 0 and np.ndim(getval(x2)) == 0:
        return ns.less_equal(x1, x2)  # a scalar fast path with the wrong comparison
    return ns.less(x1, x2)


plant(
    "less-is-less-equal-on-0d",
    "front end",
    "less(t, n) on 0-d operands is t <= n: schedule boundaries move one step",
    namespace_with(less=_less_equal_on_scalars),
)


def _where_0d_in_float64(condition, x1, x2, /):
    result = ns.where(condition, x1, x2)
    if np.ndim(getval(result)) == 0 and getval(result).dtype == np.float32:
        return ns.astype(result, np.float64)  # a 0-d result through a Python float
    return result


plant(
    "where-0d-result-in-float64",
    "front end",
    "where with 0-d operands returns float64 (a schedule's rate leaks float64)",
    namespace_with(where=_where_0d_in_float64),
)


def _floor_0d_rounding(x, /):
    if np.ndim(getval(x)) == 0:
        return ns.round(x)  # a 0-d fast path that rounds instead of flooring
    return ns.floor(x)


plant(
    "floor-rounds-on-0d",
    "front end",
    "floor of a 0-d array rounds to nearest: step_decay's steps change early",
    namespace_with(floor=_floor_0d_rounding),
)


# ================================================================ fused optimizer update
# A backend's optional fast path (Backend.fused_update), written apart from the pure rule:
# exactly where a formula can drift unnoticed.


def _fused_adam_without_second_bias_correction(self, optimizer):
    """A fused Adam/AdamW that divides by sqrt(v) instead of sqrt(v / (1 - beta2^t))."""
    from portable_dl.optimizers import Adam, AdamW
    from portable_dl.optimizers.base import one_minus_power

    if type(optimizer) not in (Adam, AdamW) or optimizer.amsgrad:
        return None
    xp = self.xp
    beta1, beta2 = optimizer.betas

    def fused(params, grads, slots, lr, t):
        new_params, new_slots = [], []
        for param, grad, slot in zip(params, grads, slots):
            param, grad = optimizer.apply_weight_decay(param, grad, lr)
            m = beta1 * slot["exp_avg"] + (1.0 - beta1) * grad
            v = beta2 * slot["exp_avg_sq"] + (1.0 - beta2) * grad * grad
            step_size = lr / one_minus_power(beta1, t, xp)
            new_params.append(param - step_size * (m / (xp.sqrt(v) + optimizer.eps)))  # the fault
            new_slots.append({"exp_avg": m, "exp_avg_sq": v})
        return new_params, new_slots

    return fused


plant(
    "fused-adam-without-second-bias-correction",
    "contract",
    "a fused Adam update (Backend.fused_update) that forgets the bias correction of the second moment",
    fused_update=_fused_adam_without_second_bias_correction,
)


# ================================================================ native kernels
# A backend's own kernels for front-end functions (Backend.kernel): a convention or an
# option the framework's kernel does not share.


def _relu_kernel_with_gradient_1_at_0(self, name):
    """A relu kernel right in value (``+0.0`` for ``-0.0``) whose derivative at 0 is 1 (``x >= 0``)."""
    if name != "relu":
        return None
    xp = self.xp
    return lambda x: xp.where(xp.less(x, 0), xp.zeros_like(x), xp.add(x, 0.0))


plant(
    "relu-kernel-gradient-1-at-0",
    "front end",
    "a relu kernel (Backend.kernel) that selects x where x >= 0: relu'(0) = 1",
    kernel=_relu_kernel_with_gradient_1_at_0,
)


def _cross_entropy_kernel_without_label_smoothing(self, name):
    """A cross-entropy kernel that drops its label_smoothing argument."""
    if name != "cross_entropy":
        return None
    from portable_dl.losses import pure_cross_entropy

    return lambda logits, labels, label_smoothing, reduction: pure_cross_entropy(logits, labels, 0.0, reduction)


plant(
    "cross-entropy-kernel-ignores-label-smoothing",
    "front end",
    "a cross-entropy kernel (Backend.kernel) that ignores label_smoothing",
    kernel=_cross_entropy_kernel_without_label_smoothing,
)


def broken_backend(backend_name: str, namespace: types.SimpleNamespace) -> Callable[..., Backend]:
    """A factory of the NumPy backend named ``backend_name`` with ``namespace`` as its ``xp``
    (not registered: for tests that plant a fault of their own)."""
    backend_class = type("Broken", (NumPyBackend,), {"name": backend_name, "xp": property(lambda self: namespace)})
    return lambda device=None: backend_class(device)


#: The NumPy backend under another name and with no fault: the harness runs it like a
#: mutant first, and a case that fails on it (a fault of the suite or of the reference,
#: not of a mutant) is credited with catching nothing.
CONTROL = "no-fault"
no_fault = plant(CONTROL, "contract", "the NumPy backend unchanged (the control)")
del MUTANTS[CONTROL]
