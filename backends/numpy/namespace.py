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
from autograd.tracer import getval, isbox

from portable_dl.errors import BroadcastError

from .._common import complex_special_values, dtypes, generic, info, surface
from .._common import linalg as common_linalg
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    raises_broadcast_error,
    shape_of,
)
from .._common.shape_errors import (
    concat_failed,
    reshape_failed,
    shape_checked,
    squeeze_failed,
    stack_error,
    tensordot_failed,
)

__array_api_version__ = surface.VERSION


def _sum_to_shape(g: np.ndarray, shape: tuple) -> np.ndarray:
    """The cotangent ``g`` of a broadcast result summed back to an input of ``shape``:
    over the leading axes the broadcast added, and over the axes where the input had 1."""
    g = np.asarray(g)
    leading = g.ndim - len(shape)
    if leading > 0:
        g = g.sum(axis=tuple(range(leading)))
    kept_ones = tuple(axis for axis, size in enumerate(shape) if size == 1 and g.shape[axis] != 1)
    if kept_ones:
        g = g.sum(axis=kept_ones, keepdims=True)
    return g.reshape(shape)


# ---------------------------------------------------------------- dtypes, constants
bool = compat.bool
int8, int16, int32, int64 = compat.int8, compat.int16, compat.int32, compat.int64
uint8, uint16, uint32, uint64 = compat.uint8, compat.uint16, compat.uint32, compat.uint64
float32, float64 = compat.float32, compat.float64
complex64, complex128 = compat.complex64, compat.complex128

e, pi, inf, nan, newaxis = np.e, np.pi, np.inf, np.nan, None

__array_namespace_info__ = info.info_function(compat.__array_namespace_info__)


def finfo(type: Any, /) -> Any:
    """Limits of a floating dtype (or an array's): Python floats, and ``dtype`` this namespace's dtype."""
    limits = compat.finfo(getval(type))
    return dtypes.standard_finfo(limits, np.dtype(limits.dtype))


def iinfo(type: Any, /) -> Any:
    """Limits of an integer dtype (or an array's): Python ints, and ``dtype`` this namespace's dtype."""
    limits = compat.iinfo(getval(type))
    return dtypes.standard_iinfo(limits, np.dtype(limits.dtype))


isdtype = compat.isdtype
can_cast = compat.can_cast


def result_type(*arrays_and_dtypes: Any) -> Any:
    """The standard's promoted dtype; arrays under an autodiff trace count by their value."""
    return compat.result_type(*(getval(a) for a in arrays_and_dtypes))


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
        return generic.floor_divide_at_infinities(v1, v2, compat.floor_divide(v1, v2), xp=compat)


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


asinh, acosh, atanh = anp.arcsinh, anp.arccosh, anp.arctanh
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
    lambda ans, c, x1, x2: lambda g: _sum_to_shape(np.where(c, g, 0.0), np.shape(x1)),
    lambda ans, c, x1, x2: lambda g: _sum_to_shape(np.where(c, 0.0, g), np.shape(x2)),
)


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    broadcast_shapes(shape_of(condition), shape_of(x1), shape_of(x2), operation="where")
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
matmul = checks_matmul_shapes(anp.matmul)


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


defvjp(_flip, lambda ans, x, axis: lambda g: np.flip(g, axis=axis))


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


def _take_vjp(ans: Any, x: Any, indices: Any, axis: int):
    def vjp(g: Any) -> Any:
        grad = np.zeros(x.shape, dtype=g.dtype)
        index = [slice(None)] * x.ndim
        index[axis] = indices
        np.add.at(grad, tuple(index), g)  # repeated indices add up
        return grad

    return vjp


defvjp(_take, _take_vjp)


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


def _take_along_axis_vjp(ans: Any, x: Any, indices: Any, axis: int):
    def vjp(g: Any) -> Any:
        grad = np.zeros(x.shape, dtype=g.dtype)
        np.put_along_axis(grad, indices, 0, axis=axis)  # shape check only
        full_index = list(np.ix_(*[np.arange(n) for n in indices.shape]))
        full_index[axis % x.ndim] = indices
        np.add.at(grad, tuple(full_index), g)
        return grad

    return vjp


defvjp(_take_along_axis, _take_along_axis_vjp)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    return _take_along_axis(x, np.asarray(getval(indices)), axis)


def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """Sorted along ``axis``; the gradient flows back to each element's original place
    (through take_along_axis, which autograd's own sort lacks for rank > 1)."""
    order = argsort(x, axis=axis, descending=descending)
    return take_along_axis(x, order, axis=axis)


def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    values = getval(x)
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
searchsorted = _on_values(compat.searchsorted)
unique_all = _on_values(compat.unique_all)
unique_counts = _on_values(compat.unique_counts)
unique_inverse = _on_values(compat.unique_inverse)
unique_values = _on_values(compat.unique_values)

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


def _diagonal_vjp(ans: Any, x: Any, offset: int):
    # autograd's own diagonal gradient takes only offset 0 and the first two axes.
    def vjp(g: Any) -> Any:
        grad = np.zeros(np.shape(x), dtype=np.result_type(g, x))
        steps = np.arange(np.shape(g)[-1])
        grad[..., steps + builtins.max(-offset, 0), steps + builtins.max(offset, 0)] = g
        return grad

    return vjp


defvjp(_diagonal_of, _diagonal_vjp)


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
        compat.linalg.matrix_power, lambda x, n, /: generic.matrix_power(x, n, xp=_this, inv=anp.linalg.inv)
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


import sys as _sys

_this = _sys.modules[__name__]
clip = partial(generic.clip, xp=_this)
del _sys

#: The namespace a NumPy backend hands out: the standard's names only.
xp = surface.build_namespace("portable_dl.backends.numpy.xp", globals())
