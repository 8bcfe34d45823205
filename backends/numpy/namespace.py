"""The array-API namespace of the NumPy backend, traceable by the reference autodiff.

Differentiable functions go through ``autograd.numpy``, so HIPS autograd records them on
its tape when ``value_and_grad`` traces a function; outside a trace they are plain NumPy
calls on plain NumPy arrays. Dtype objects, ``finfo``/``iinfo``, type promotion and
creation functions come from ``array_api_compat.numpy``, which already gives them the
standard's signatures.

Four functions get gradients written here because autograd has none or a fragile one:
``flip``, ``take`` and ``take_along_axis`` (no VJP) and ``prod`` (autograd divides by
``x``, which gives NaN where an element is zero).

Shapes that do not broadcast raise :class:`portable_dl.BroadcastError` naming them.

Half floats (an extension of the standard): float16 is NumPy's own, bfloat16 is ``ml_dtypes``'
type, which NumPy treats as a foreign dtype. The dtype functions answer for both from the
project's promotion table; a Python scalar or an integer array meeting a bfloat16 array keeps
bfloat16 (NumPy would widen to float32); ``matmul``, ``acosh`` and ``matrix_power``, which NumPy
computes for bfloat16 in float32, round back to it; sums, means, variances and cumulative sums
of half arrays accumulate in float32 and round once, as PyTorch and JAX do. The factorizations
(LAPACK's) raise DTypeError for half arrays, and the FFTs too (no complex half dtype). The
operators of ``numpy.ndarray`` itself are NumPy's: ``bfloat16_array * 2.0`` is float32 there.
"""

from __future__ import annotations

import builtins
import functools
import types
from collections.abc import Sequence
from functools import partial
from typing import Any

import array_api_compat.numpy as compat
import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.numpy.numpy_vspaces import ArrayVSpace
from autograd.tracer import getval, isbox

from portable_dl.errors import BroadcastError, DTypeError

from .._common import complex_special_values, dtypes, generic, info, surface
from .._common import linalg as common_linalg
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    raises_broadcast_error,
    shape_of,
)
from .._common.promotion import promote_names, promote_with_scalar
from .._common.shape_errors import (
    concat_failed,
    reshape_failed,
    shape_checked,
    squeeze_failed,
    stack_error,
    tensordot_failed,
)

__array_api_version__ = surface.VERSION


def _sum_to_shape(g: Any, shape: tuple) -> Any:
    """The cotangent ``g`` of a broadcast result summed back to an input of ``shape``:
    over the leading axes the broadcast added, and over the axes where the input had 1.

    Written with autograd's own operations, as every gradient rule in this module is, so
    that the rule itself can be differentiated (a gradient of a gradient)."""
    leading = np.ndim(g) - len(shape)
    if leading > 0:
        g = anp.sum(g, axis=tuple(range(leading)))
    kept_ones = tuple(axis for axis, size in enumerate(shape) if size == 1 and np.shape(g)[axis] != 1)
    if kept_ones:
        g = anp.sum(g, axis=kept_ones, keepdims=True)
    return anp.reshape(g, shape)


# ---------------------------------------------------------------- dtypes, constants
bool = compat.bool
int8, int16, int32, int64 = compat.int8, compat.int16, compat.int32, compat.int64
uint8, uint16, uint32, uint64 = compat.uint8, compat.uint16, compat.uint32, compat.uint64
float32, float64 = compat.float32, compat.float64
complex64, complex128 = compat.complex64, compat.complex128
# The half floats (surface.HALF_DTYPES): float16 is NumPy's own, bfloat16 comes from ml_dtypes
# (installed with jax and tensorflow; the numpy extra names it). Without it, xp.bfloat16 is absent
# and the backend says ``pip install ml_dtypes`` (backend.py).
float16 = np.float16
try:
    from ml_dtypes import bfloat16
except ImportError:  # pragma: no cover - ml_dtypes comes with the numpy extra
    _BFLOAT16 = None
else:
    _BFLOAT16 = np.dtype(bfloat16)
    # The reference autodiff traces bfloat16 scalars (a sum's result) as it traces NumPy's own floats.
    ArrayBox.register(bfloat16)
    ArrayVSpace.register(bfloat16)

#: The standard's names of this namespace's dtypes, half floats included, for the dtype functions
#: NumPy cannot answer for bfloat16 (it is an ml_dtypes type NumPy's isdtype and result_type refuse).
_NATIVE = {name: np.dtype(name) for name in surface.DTYPES + ("float16",)}
if _BFLOAT16 is not None:
    _NATIVE["bfloat16"] = _BFLOAT16

e, pi, inf, nan, newaxis = np.e, np.pi, np.inf, np.nan, None

__array_namespace_info__ = info.info_function(compat.__array_namespace_info__)


def finfo(type: Any, /) -> Any:
    """Limits of a floating dtype (or an array's): Python floats, and ``dtype`` this namespace's dtype."""
    if _is_half(type):
        return _TABLE.finfo(_dtype_of(type))
    limits = compat.finfo(getval(type))
    return dtypes.standard_finfo(limits, np.dtype(limits.dtype))


def iinfo(type: Any, /) -> Any:
    """Limits of an integer dtype (or an array's): Python ints, and ``dtype`` this namespace's dtype."""
    limits = compat.iinfo(getval(type))
    return dtypes.standard_iinfo(limits, np.dtype(limits.dtype))


def _standard_name(dtype: Any) -> str:
    """The standard's name of a dtype of this namespace (DTypeError for others)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise DTypeError(f"{dtype!r} is not a dtype") from None
    if name not in _NATIVE:
        raise DTypeError(f"{dtype!r} is not one of the dtypes portable_dl supports here: {', '.join(_NATIVE)}")
    return name


#: isdtype, can_cast and finfo for the half floats, from the project's promotion table.
_TABLE = dtypes.DtypeTable(_NATIVE, _standard_name)


def _dtype_of(dtype_or_array: Any) -> Any:
    """The dtype of an array (traced or not), or the argument itself (a dtype)."""
    value = getval(dtype_or_array)
    return value.dtype if isinstance(value, (np.ndarray, np.generic)) else value


def _is_half(dtype_or_array: Any) -> builtins.bool:
    """Whether ``dtype_or_array`` is float16 or bfloat16 (or an array of either)."""
    return dtypes.half_name(_dtype_of(dtype_or_array)) is not None


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether ``dtype`` is of ``kind`` (a kind name, a dtype or a tuple of them); float16 and
    bfloat16 are real floating."""
    if _is_half(dtype) or (not isinstance(kind, str) and builtins.any(_is_half(k) for k in _as_tuple(kind))):
        return _TABLE.isdtype(dtype, kind)
    return compat.isdtype(dtype, kind)


def _as_tuple(kind: Any) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def can_cast(from_: Any, to: Any, /) -> builtins.bool:
    """Whether type promotion takes ``from_`` (a dtype or an array) to ``to``."""
    if _is_half(from_) or _is_half(to):
        return _TABLE.can_cast(_dtype_of(from_), to)
    return compat.can_cast(getval(from_), to)


def result_type(*arrays_and_dtypes: Any) -> Any:
    """The standard's promoted dtype; arrays under an autodiff trace count by their value.
    With a half float among them, the project's table (NumPy cannot promote float16 with
    bfloat16, and widens bfloat16 with a Python float to float32)."""
    values = [getval(a) for a in arrays_and_dtypes]
    scalars = [v for v in values if isinstance(v, (builtins.bool, int, float, complex))]
    others = [_dtype_of(v) for v in values if not isinstance(v, (builtins.bool, int, float, complex))]
    if not builtins.any(dtypes.half_name(d) for d in others):
        return compat.result_type(*values)
    name = promote_names(*(_standard_name(d) for d in others))
    for scalar in scalars:
        name = promote_with_scalar(name, scalar, "float64", "int64")
    return _NATIVE[name]


# ----------------------------------------------------------------------- creation
def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    """An array from ``obj``; an array being traced by the autodiff stays traced."""
    if isbox(obj):
        return obj if dtype is None else anp.astype(obj, dtype)
    return compat.asarray(obj, dtype=dtype, device=device, copy=copy)


arange = compat.arange
empty = compat.empty
eye = compat.eye
full = compat.full
linspace = compat.linspace
ones = compat.ones
zeros = compat.zeros
from_dlpack = compat.from_dlpack


def meshgrid(*arrays: Any, indexing: str = "xy") -> list:
    """Coordinate matrices from coordinate vectors, as a list (the standard's return type)."""
    return list(anp.meshgrid(*arrays, indexing=indexing))


def _like(function):
    @functools.wraps(function)
    def like(x: Any, /, *args: Any, dtype: Any = None, device: Any = None) -> Any:
        return function(getval(x), *args, dtype=dtype, device=device)

    return like


empty_like = _like(compat.empty_like)
ones_like = _like(compat.ones_like)
zeros_like = _like(compat.zeros_like)
full_like = _like(compat.full_like)


def tril(x: Any, /, *, k: int = 0) -> Any:
    return anp.tril(x, k=k)


def triu(x: Any, /, *, k: int = 0) -> Any:
    return anp.triu(x, k=k)


# ----------------------------------------------------------------- element-wise
#: dtype kinds that meet a floating array as integers (bool, signed, unsigned)
_INTEGRAL_KINDS = frozenset("biu")


def _promoting(function: Any, name: str) -> Any:
    """``function(x1, x2)`` under the project's rule for mixed kinds (README, "Conventions";
    ``_common/promotion.py``): an integer or bool array meeting a floating array takes that
    floating dtype (NumPy would widen int32 + float32 to float64). Same-dtype calls, the
    common case, go straight through. Shapes that do not broadcast raise BroadcastError."""

    def promoted(x1: Any, x2: Any, /) -> Any:
        d1, d2 = getattr(x1, "dtype", None), getattr(x2, "dtype", None)
        if d1 is not d2 and d1 is not None and d2 is not None:
            k1, k2 = d1.kind, d2.kind
            if k1 == "f" and k2 in _INTEGRAL_KINDS:
                x2 = getval(x2).astype(d1)
            elif k2 == "f" and k1 in _INTEGRAL_KINDS:
                x1 = getval(x1).astype(d2)
            elif d1 is _BFLOAT16 or d2 is _BFLOAT16:  # NumPy's dtype objects are singletons
                x1, x2 = _bfloat16_operands(x1, x2, d1, d2)
        elif (d1 is None and d2 is _BFLOAT16 is not None) or (d2 is None and d1 is _BFLOAT16 is not None):
            x1, x2 = _weak_scalar(x1, x2), _weak_scalar(x2, x1)
        # raises_broadcast_error inlined: one Python frame less on the hot path.
        try:
            return function(x1, x2)
        except BroadcastError:
            raise
        except Exception as error:
            if d1 is not None and d2 is not None:
                try:
                    broadcast_shapes(shape_of(x1), shape_of(x2), operation=name)
                except BroadcastError as broadcast_error:
                    raise broadcast_error from error
            raise

    promoted.__name__ = promoted.__qualname__ = name
    return promoted


def _weak_scalar(x: Any, other: Any) -> Any:
    """A Python scalar ``x`` meeting a bfloat16 array ``other`` as a bfloat16 0-d array (NumPy would
    widen ``bfloat16 * 2.0`` to float32: ml_dtypes' type is not a NumPy float, so NEP 50's weak
    scalars do not apply to it). A float meeting an integer array stays as it is."""
    if isinstance(x, (builtins.bool, int, float)) and getattr(other, "dtype", None) == _BFLOAT16:
        return np.asarray(x, dtype=_BFLOAT16)
    return x


def _bfloat16_operands(x1: Any, x2: Any, d1: Any, d2: Any) -> tuple[Any, Any]:
    """Two arrays, one bfloat16, cast to their promoted dtype (NumPy cannot promote bfloat16
    with float16, and ml_dtypes' own rules differ from the table's in places)."""
    target = _NATIVE[promote_names(_standard_name(d1), _standard_name(d2))]
    if d1 != target:
        x1 = anp.astype(x1, target) if isbox(x1) else x1.astype(target)
    if d2 != target:
        x2 = anp.astype(x2, target) if isbox(x2) else x2.astype(target)
    return x1, x2


add = _promoting(anp.add, "add")
subtract = _promoting(anp.subtract, "subtract")
multiply = _promoting(anp.multiply, "multiply")
divide = _promoting(anp.true_divide, "divide")


def _floor_divide(x1: Any, x2: Any, /) -> Any:
    """``floor(x1 / x2)``; where an operand is infinite, the standard's special cases
    (``inf // 2 = inf``, ``1 // -inf = -0``), which NumPy's fmod-based form misses (NaN, -1).
    Its gradient is zero: computed on values."""
    v1, v2 = getval(x1), getval(x2)
    with np.errstate(invalid="ignore", divide="ignore"):
        # xp=_this, whose dtype functions know bfloat16 (array_api_compat's refuse it).
        return generic.floor_divide_at_infinities(v1, v2, compat.floor_divide(v1, v2), xp=_this)


floor_divide = _promoting(_floor_divide, "floor_divide")
remainder = _promoting(anp.remainder, "remainder")
pow = _promoting(anp.power, "pow")
maximum = _promoting(anp.maximum, "maximum")
minimum = _promoting(anp.minimum, "minimum")
atan2 = _promoting(anp.arctan2, "atan2")
hypot = _promoting(anp.hypot, "hypot")
copysign = _promoting(lambda x1, x2, /: _copysign(x1, x2), "copysign")
logaddexp = _promoting(anp.logaddexp, "logaddexp")
equal = raises_broadcast_error(anp.equal, "equal")
not_equal = raises_broadcast_error(anp.not_equal, "not_equal")
less = raises_broadcast_error(anp.less, "less")
less_equal = raises_broadcast_error(anp.less_equal, "less_equal")
greater = raises_broadcast_error(anp.greater, "greater")
greater_equal = raises_broadcast_error(anp.greater_equal, "greater_equal")
logical_and = raises_broadcast_error(anp.logical_and, "logical_and")
logical_or = raises_broadcast_error(anp.logical_or, "logical_or")
logical_xor = raises_broadcast_error(anp.logical_xor, "logical_xor")

negative = anp.negative


@primitive
def positive(x: Any, /) -> Any:
    return np.positive(x)


defvjp(positive, lambda ans, x: lambda g: g)


@primitive
def _copysign(x1: Any, x2: Any) -> Any:
    return np.copysign(x1, x2)


# d copysign(a, b) / da = +-1 (whether the sign of a was kept or flipped); / db = 0.
defvjp(
    _copysign,
    lambda ans, x1, x2: (
        lambda g: _sum_to_shape(g * np.where(np.signbit(x1) == np.signbit(x2), 1.0, -1.0), np.shape(x1))
    ),
    lambda ans, x1, x2: lambda g: np.zeros(np.shape(x2)),
)
abs = anp.abs
sign = anp.sign
exp = anp.exp


def expm1(x: Any, /) -> Any:
    """``exp(x) - 1``, accurate near 0; complex ``x`` through :func:`_complex_expm1`."""
    return _complex_expm1(getval(x)) if getval(x).dtype.kind == "c" else anp.expm1(x)


def _complex_expm1(z: np.ndarray) -> np.ndarray:
    # No gradient: complex inputs are outside the autodiff contract.
    with np.errstate(invalid="ignore", over="ignore"):
        return generic.complex_expm1(z, xp=compat, from_parts=lambda real, imag: _join(real, imag, z.dtype))


def _join(real: np.ndarray, imag: np.ndarray, dtype: Any) -> np.ndarray:
    """A complex array from its parts (``real + 1j * imag`` would turn an infinite part into NaN)."""
    result = np.empty(np.shape(real), dtype=dtype)
    result.real, result.imag = real, imag
    return result


log = anp.log
log1p = anp.log1p
log2 = anp.log2
log10 = anp.log10
sqrt = anp.sqrt
square = anp.square
reciprocal = anp.reciprocal
sin, cos, tan = anp.sin, anp.cos, anp.tan
asin, acos, atan = anp.arcsin, anp.arccos, anp.arctan
sinh, cosh = anp.sinh, anp.cosh


@primitive
def _tanh(x: Any) -> Any:
    return np.tanh(x)


# 1 - tanh^2 rather than autograd's 1 / cosh^2, whose cosh overflows (with a warning) for |x| > 710.
defvjp(_tanh, lambda ans, x: lambda g: g * (1 - ans * ans))


def tanh(x: Any, /) -> Any:
    """Hyperbolic tangent; complex ``x`` with the standard's special values: NumPy follows C99,
    whose ``tanh(inf + bj)`` is ``1 + 0j * sin(2b)``, where the standard says ``1 + 0j`` for every
    positive finite ``b``. No gradient for complex ``x`` (outside the autodiff contract)."""
    values = getval(x)
    if values.dtype.kind != "c":
        return _tanh(x)
    with np.errstate(invalid="ignore"):
        return complex_special_values.complex_function(
            "tanh", np.tanh, values, xp=compat, from_parts=lambda real, imag: _join(real, imag, values.dtype)
        )


asinh, atanh = anp.arcsinh, anp.arctanh


def acosh(x: Any, /) -> Any:
    """Inverse hyperbolic cosine; in bfloat16 too (ml_dtypes has no arccosh loop: NumPy computes
    it in float32, and the result is rounded back to bfloat16)."""
    result = anp.arccosh(x)
    return _in_dtype_of(result, x)


def _in_dtype_of(result: Any, x: Any) -> Any:
    """``result`` in ``x``'s dtype, where NumPy computed a bfloat16 function in float32."""
    wanted = getval(x).dtype
    if getval(result).dtype == wanted:
        return result
    return anp.astype(result, wanted) if isbox(result) else result.astype(wanted)


floor, ceil, trunc = anp.floor, anp.ceil, anp.trunc
isnan, isinf, isfinite = anp.isnan, anp.isinf, anp.isfinite
logical_not = anp.logical_not


def round(x: Any, /) -> Any:
    """Round half to even, as the standard says."""
    return anp.round(x)


@primitive
def _where(condition: Any, x1: Any, x2: Any) -> Any:
    return np.where(condition, x1, x2)


# autograd's own where returns the cotangent in the broadcast shape, not the input's.
defvjp(
    _where,
    None,
    lambda ans, c, x1, x2: lambda g: _sum_to_shape(_where(c, g, 0.0), np.shape(x1)),
    lambda ans, c, x1, x2: lambda g: _sum_to_shape(_where(c, 0.0, g), np.shape(x2)),
)


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    broadcast_shapes(shape_of(condition), shape_of(x1), shape_of(x2), operation="where")
    if _BFLOAT16 is not None:  # a Python scalar keeps a bfloat16 array's dtype (see _weak_scalar)
        x1, x2 = _weak_scalar(x1, x2), _weak_scalar(x2, x1)
    return _where(getval(condition), x1, x2)


clip = partial(generic.clip, xp=None)  # rebound below, once the namespace exists


# ------------------------------------------------------------------- reductions
def _accumulate_in(x: Any, dtype: Any) -> tuple[Any, Any]:
    """``x`` cast to ``dtype``, or to the standard's accumulation dtype when None (small
    integers widen to the default integer, int64), and that dtype: NumPy's own reductions
    widen small integers whatever they are given, so it must be passed on to them too."""
    own = getval(x).dtype
    if dtype is None:
        if own.kind in "fc":  # the common case first: floats keep their dtype
            return x, own
        dtype = generic.accumulation_dtype(own.name) or own
    dtype = np.dtype(dtype)
    if own != dtype:
        x = anp.astype(x, dtype) if isbox(x) else x.astype(dtype)
    return x, dtype


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    x, dtype = _accumulate_in(x, dtype)
    return anp.sum(x, axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=keepdims, dtype=dtype)


def _axes(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def mean(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    return anp.mean(x, axis=axis, keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    """Largest element; tied maxima share the gradient equally."""
    return anp.max(x, axis=axis, keepdims=keepdims)


def min(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    """Smallest element; tied minima share the gradient equally."""
    return anp.min(x, axis=axis, keepdims=keepdims)


@primitive
def _prod(x: Any, axis: Any, keepdims: bool) -> Any:
    return np.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _prod_vjp(ans: Any, x: Any, axis: Any, keepdims: bool):
    """d prod / d x_i is the product of the other elements: the exclusive cumulative
    products from the left and from the right, multiplied. Exact where elements are zero."""
    axes = tuple(range(x.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    axes = tuple(a % builtins.max(x.ndim, 1) for a in axes)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    flat = moved.reshape(moved.shape[: len(kept)] + (-1,))
    ones_column = np.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
    left = np.cumprod(np.concatenate([ones_column, flat[..., :-1]], axis=-1), axis=-1)
    right = np.flip(np.cumprod(np.flip(np.concatenate([flat[..., 1:], ones_column], axis=-1), -1), axis=-1), -1)
    others = (left * right).reshape(moved.shape)
    others = np.transpose(others, np.argsort(kept + list(axes)))

    def vjp(g: Any) -> Any:
        g = g if keepdims else np.expand_dims(g, axes) if axes else g
        return others * g

    return vjp


defvjp(_prod, _prod_vjp)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return _prod(_accumulate_in(x, dtype)[0], _axes(axis), keepdims)


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return anp.var(x, axis=axis, ddof=correction, keepdims=keepdims)


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return anp.std(x, axis=axis, ddof=correction, keepdims=keepdims)


_FLOAT16 = np.dtype(np.float16)


def _half_accumulating(function: Any) -> Any:
    """``function(x, **keywords)`` accumulated in float32 when ``x`` is float16 or bfloat16 (and
    no other dtype is asked for), the result rounded back to ``x``'s dtype once, as PyTorch and
    JAX reduce half arrays. ml_dtypes' own bfloat16 sum adds in bfloat16 one element at a time
    and stalls: the sum of 4096 values near 0.35 came out 82% low (float32: 3e-4, its rounding)."""

    @functools.wraps(function)
    def accumulating(x: Any, /, **keywords: Any) -> Any:
        own = getval(x).dtype
        if (own is _FLOAT16 or own is _BFLOAT16) and keywords.get("dtype") in (None, own):
            keywords.pop("dtype", None)
            wide = anp.astype(x, np.float32) if isbox(x) else x.astype(np.float32)
            return _in_dtype_of(function(wide, **keywords), x)
        return function(x, **keywords)

    return accumulating


sum, mean, var, std = (_half_accumulating(f) for f in (sum, mean, var, std))


def all(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    return np.all(getval(x), axis=axis, keepdims=keepdims)


def any(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    return np.any(getval(x), axis=axis, keepdims=keepdims)


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    if axis is None:
        if getval(x).ndim > 1:
            raise ValueError("cumulative_sum needs an axis for arrays of rank > 1")
        axis = 0
    x, dtype = _accumulate_in(x, dtype)
    result = anp.cumsum(x, axis=axis, dtype=dtype)
    return generic.with_initial(result, axis, 0, xp=_this) if include_initial else result


cumulative_sum = _half_accumulating(cumulative_sum)


@primitive
def _cumprod(x: Any, axis: int) -> Any:
    return np.cumprod(x, axis=axis, dtype=x.dtype)


def _cumprod_vjp(ans: Any, x: Any, axis: int):
    """Back through the recurrence ``y[j] = y[j-1] * x[j]``: the adjoint ``a[j] = g[j] +
    a[j+1] * x[j+1]`` and ``dx[j] = a[j] * y[j-1]``. No division, so exact where x is zero."""

    def vjp(g: Any) -> Any:
        xs, ys, gs = (np.moveaxis(np.asarray(v), axis, -1) for v in (x, ans, g))
        grad = np.empty(gs.shape, dtype=np.result_type(gs, xs))
        adjoint = np.zeros(gs.shape[:-1], dtype=grad.dtype)
        for j in reversed(range(gs.shape[-1])):
            adjoint = gs[..., j] + (adjoint * xs[..., j + 1] if j + 1 < gs.shape[-1] else 0)
            grad[..., j] = adjoint * (ys[..., j - 1] if j > 0 else 1)
        return np.moveaxis(grad, -1, axis)

    return vjp


defvjp(_cumprod, _cumprod_vjp)


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    """Running products along ``axis`` (optional for 1-D arrays); with ``include_initial`` a
    leading one. The gradient is exact where elements are zero."""
    if axis is None:
        if getval(x).ndim > 1:
            raise ValueError("cumulative_prod needs an axis for arrays of rank > 1")
        axis = 0
    axis = generic.normalize_axis(axis, getval(x).ndim)
    result = _cumprod(_accumulate_in(x, dtype)[0], axis)
    return generic.with_initial(result, axis, 1, xp=_this) if include_initial else result


# --------------------------------------------------------------- linear algebra
def _matmul(x1: Any, x2: Any, /) -> Any:
    """Matrix product; bfloat16 operands give bfloat16 (NumPy multiplies ml_dtypes' bfloat16 in
    float32 and returns float32: rounded back, as a bfloat16 kernel with float32 accumulation)."""
    result = anp.matmul(x1, x2)
    if _BFLOAT16 is not None and getval(result).dtype != getval(x1).dtype and getval(x1).dtype == _BFLOAT16:
        return _in_dtype_of(result, x1)
    return result


matmul = checks_matmul_shapes(_matmul)


def _tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return anp.tensordot(x1, x2, axes=axes)


tensordot = shape_checked(_tensordot, ValueError, tensordot_failed)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="vecdot")
    return generic.vecdot(x1, x2, axis=axis, xp=_this)


def matrix_transpose(x: Any, /) -> Any:
    return generic.matrix_transpose(x, xp=_this)


# ----------------------------------------------------------------- manipulation
def _reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
    return anp.reshape(x, tuple(shape))


reshape = shape_checked(_reshape, ValueError, reshape_failed)


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    return anp.transpose(x, tuple(axes))


def expand_dims(x: Any, /, axis: int = 0) -> Any:
    generic.check_expand_dims_axis(axis, getval(x).ndim)
    return anp.expand_dims(x, axis)


def _squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    return anp.squeeze(x, axis=axis)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return generic.concat_flattened(arrays, xp=_this)
    return anp.concatenate(list(arrays), axis=axis)


squeeze = shape_checked(_squeeze, ValueError, squeeze_failed)
concat = shape_checked(_concat, ValueError, concat_failed)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    arrays = list(arrays)
    if len({shape_of(a) for a in arrays}) > 1:
        raise stack_error(arrays)
    return anp.stack(arrays, axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    n = getval(x).shape[axis]
    return tuple(take(x, np.asarray(i), axis=axis) for i in range(n))


@primitive
def _broadcast_to(x: Any, shape: tuple) -> Any:
    return np.broadcast_to(x, shape)


# autograd's own broadcast_to cannot add leading axes in its gradient.
defvjp(_broadcast_to, lambda ans, x, shape: lambda g: _sum_to_shape(g, np.shape(x)))


def broadcast_to(x: Any, /, shape: Sequence[int]) -> Any:
    shape = tuple(shape)
    if broadcast_shapes(shape_of(x), shape, operation="broadcast_to") != shape:
        raise BroadcastError(shape_of(x), shape, operation="broadcast_to")
    return _broadcast_to(x, shape)


def broadcast_arrays(*arrays: Any) -> list:
    return generic.broadcast_arrays(*arrays, xp=_this)


@primitive
def _flip(x: Any, axis: Any) -> Any:
    return np.flip(x, axis=axis)


defvjp(_flip, lambda ans, x, axis: lambda g: _flip(g, axis))


def flip(x: Any, /, *, axis: Any = None) -> Any:
    return _flip(x, axis)


def roll(x: Any, /, shift: Any, *, axis: Any = None) -> Any:
    return anp.roll(x, shift, axis=axis)


moveaxis = anp.moveaxis


def tile(x: Any, repetitions: Sequence[int], /) -> Any:
    return anp.tile(x, tuple(repetitions))


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
    return anp.repeat(x, repeats, axis=axis)


# ------------------------------------------------------------ searching, indexing
def argmax(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
    return np.argmax(getval(x), axis=axis, keepdims=keepdims).astype(int64)


def argmin(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
    return np.argmin(getval(x), axis=axis, keepdims=keepdims).astype(int64)


@primitive
def _take(x: Any, indices: Any, axis: int) -> Any:
    return np.take(x, indices, axis=axis)


@primitive
def _take_transposed(g: Any, indices: Any, axis: int, shape: tuple) -> Any:
    """The gradient of ``_take``: ``g`` added into zeros of ``shape`` at ``indices`` along
    ``axis`` (repeated indices add up). Linear in ``g``; its own gradient is ``_take``."""
    grad = np.zeros(shape, dtype=g.dtype)
    index = [slice(None)] * len(shape)
    index[axis] = indices
    np.add.at(grad, tuple(index), g)
    return grad


defvjp(_take, lambda ans, x, indices, axis: lambda g: _take_transposed(g, indices, axis, np.shape(x)))
defvjp(_take_transposed, lambda ans, g, indices, axis, shape: lambda h: _take(h, indices, axis))


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    if axis is None:
        if getval(x).ndim != 1:
            raise ValueError("take needs an axis for arrays of rank > 1")
        axis = 0
    indices = np.asarray(getval(indices))
    size = getval(x).shape[axis]
    if indices.size and (indices.max() >= size or indices.min() < -size):
        raise IndexError(f"take: indices out of range for axis {axis} of size {size}")
    return _take(x, indices, axis)


@primitive
def _take_along_axis(x: Any, indices: Any, axis: int) -> Any:
    return np.take_along_axis(x, indices, axis=axis)


@primitive
def _take_along_axis_transposed(g: Any, indices: Any, axis: int, shape: tuple) -> Any:
    """The gradient of ``_take_along_axis``: ``g`` added into zeros of ``shape`` where
    ``indices`` picked (repeated indices add up). Linear in ``g``; its own gradient is
    ``_take_along_axis``."""
    grad = np.zeros(shape, dtype=g.dtype)
    np.put_along_axis(grad, indices, 0, axis=axis)  # shape check only
    full_index = list(np.ix_(*[np.arange(n) for n in indices.shape]))
    full_index[axis % len(shape)] = indices
    np.add.at(grad, tuple(full_index), g)
    return grad


defvjp(
    _take_along_axis,
    lambda ans, x, indices, axis: lambda g: _take_along_axis_transposed(g, indices, axis, np.shape(x)),
)
defvjp(
    _take_along_axis_transposed,
    lambda ans, g, indices, axis, shape: lambda h: _take_along_axis(h, indices, axis),
)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    return _take_along_axis(x, np.asarray(getval(indices)), axis)


def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """Sorted along ``axis``; the gradient flows back to each element's original place
    (through take_along_axis, which autograd's own sort lacks for rank > 1)."""
    order = argsort(x, axis=axis, descending=descending)
    return take_along_axis(x, order, axis=axis)


def _ordered_as_float32(values: np.ndarray) -> np.ndarray:
    """``values`` in a dtype NumPy orders correctly: ml_dtypes' bfloat16 sorts and uniques
    wrongly once a NaN is present (the order stops at it), so bfloat16 is read as float32,
    which holds every bfloat16 value exactly."""
    return values.astype(np.float32) if values.dtype.name == "bfloat16" else values


def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    values = _ordered_as_float32(getval(x))
    if descending:
        # A stable descending order: sort the reversed array ascending, then map the
        # positions back, so equal values keep their original order.
        reversed_order = np.argsort(np.flip(values, axis=axis), axis=axis, kind="stable")
        return (values.shape[axis] - 1 - np.flip(reversed_order, axis=axis)).astype(int64)
    return np.argsort(values, axis=axis, kind="stable").astype(int64)


# ------------------------------------------------------------------ data types
def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    if isbox(x):
        return anp.astype(x, dtype)
    return x.astype(dtype, copy=copy)


# ------------------------------------------- functions without a gradient (integers, bools, indices)
def _on_values(function: Any) -> Any:
    """``function`` applied to the values of its arguments: under an autodiff trace, to the
    arrays inside the boxes (these functions have no gradient: integer, boolean or index results)."""

    @functools.wraps(function)  # and its signature, through __wrapped__
    def on_values(*args: Any, **kwargs: Any) -> Any:
        return function(*(getval(a) for a in args), **kwargs)

    return on_values


bitwise_and = raises_broadcast_error(_on_values(compat.bitwise_and), "bitwise_and")
bitwise_or = raises_broadcast_error(_on_values(compat.bitwise_or), "bitwise_or")
bitwise_xor = raises_broadcast_error(_on_values(compat.bitwise_xor), "bitwise_xor")
bitwise_left_shift = raises_broadcast_error(_on_values(compat.bitwise_left_shift), "bitwise_left_shift")
bitwise_right_shift = raises_broadcast_error(_on_values(compat.bitwise_right_shift), "bitwise_right_shift")
bitwise_invert = _on_values(compat.bitwise_invert)
nextafter = raises_broadcast_error(_on_values(compat.nextafter), "nextafter")
signbit = _on_values(compat.signbit)
nonzero = _on_values(compat.nonzero)
count_nonzero = _on_values(compat.count_nonzero)


def _ordered_on_values(function: Any) -> Any:
    """``function`` (searchsorted, a unique_* function) on the values of its arguments, with
    bfloat16 arrays read as float32 (:func:`_ordered_as_float32`); unique values come back
    in the input's dtype (exactly: they are bfloat16 values)."""

    @functools.wraps(function)
    def ordered(x: Any, *args: Any, **kwargs: Any) -> Any:
        values = getval(x)
        result = function(_ordered_as_float32(values), *(_ordered_as_float32(getval(a)) for a in args), **kwargs)
        if values.dtype.name != "bfloat16" or function is compat.searchsorted:
            return result
        if isinstance(result, np.ndarray):
            return result.astype(values.dtype)
        return result._replace(values=result.values.astype(values.dtype))

    return ordered


searchsorted = _ordered_on_values(compat.searchsorted)
unique_all = _ordered_on_values(compat.unique_all)
unique_counts = _ordered_on_values(compat.unique_counts)
unique_inverse = _ordered_on_values(compat.unique_inverse)
unique_values = _ordered_on_values(compat.unique_values)

# ---------------------------------------------------------- complex parts (differentiable)
conj = anp.conj
real = anp.real
imag = anp.imag


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    return generic.diff(x, axis=axis, n=n, prepend=prepend, append=append, xp=_this)


# ------------------------------------------------------------------ extensions
def _traced_or_plain(plain: Any, traced: Any) -> Any:
    """``traced`` (autograd's differentiable form) when an argument is being traced, else
    ``plain`` (array_api_compat's, with the standard's dtypes and result types)."""

    @functools.wraps(plain)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        if builtins.any(isbox(a) for a in args):
            return traced(*args, **kwargs)
        return plain(*args, **kwargs)

    return dispatch


def _eigh(x: Any, /) -> Any:
    return common_linalg.EighResult(*anp.linalg.eigh(x))


def _slogdet(x: Any, /) -> Any:
    return common_linalg.SlogdetResult(*anp.linalg.slogdet(x))


def _svd(x: Any, /, *, full_matrices: bool = True) -> Any:
    return common_linalg.SVDResult(*anp.linalg.svd(x, full_matrices=full_matrices))


def _cholesky(x: Any, /, *, upper: bool = False) -> Any:
    lower = anp.linalg.cholesky(x)
    return anp.conj(anp.swapaxes(lower, -1, -2)) if upper else lower


def _trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    # The sum of the diagonal: autograd's trace has no gradient for axis1/axis2.
    return sum(_diagonal(x, offset=offset), axis=-1, dtype=dtype)


@primitive
def _diagonal_of(x: Any, offset: int) -> Any:
    return np.diagonal(x, offset=offset, axis1=-2, axis2=-1)


@primitive
def _diagonal_transposed(g: Any, offset: int, shape: tuple) -> Any:
    """The gradient of ``_diagonal_of`` (autograd's own diagonal gradient takes only offset 0
    and the first two axes): ``g`` written on the ``offset`` diagonal of zeros of ``shape``.
    Linear in ``g``; its own gradient is ``_diagonal_of``."""
    grad = np.zeros(shape, dtype=g.dtype)
    steps = np.arange(np.shape(g)[-1])
    grad[..., steps + builtins.max(-offset, 0), steps + builtins.max(offset, 0)] = g
    return grad


defvjp(_diagonal_of, lambda ans, x, offset: lambda g: _diagonal_transposed(g, offset, np.shape(x)))
defvjp(_diagonal_transposed, lambda ans, g, offset, shape: lambda h: _diagonal_of(h, offset))


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return _diagonal_of(x, offset)


linalg = types.SimpleNamespace(
    cholesky=_traced_or_plain(compat.linalg.cholesky, _cholesky),
    cross=_traced_or_plain(compat.linalg.cross, lambda x1, x2, /, *, axis=-1: anp.cross(x1, x2, axis=axis)),
    det=_traced_or_plain(compat.linalg.det, anp.linalg.det),
    diagonal=generic.with_clamped_diagonal_offset(_traced_or_plain(compat.linalg.diagonal, _diagonal)),
    eigh=_traced_or_plain(compat.linalg.eigh, _eigh),
    eigvalsh=_traced_or_plain(compat.linalg.eigvalsh, lambda x, /: _eigh(x).eigenvalues),
    inv=_traced_or_plain(compat.linalg.inv, anp.linalg.inv),
    matmul=matmul,
    matrix_norm=lambda x, /, *, keepdims=False, ord="fro": common_linalg.matrix_norm(
        x, keepdims=keepdims, ord=ord, xp=_this
    ),
    matrix_power=_traced_or_plain(
        lambda x, n, /: _in_dtype_of(compat.linalg.matrix_power(x, n), x),  # bfloat16: see _matmul
        lambda x, n, /: generic.matrix_power(x, n, xp=_this, inv=anp.linalg.inv),
    ),
    matrix_rank=_on_values(compat.linalg.matrix_rank),
    matrix_transpose=matrix_transpose,
    outer=_traced_or_plain(compat.linalg.outer, anp.outer),
    pinv=_traced_or_plain(compat.linalg.pinv, lambda x, /, *, rtol=None: anp.linalg.pinv(x)),
    qr=_on_values(compat.linalg.qr),
    slogdet=_traced_or_plain(compat.linalg.slogdet, _slogdet),
    solve=_traced_or_plain(compat.linalg.solve, anp.linalg.solve),
    svd=_traced_or_plain(compat.linalg.svd, _svd),
    svdvals=_traced_or_plain(compat.linalg.svdvals, lambda x, /: _svd(x, full_matrices=False).S),
    tensordot=tensordot,
    trace=generic.with_clamped_diagonal_offset(_traced_or_plain(compat.linalg.trace, _trace)),
    vecdot=vecdot,
    vector_norm=lambda x, /, *, axis=None, keepdims=False, ord=2: common_linalg.vector_norm(
        x, axis=axis, keepdims=keepdims, ord=ord, xp=_this
    ),
)


#: The factorizations (LAPACK's): NumPy refuses float16 ("array type float16 is unsupported in
#: linalg", a TypeError) and computes bfloat16 in float64, returning float64. Both refused up front
#: with the DTypeError every backend gives, never a result in another dtype.
_NO_HALF_KERNEL = (
    "cholesky", "det", "eigh", "eigvalsh", "inv", "matrix_rank", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
)  # fmt: skip
dtypes.refuse_half_factorizations(linalg, _NO_HALF_KERNEL, f"NumPy {np.__version__}")


def _fft_traced(name: str) -> Any:
    """The differentiable form of ``numpy.fft.<name>`` (autograd's), with the standard's
    keywords: ``n``/``s``, ``axis``/``axes`` and ``norm``."""
    return getattr(anp.fft, name)


fft = types.SimpleNamespace(
    **{
        name: _traced_or_plain(getattr(compat.fft, name), _fft_traced(name))
        for name in ("fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "fftshift", "ifftshift")
    },
    hfft=_on_values(compat.fft.hfft),
    ihfft=_on_values(compat.fft.ihfft),
    fftfreq=compat.fft.fftfreq,
    rfftfreq=compat.fft.rfftfreq,
)
for _name in dtypes.HALF_REFUSING_FFT:  # no complex half dtype for the result (dtypes.HALF_REFUSING_FFT)
    setattr(fft, _name, dtypes.without_half_kernel(getattr(fft, _name), _name, "", dtypes.FFT_HALF_REASON))
del _name


import sys as _sys

_this = _sys.modules[__name__]
clip = partial(generic.clip, xp=_this)
del _sys

#: The namespace a NumPy backend hands out: the standard's names only.
xp = surface.build_namespace("portable_dl.backends.numpy.xp", globals())
