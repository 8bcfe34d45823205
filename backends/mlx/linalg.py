"""The array API ``linalg`` extension for MLX: ``xp.linalg``.

MLX's own ``mx.linalg`` runs its factorizations on the CPU stream only (no GPU kernels), for
float32 and float64, not complex64; every call here passes ``stream=mx.cpu``. Complex input
raises :class:`portable_dl.DTypeError`.

Gradients: MLX differentiates ``det``, ``slogdet``, ``cross`` and the functions made of
ordinary ops (norms, ``trace``, ``diagonal``, ``outer``, ``matmul``...). ``inv`` and ``solve``
get their textbook gradients here (``mx.custom_function``; MLX has none). ``cholesky``, ``qr``,
``svd``, ``svdvals``, ``eigh``, ``eigvalsh``, ``pinv``, ``matrix_rank`` and the nuclear and
2-norms have no gradient in MLX: differentiating them raises NotImplementedError naming the
function, instead of MLX's "[Primitive::vjp] Not implemented".
"""

from __future__ import annotations

import builtins
from typing import Any

import mlx.core as mx

from portable_dl.errors import DTypeError, ShapeError

from .._common import generic
from .._common import linalg as common_linalg
from .._common.broadcasting import broadcast_shapes, shape_of
from . import namespace as _xp

__all__ = [
    "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
    "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve", "svd",
    "svdvals", "tensordot", "trace", "vecdot", "vector_norm",
]

matmul = _xp.matmul
matrix_transpose = _xp.matrix_transpose
tensordot = _xp.tensordot
vecdot = _xp.vecdot


def _matrices(x: mx.array, name: str, square: builtins.bool = True) -> mx.array:
    """``x`` checked to be a (stack of) real floating (square) matrices."""
    if x.dtype not in (mx.float32, mx.float64):
        raise DTypeError(f"linalg.{name}: MLX's linear algebra takes float32 or float64, got {_xp._name(x)}")
    shape = tuple(x.shape)
    if len(shape) < 2 or (square and shape[-1] != shape[-2]):
        kind = "square matrices" if square else "matrices"
        raise ShapeError(f"linalg.{name} needs {kind} in the last two axes, got shape {shape}")
    return x


def _without_gradient(name: str, function: Any) -> Any:
    """``function`` unchanged forward; its gradient raises NotImplementedError naming it."""

    @mx.custom_function
    def wrapped(*args: mx.array) -> Any:
        return function(*args)

    @wrapped.vjp
    def wrapped_vjp(primals: Any, cotangents: Any, outputs: Any) -> Any:
        raise NotImplementedError(f"linalg.{name}: MLX has no gradient for this factorization")

    return wrapped


_cholesky_lower = _without_gradient("cholesky", lambda x: mx.linalg.cholesky(x, upper=False, stream=mx.cpu))
_qr = _without_gradient("qr", lambda x: mx.linalg.qr(x, stream=mx.cpu))
_svd = _without_gradient("svd", lambda x: mx.linalg.svd(x, compute_uv=True, stream=mx.cpu))
_svdvals = _without_gradient("svdvals", lambda x: mx.linalg.svd(x, compute_uv=False, stream=mx.cpu))
_eigh = _without_gradient("eigh", lambda x: mx.linalg.eigh(x, stream=mx.cpu))
_eigvalsh = _without_gradient("eigvalsh", lambda x: mx.linalg.eigvalsh(x, stream=mx.cpu))


def cholesky(x: mx.array, /, *, upper: builtins.bool = False) -> mx.array:
    """The Cholesky factor of symmetric positive-definite matrices: lower ``L`` with
    ``x = L @ L.T``, or upper ``U = L.T`` with ``x = U.T @ U``."""
    lower = _cholesky_lower(_matrices(x, "cholesky"))
    return _xp.matrix_transpose(lower) if upper else lower


def cross(x1: mx.array, x2: mx.array, /, *, axis: int = -1) -> mx.array:
    """The cross product of 3-vectors along ``axis`` (counted in the broadcast shape, which
    must have size 3 there); differentiable."""
    shape = broadcast_shapes(shape_of(x1), shape_of(x2), operation="linalg.cross")
    if not -len(shape) <= axis < len(shape) or shape[axis] != 3:
        raise ShapeError(f"linalg.cross needs size 3 along axis {axis}, got shapes {shape_of(x1)} and {shape_of(x2)}")
    target = _xp.result_type(x1, x2)
    a, b = mx.broadcast_to(x1, shape).astype(target), mx.broadcast_to(x2, shape).astype(target)
    return mx.linalg.cross(a, b, axis=axis, stream=mx.cpu)


def det(x: mx.array, /) -> mx.array:
    """Determinants of square matrices (``(..., M, M)`` to ``(...)``); differentiable."""
    return mx.linalg.det(_matrices(x, "det"), stream=mx.cpu)


def slogdet(x: mx.array, /) -> common_linalg.SlogdetResult:
    """``(sign, log|det|)`` of square matrices; differentiable. A singular matrix gives
    sign 0 and logabsdet -inf."""
    sign, logabsdet = mx.linalg.slogdet(_matrices(x, "slogdet"), stream=mx.cpu)
    return common_linalg.SlogdetResult(sign, logabsdet)


def diagonal(x: mx.array, /, *, offset: int = 0) -> mx.array:
    """The ``offset``-th diagonal of the last two axes (above the main one for offset > 0)."""
    if x.ndim < 2:
        raise ShapeError(f"linalg.diagonal needs an array of rank >= 2, got shape {tuple(x.shape)}")
    return mx.diagonal(x, offset, -2, -1)


def trace(x: mx.array, /, *, offset: int = 0, dtype: Any = None) -> mx.array:
    """Sum of the ``offset``-th diagonal of the last two axes, in ``dtype`` (as ``sum``)."""
    return _xp.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def eigh(x: mx.array, /) -> common_linalg.EighResult:
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices; no gradient in MLX."""
    values, vectors = _eigh(_matrices(x, "eigh"))
    return common_linalg.EighResult(values, vectors)


def eigvalsh(x: mx.array, /) -> mx.array:
    """Eigenvalues (ascending) of symmetric matrices; no gradient in MLX."""
    return _eigvalsh(_matrices(x, "eigvalsh"))


@mx.custom_function
def _inverse(x: mx.array) -> mx.array:
    return mx.linalg.inv(x, stream=mx.cpu)


@_inverse.vjp
def _inverse_vjp(primals: Any, cotangent: mx.array, output: mx.array) -> mx.array:
    """d(x^-1) = -x^-1 dx x^-1, so the cotangent of x is ``-inv.T @ g @ inv.T``."""
    inverse_t = mx.swapaxes(output, -1, -2)
    return -(inverse_t @ cotangent @ inverse_t)


def inv(x: mx.array, /) -> mx.array:
    """Inverses of square matrices; differentiable (``-inv.T @ g @ inv.T``)."""
    return _inverse(_matrices(x, "inv"))


@mx.custom_function
def _solve_matrix(a: mx.array, b: mx.array) -> mx.array:
    return mx.linalg.solve(a, b, stream=mx.cpu)


@_solve_matrix.vjp
def _solve_matrix_vjp(primals: tuple, cotangent: mx.array, output: mx.array) -> tuple:
    """For ``a @ out = b``: ``grad_b = solve(a.T, g)`` and ``grad_a = -grad_b @ out.T``."""
    a, _ = primals
    grad_b = mx.linalg.solve(mx.swapaxes(a, -1, -2), cotangent, stream=mx.cpu)
    return -(grad_b @ mx.swapaxes(output, -1, -2)), grad_b


def solve(x1: mx.array, x2: mx.array, /) -> mx.array:
    """``x`` with ``x1 @ x = x2`` for square ``x1`` (``(..., M, M)``) and ``x2`` either a
    vector ``(M,)`` or matrices ``(..., M, K)``; batch axes broadcast. Differentiable."""
    a = _matrices(x1, "solve")
    target = _xp.result_type(a, x2)
    a, b = a.astype(target), x2.astype(target)
    vector = b.ndim == 1
    if vector:
        b = b[:, None]
    if b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"linalg.solve of shapes {shape_of(x1)} and {shape_of(x2)}: {a.shape[-1]} unknowns but {b.shape[-2]} equations")
    batch = broadcast_shapes(shape_of(a)[:-2], shape_of(b)[:-2], operation="linalg.solve")
    a = mx.broadcast_to(a, batch + tuple(a.shape[-2:]))
    b = mx.broadcast_to(b, batch + tuple(b.shape[-2:]))
    result = _solve_matrix(a, b)
    return result[..., 0] if vector else result


def qr(x: mx.array, /, *, mode: str = "reduced") -> common_linalg.QRResult:
    """``x = Q @ R`` for matrices with at least as many rows as columns (``mode="reduced"``:
    ``Q`` is ``(..., M, N)``); ``"complete"`` (square ``Q``) is not in MLX."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr mode must be 'reduced' or 'complete', got {mode!r}")
    x = _matrices(x, "qr", square=False)
    rows, cols = x.shape[-2:]
    if mode == "complete" and rows > cols:
        raise NotImplementedError("linalg.qr: MLX computes the reduced QR only; mode='complete' needs M <= N")
    q, r = _qr(x)
    return common_linalg.QRResult(q, r)


def svd(x: mx.array, /, *, full_matrices: builtins.bool = True) -> common_linalg.SVDResult:
    """``x = U @ diag(S) @ Vh`` with descending ``S``; ``full_matrices=False`` keeps
    ``K = min(M, N)`` columns of ``U`` and rows of ``Vh``. No gradient in MLX."""
    x = _matrices(x, "svd", square=False)
    u, s, vh = _svd(x)
    if not full_matrices:
        k = builtins.min(x.shape[-2:])
        u, vh = u[..., :, :k], vh[..., :k, :]
    return common_linalg.SVDResult(u, s, vh)


def svdvals(x: mx.array, /) -> mx.array:
    """Singular values, descending, ``(..., min(M, N))``; no gradient in MLX."""
    return _svdvals(_matrices(x, "svdvals", square=False))


def pinv(x: mx.array, /, *, rtol: Any = None) -> mx.array:
    """The pseudo-inverse, from the SVD, keeping singular values above ``rtol`` times the largest."""
    return generic.pinv(_matrices(x, "pinv", square=False), rtol=rtol, xp=_xp, svd=svd)


def matrix_rank(x: mx.array, /, *, rtol: Any = None) -> mx.array:
    """The number of singular values above ``rtol`` times the largest (int32)."""
    return generic.matrix_rank(_matrices(x, "matrix_rank", square=False), rtol=rtol, xp=_xp, svdvals=svdvals)


def matrix_power(x: mx.array, n: int, /) -> mx.array:
    """``x`` to the integer power ``n`` (negative: of its inverse); differentiable."""
    return generic.matrix_power(x, n, xp=_xp, inv=inv)


def matrix_norm(x: mx.array, /, *, keepdims: builtins.bool = False, ord: Any = "fro") -> mx.array:
    """Matrix norms of the last two axes (``"fro"``, ``"nuc"``, 1, -1, 2, -2, inf, -inf)."""
    return common_linalg.matrix_norm(x, keepdims=keepdims, ord=ord, xp=_xp)


def vector_norm(x: mx.array, /, *, axis: Any = None, keepdims: builtins.bool = False, ord: Any = 2) -> mx.array:
    """Vector norms over ``axis`` (all axes when None; a tuple is one flattened vector)."""
    return common_linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord, xp=_xp)


def outer(x1: mx.array, x2: mx.array, /) -> mx.array:
    """``x1[i] * x2[j]`` for two 1-D arrays."""
    return common_linalg.outer(x1, x2, xp=_xp)
