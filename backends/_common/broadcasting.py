"""Broadcasting and matmul shape rules, and the translation of each framework's own
shape errors into :class:`portable_dl.BroadcastError`.

Frameworks disagree on the exception a bad broadcast raises (NumPy ``ValueError``, PyTorch
``RuntimeError``, TensorFlow ``InvalidArgumentError``, MLX ``ValueError``...). Namespaces
wrap their array-combining functions with :func:`raises_broadcast_error`: the function runs
as usual and only when it fails are the shapes checked, so correct calls pay nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from portable_dl.errors import BroadcastError, ShapeError

__all__ = ["shape_of", "broadcast_shapes", "raises_broadcast_error", "matmul_shape", "checks_matmul_shapes"]


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array as a tuple of ints; ``()`` for Python scalars."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return ()
    return tuple(None if d is None else int(d) for d in shape)


def broadcast_shapes(*shapes: tuple[int, ...], operation: str | None = None) -> tuple[int, ...]:
    """The shape the array API broadcasting rules give ``shapes``.

    Align the shapes on their last axis; in each axis the sizes must be equal or one of
    them 1. Raises :class:`BroadcastError` naming every shape when they do not broadcast.
    """
    ndim = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(-ndim, 0):
        size = 1
        for shape in shapes:
            if len(shape) < -axis:
                continue
            d = shape[axis]
            if d is None or d == 1:
                continue
            if size not in (1, d):
                raise BroadcastError(*shapes, operation=operation)
            size = d
        result.append(size)
    return tuple(result)


def raises_broadcast_error(
    function: Callable, name: str | None = None, *, translate: Callable | None = None
) -> Callable:
    """Wrap an array-combining function so that shapes which do not broadcast raise
    :class:`BroadcastError` naming them, whatever the framework raised.

    The wrapped function's own error is kept as ``__cause__``; an error that is not about
    broadcasting passes through unchanged, or as ``translate(error, name)`` when that gives an
    exception (a framework's missing dtype kernel as DTypeError, say): in the error path only,
    so correct calls pay nothing for it.
    """
    operation = name or getattr(function, "__name__", "operation")

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BroadcastError:
            raise
        except Exception as error:
            shapes = [shape_of(a) for a in args if _is_array_like(a)]
            if len(shapes) >= 2:
                try:
                    broadcast_shapes(*shapes, operation=operation)
                except BroadcastError as broadcast_error:
                    raise broadcast_error from error
            replacement = translate(error, operation) if translate is not None else None
            if replacement is not None:
                raise replacement from error
            raise

    return wrapper


def matmul_shape(shape1: tuple[int, ...], shape2: tuple[int, ...]) -> tuple[int, ...]:
    """The result shape of ``matmul`` under the standard's rules.

    1-D operands are promoted to a row (first) or a column (second) and the added axis is
    removed from the result. Batch axes broadcast (:class:`BroadcastError`); the inner
    sizes must agree (:class:`ShapeError`); 0-D operands are not allowed (:class:`ShapeError`).
    """
    if len(shape1) == 0 or len(shape2) == 0:
        raise ShapeError(f"matmul needs arrays of at least one dimension, got shapes {shape1} and {shape2}")
    a = (1,) + shape1 if len(shape1) == 1 else shape1
    b = shape2 + (1,) if len(shape2) == 1 else shape2
    if a[-1] != b[-2]:
        raise ShapeError(f"matmul of shapes {shape1} and {shape2}: inner dimensions {a[-1]} and {b[-2]} differ")
    batch = broadcast_shapes(a[:-2], b[:-2], operation="matmul (batch dimensions)")
    result = batch + (a[-2], b[-1])
    if len(shape1) == 1:
        result = result[:-2] + result[-1:]
    if len(shape2) == 1:
        result = result[:-1]
    return result


def checks_matmul_shapes(function: Callable, *, translate: Callable | None = None) -> Callable:
    """Wrap a matmul-like function: when it fails, report the standard's shape error (or, for
    an error not about shapes, ``translate(error, "matmul")`` when that gives an exception)."""

    @functools.wraps(function)
    def wrapper(x1: Any, x2: Any, /) -> Any:
        try:
            return function(x1, x2)
        except ShapeError:
            raise
        except Exception as error:
            try:
                matmul_shape(shape_of(x1), shape_of(x2))
            except ShapeError as shape_error:
                raise shape_error from error
            replacement = translate(error, "matmul") if translate is not None else None
            if replacement is not None:
                raise replacement from error
            raise

    return wrapper


def _is_array_like(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")
