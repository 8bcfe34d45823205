"""The shape errors of the namespaces, each message written once.

The error model promises the same exception with the same message on every backend;
namespaces catch their framework's own exception (or check first) and raise one of these.
``tests/test_namespace.py`` checks that the messages agree on every backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from portable_dl.errors import ShapeError

from .broadcasting import shape_of

__all__ = [
    "reshape_error",
    "squeeze_error",
    "concat_error",
    "stack_error",
    "tensordot_error",
    "take_along_axis_error",
    "tensordot_axes_differ",
    "shape_checked",
    "reshape_failed",
    "squeeze_failed",
    "concat_failed",
    "stack_failed",
    "tensordot_failed",
]


def _shapes(arrays_or_shapes: Sequence[Any]) -> list[tuple]:
    return [tuple(a) if isinstance(a, (tuple, list)) else shape_of(a) for a in arrays_or_shapes]


def reshape_error(shape: tuple, new_shape: Sequence[int]) -> ShapeError:
    return ShapeError(f"cannot reshape an array of shape {tuple(shape)} into shape {tuple(new_shape)}")


def squeeze_error(axis: Any, shape: tuple) -> ShapeError:
    return ShapeError(f"cannot squeeze axis {axis} of an array of shape {tuple(shape)}: its size is not 1")


def concat_error(arrays_or_shapes: Sequence[Any], axis: int | None) -> ShapeError:
    return ShapeError(f"cannot concat shapes {_shapes(arrays_or_shapes)} along axis {axis}")


def stack_error(arrays_or_shapes: Sequence[Any]) -> ShapeError:
    return ShapeError(f"stack needs arrays of one shape, got {_shapes(arrays_or_shapes)}")


def tensordot_error(shape1: tuple, shape2: tuple, axes: Any) -> ShapeError:
    return ShapeError(
        f"tensordot of shapes {tuple(shape1)} and {tuple(shape2)} over axes {axes}: the contracted axes do not match"
    )


def take_along_axis_error(indices_shape: tuple, shape: tuple) -> ShapeError:
    return ShapeError(
        f"take_along_axis needs indices of the same rank as x, got shapes {tuple(indices_shape)} and {tuple(shape)}"
    )


def tensordot_axes_differ(shape1: tuple, shape2: tuple, axes: Any) -> bool:
    """Whether ``tensordot`` over ``axes`` (an int, or two sequences of axes) contracts axes
    of different sizes or names axes that do not exist: a shape error. When False, a
    framework's failure is about something else (an integer dtype it cannot multiply) and
    must not be reported as a shape error."""
    shape1, shape2 = tuple(shape1), tuple(shape2)
    try:
        if isinstance(axes, int):
            if axes < 0 or axes > min(len(shape1), len(shape2)):
                return True
            first, second = list(range(len(shape1) - axes, len(shape1))), list(range(axes))
        else:
            first, second = [list(a) if isinstance(a, (list, tuple)) else [a] for a in axes]
        return len(first) != len(second) or any(shape1[i] != shape2[j] for i, j in zip(first, second))
    except (IndexError, TypeError, ValueError):
        return True


# ------------------------------------------------------------------------------------------
# A framework's function with its own exception raised as one of the errors above: the one
# try/except every namespace needs for reshape, squeeze, concat, stack and tensordot. Each
# ``*_failed`` takes the arguments of the standard's function and gives the error to raise,
# or None where the failure is not about shapes (a dtype, say): then the framework's stands.


def shape_checked(function: Callable, exceptions: Any, failed: Callable) -> Callable:
    """``function`` raising ``failed(*args, **kwargs)`` (from the framework's error) when it
    raises one of ``exceptions`` and ``failed`` names a shape error; correct calls pay one frame."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except exceptions as error:
            replacement = failed(*args, **kwargs)
            if replacement is None:
                raise
            raise replacement from error

    return checked


def reshape_failed(x: Any, /, shape: Sequence[int], **_: Any) -> ShapeError:
    return reshape_error(shape_of(x), shape)


def squeeze_failed(x: Any, /, axis: Any) -> ShapeError:
    return squeeze_error(axis, shape_of(x))


def concat_failed(arrays: Sequence[Any], /, *, axis: int | None = 0) -> ShapeError:
    return concat_error(list(arrays), axis)


def stack_failed(arrays: Sequence[Any], /, *, axis: int = 0) -> ShapeError | None:
    arrays = list(arrays)
    return stack_error(arrays) if len({shape_of(a) for a in arrays}) > 1 else None


def tensordot_failed(x1: Any, x2: Any, /, *, axes: Any = 2) -> ShapeError | None:
    if tensordot_axes_differ(shape_of(x1), shape_of(x2), axes):
        return tensordot_error(shape_of(x1), shape_of(x2), axes)
    return None
