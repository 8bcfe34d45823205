"""The ``linalg`` extension's result types and the functions that are the same on every
framework, written once over ``xp`` (each takes the namespace as the keyword ``xp``).

The norms are compositions of ``abs``, ``sum``, ``max`` and ``sqrt``, so they are differentiable
wherever those are; ``matrix_norm`` of order 2 and ``"nuc"`` take singular values from
``xp.linalg.svdvals``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from portable_dl.errors import ShapeError

from .broadcasting import shape_of

__all__ = [
    "EighResult",
    "QRResult",
    "SlogdetResult",
    "SVDResult",
    "vector_norm",
    "matrix_norm",
    "outer",
    "require_matrices",
]


class EighResult(NamedTuple):
    """``eigh(x)``: eigenvalues (..., M) in ascending order and eigenvectors (..., M, M) as columns."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``qr(x)``: Q (..., M, K) with orthonormal columns and upper-triangular R (..., K, N)."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """``slogdet(x)``: the sign (or phase) of the determinant and the log of its absolute value."""

    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    """``svd(x)``: U (..., M, K), singular values S (..., K) in descending order, Vh (..., K, N)."""

    U: Any
    S: Any
    Vh: Any


def require_matrices(x: Any, function: str) -> None:
    """ShapeError unless ``x`` has rank >= 2 (a stack of matrices)."""
    if len(shape_of(x)) < 2:
        raise ShapeError(f"{function} needs an array of rank >= 2 (a stack of matrices), got shape {shape_of(x)}")


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2, xp: Any) -> Any:
    """The ``ord``-norm of the vectors along ``axis`` (all axes when None): ``(sum |x|^ord)^(1/ord)``,
    ``max |x|`` for ``inf``, ``min |x|`` for ``-inf``, the count of non-zeros for 0. Real dtype
    of ``x``'s precision."""
    magnitude = xp.abs(x)
    if axis is None and not keepdims:
        magnitude, axis = xp.reshape(magnitude, (-1,)), 0
    if ord == math.inf:
        return xp.max(magnitude, axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return xp.min(magnitude, axis=axis, keepdims=keepdims)
    if ord == 0:
        return xp.sum(xp.astype(xp.not_equal(magnitude, 0), magnitude.dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return xp.sum(magnitude, axis=axis, keepdims=keepdims)
    if ord == 2:
        return xp.sqrt(xp.sum(xp.multiply(magnitude, magnitude), axis=axis, keepdims=keepdims))
    return xp.pow(xp.sum(xp.pow(magnitude, ord), axis=axis, keepdims=keepdims), 1.0 / ord)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro", xp: Any) -> Any:
    """The ``ord``-norm of each matrix of the stack ``x`` (..., M, N): ``"fro"``, ``"nuc"``,
    1 / -1 (largest / smallest column sum of ``|x|``), inf / -inf (row sums), 2 / -2 (largest /
    smallest singular value)."""
    require_matrices(x, "matrix_norm")
    if ord == "fro":
        return vector_norm(x, axis=(-2, -1), keepdims=keepdims, ord=2, xp=xp)
    if ord in ("nuc", 2, -2):
        values = xp.linalg.svdvals(x)
        if ord == "nuc":
            result = xp.sum(values, axis=-1)
        else:
            result = xp.max(values, axis=-1) if ord == 2 else xp.min(values, axis=-1)
        return xp.expand_dims(xp.expand_dims(result, axis=-1), axis=-1) if keepdims else result
    magnitude = xp.abs(x)
    if ord in (1, -1):
        sums, reduce_axis = xp.sum(magnitude, axis=-2, keepdims=True), -1
    elif ord in (math.inf, -math.inf):
        sums, reduce_axis = xp.sum(magnitude, axis=-1, keepdims=True), -2
    else:
        raise ValueError(f"matrix_norm: unknown order {ord!r}; orders are 'fro', 'nuc', 1, -1, 2, -2, inf, -inf")
    pick = xp.max if ord in (1, math.inf) else xp.min
    result = pick(sums, axis=reduce_axis, keepdims=True)
    return result if keepdims else xp.reshape(result, shape_of(result)[:-2])


def outer(x1: Any, x2: Any, /, *, xp: Any) -> Any:
    """The outer product (M, N) of two vectors (M,) and (N,)."""
    if len(shape_of(x1)) != 1 or len(shape_of(x2)) != 1:
        raise ShapeError(f"outer needs two vectors, got shapes {shape_of(x1)} and {shape_of(x2)}")
    return xp.multiply(xp.reshape(x1, (-1, 1)), xp.reshape(x2, (1, -1)))
