"""Standard functions written once in terms of other standard functions of ``xp``.

Like array-api-compat's ``common/_aliases.py``: each function takes the namespace as a
keyword argument ``xp`` and a namespace binds it with ``functools.partial`` or a one-line
wrapper. Only functions whose definition really is the same on every framework live here;
where a framework has a native form with the right semantics, its namespace uses that.
"""

from __future__ import annotations

from typing import Any, Sequence

from .broadcasting import broadcast_shapes, shape_of

__all__ = ["vecdot", "matrix_transpose", "broadcast_arrays", "clip", "var", "std", "normalize_axis"]


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1, xp: Any) -> Any:
    """Dot product of real vectors along ``axis``, broadcasting the other axes:
    ``sum(x1 * x2, axis)``."""
    return xp.sum(xp.multiply(x1, x2), axis=axis)


def matrix_transpose(x: Any, /, *, xp: Any) -> Any:
    """Swap the last two axes of an array of rank >= 2."""
    ndim = len(shape_of(x))
    if ndim < 2:
        from portable_dl.errors import ShapeError

        raise ShapeError(f"matrix_transpose needs an array of rank >= 2, got shape {shape_of(x)}")
    axes = tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    return xp.permute_dims(x, axes)


def broadcast_arrays(*arrays: Any, xp: Any) -> list:
    """The arrays broadcast to one common shape (a list, as the standard says)."""
    shape = broadcast_shapes(*(shape_of(a) for a in arrays), operation="broadcast_arrays")
    return [xp.broadcast_to(a, shape) for a in arrays]


def clip(x: Any, /, min: Any = None, max: Any = None, *, xp: Any) -> Any:
    """Clamp ``x`` to ``[min, max]`` (either bound may be None, a scalar or an array).

    Written with ``where`` and strict comparisons so the gradient is 1 wherever
    ``min <= x <= max``, bounds included, as in ``torch.clamp``; a ``minimum``/``maximum``
    form would split the gradient at the bounds.
    """
    result = x
    if min is not None:
        result = xp.where(xp.less(result, min), xp.astype(xp.asarray(min), x.dtype) if hasattr(min, "shape") else min, result)
    if max is not None:
        result = xp.where(xp.greater(result, max), xp.astype(xp.asarray(max), x.dtype) if hasattr(max, "shape") else max, result)
    return result


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False, xp: Any) -> Any:
    """Variance ``sum((x - mean(x))**2) / (N - correction)`` over ``axis``."""
    count = _count(x, axis)
    centered = xp.subtract(x, xp.mean(x, axis=axis, keepdims=True))
    total = xp.sum(xp.multiply(centered, centered), axis=axis, keepdims=keepdims)
    return xp.divide(total, max(count - correction, 0.0))


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False, xp: Any) -> Any:
    """Standard deviation: the square root of :func:`var`."""
    return xp.sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims, xp=xp))


def normalize_axis(axis: int, ndim: int) -> int:
    """``axis`` as a non-negative int for an array of rank ``ndim``; IndexError when out of range."""
    if not -ndim <= axis < max(ndim, 1):
        raise IndexError(f"axis {axis} is out of range for an array of rank {ndim}")
    return axis % max(ndim, 1)


def _count(x: Any, axis: Any) -> int:
    shape = shape_of(x)
    if axis is None:
        axes: Sequence[int] = range(len(shape))
    elif isinstance(axis, int):
        axes = (axis,)
    else:
        axes = axis
    count = 1
    for a in axes:
        count *= shape[normalize_axis(a, len(shape))]
    return count
