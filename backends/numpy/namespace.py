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
from functools import partial
from typing import Any, Sequence

import array_api_compat.numpy as compat
import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import getval, isbox

from .._common import generic
from .._common.shape_errors import concat_error, reshape_error, squeeze_error, stack_error, tensordot_error
from .._common.broadcasting import (
    broadcast_shapes,
    checks_matmul_shapes,
    raises_broadcast_error,
    shape_of,
)
from portable_dl.errors import BroadcastError

__array_api_version__ = "2023.12"


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

__array_namespace_info__ = compat.__array_namespace_info__
finfo = compat.finfo
iinfo = compat.iinfo
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
meshgrid = compat.meshgrid


def _like(function):
    def like(x: Any, /, *args: Any, dtype: Any = None, device: Any = None) -> Any:
        return function(getval(x), *args, dtype=dtype, device=device)

    like.__name__ = function.__name__
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
add = raises_broadcast_error(anp.add, "add")
subtract = raises_broadcast_error(anp.subtract, "subtract")
multiply = raises_broadcast_error(anp.multiply, "multiply")
divide = raises_broadcast_error(anp.true_divide, "divide")
floor_divide = raises_broadcast_error(anp.floor_divide, "floor_divide")
remainder = raises_broadcast_error(anp.remainder, "remainder")
pow = raises_broadcast_error(anp.power, "pow")
maximum = raises_broadcast_error(anp.maximum, "maximum")
minimum = raises_broadcast_error(anp.minimum, "minimum")
atan2 = raises_broadcast_error(anp.arctan2, "atan2")
hypot = raises_broadcast_error(anp.hypot, "hypot")
copysign = raises_broadcast_error(lambda x1, x2, /: _copysign(x1, x2), "copysign")
logaddexp = raises_broadcast_error(anp.logaddexp, "logaddexp")
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
    lambda ans, x1, x2: lambda g: _sum_to_shape(g * np.where(np.signbit(x1) == np.signbit(x2), 1.0, -1.0), np.shape(x1)),
    lambda ans, x1, x2: lambda g: np.zeros(np.shape(x2)),
)
abs = anp.abs
sign = anp.sign
exp = anp.exp
expm1 = anp.expm1
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
def tanh(x: Any, /) -> Any:
    return np.tanh(x)


# 1 - tanh^2 rather than autograd's 1 / cosh^2, whose cosh overflows (with a warning) for |x| > 710.
defvjp(tanh, lambda ans, x: lambda g: g * (1 - ans * ans))
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
def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    if dtype is None and isdtype(getval(x).dtype, ("signed integer", "bool")):
        dtype = int64  # the standard: integer sums accumulate in the default integer dtype
    elif dtype is None and isdtype(getval(x).dtype, "unsigned integer"):
        dtype = uint64
    if dtype is not None:
        x = anp.astype(x, dtype) if isbox(x) else x.astype(dtype)
    return anp.sum(x, axis=axis, keepdims=keepdims)


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
    return np.prod(x, axis=axis, keepdims=keepdims)


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
    if dtype is None and isdtype(getval(x).dtype, ("signed integer", "bool")):
        dtype = int64
    if dtype is not None:
        x = anp.astype(x, dtype) if isbox(x) else x.astype(dtype)
    return _prod(x, axis, keepdims)


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
    if dtype is not None:
        x = anp.astype(x, dtype) if isbox(x) else x.astype(dtype)
    result = anp.cumsum(x, axis=axis)
    if include_initial:
        zeros_shape = list(getval(result).shape)
        zeros_shape[axis] = 1
        result = anp.concatenate([np.zeros(zeros_shape, dtype=getval(result).dtype), result], axis=axis)
    return result


# --------------------------------------------------------------- linear algebra
matmul = checks_matmul_shapes(anp.matmul)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    try:
        return anp.tensordot(x1, x2, axes=axes)
    except ValueError as error:
        raise tensordot_error(shape_of(x1), shape_of(x2), axes) from error


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    broadcast_shapes(shape_of(x1), shape_of(x2), operation="vecdot")
    return generic.vecdot(x1, x2, axis=axis, xp=_this)


def matrix_transpose(x: Any, /) -> Any:
    return generic.matrix_transpose(x, xp=_this)


# ----------------------------------------------------------------- manipulation
def reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
    try:
        return anp.reshape(x, tuple(shape))
    except ValueError as error:
        raise reshape_error(shape_of(x), shape) from error


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    return anp.transpose(x, tuple(axes))


def expand_dims(x: Any, /, *, axis: int = 0) -> Any:
    return anp.expand_dims(x, axis)


def squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    try:
        return anp.squeeze(x, axis=axis)
    except ValueError as error:
        raise squeeze_error(axis, shape_of(x)) from error


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    arrays = list(arrays)
    if axis is None:
        return anp.concatenate([anp.reshape(a, (-1,)) for a in arrays], axis=0)
    try:
        return anp.concatenate(arrays, axis=axis)
    except ValueError as error:
        raise concat_error(arrays, axis) from error


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
def flip(x: Any, /, *, axis: Any = None) -> Any:
    return np.flip(x, axis=axis)


defvjp(flip, lambda ans, x, axis=None: lambda g: np.flip(g, axis=axis))

roll = anp.roll
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


import sys as _sys

_this = _sys.modules[__name__]
clip = partial(generic.clip, xp=_this)
del _sys
