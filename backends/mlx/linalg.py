"""The array API ``linalg`` extension for MLX: ``xp.linalg``.

MLX's own ``mx.linalg`` runs its factorizations on the CPU stream only (no GPU kernels), for
float32 and float64 (``eigh`` and ``eigvalsh`` complex64 too; float16 and bfloat16 none: see
"half floats" at the end); every call here passes
``stream=mx.cpu``. The other factorizations of complex64 matrices are written here (see
"complex matrices" below).

Gradients: MLX differentiates ``det``, ``slogdet``, ``cross`` and the functions made of
ordinary ops (norms, ``trace``, ``diagonal``, ``outer``, ``matmul``...). ``inv`` and ``solve``
get their textbook gradients here (``mx.custom_function``; MLX has none). ``cholesky``, ``qr``,
``svd``, ``svdvals``, ``eigh``, ``eigvalsh``, ``pinv``, ``matrix_rank`` and the nuclear and
2-norms have no gradient in MLX: differentiating them raises NotImplementedError naming the
function, instead of MLX's "[Primitive::vjp] Not implemented".
"""

from __future__ import annotations

import builtins
import sys
from typing import Any

import mlx.core as mx

from portable_dl.errors import DTypeError, ShapeError

from .._common import generic, surface
from .._common import linalg as common_linalg
from .._common.broadcasting import broadcast_shapes, shape_of
from .._common.dtypes import refuse_half_factorizations
from . import complex_fixes
from . import namespace as _xp

# The extension's names are declared once, in backends/_common/surface.py.
__all__ = list(surface.LINALG)

matmul = _xp.matmul
matrix_transpose = _xp.matrix_transpose
tensordot = _xp.tensordot
vecdot = _xp.vecdot


def _matrices(x: mx.array, name: str, square: builtins.bool = True, complex_ok: builtins.bool = False) -> mx.array:
    """``x`` checked to be a (stack of) real floating (square) matrices; complex64 too
    where the caller handles it (``complex_ok``)."""
    allowed = (mx.float32, mx.float64, mx.complex64) if complex_ok else (mx.float32, mx.float64)
    if x.dtype not in allowed:
        raise DTypeError(
            f"linalg.{name}: MLX's linear algebra takes "
            f"{'float32, float64 or complex64' if complex_ok else 'float32 or float64'}, got {_xp._name(x)}"
        )
    shape = tuple(x.shape)
    if len(shape) < 2 or (square and shape[-1] != shape[-2]):
        kind = "square matrices" if square else "matrices"
        raise ShapeError(f"linalg.{name} needs {kind} in the last two axes, got shape {shape}")
    return x


# ------------------------------------------------------------------ complex matrices
# MLX's factorizations take real matrices only. A complex matrix A = X + iY becomes the real
# matrix phi(A) = [[X, -Y], [Y, X]]; phi keeps products, conjugate transposes and so inverses
# and pseudo-inverses (phi(A^-1) = phi(A)^-1), and each singular value of A appears twice in
# phi(A). inv, pinv, solve, svdvals and matrix_rank of complex64 matrices go through phi;
# det and slogdet through an LU elimination, cholesky through a column-by-column
# factorization, both written in MLX ops.


def _embedded(x: mx.array) -> mx.array:
    """phi(x): the real (..., 2M, 2N) matrix of a complex (..., M, N) one."""
    re, im = mx.real(x), mx.imag(x)
    return mx.concatenate([mx.concatenate([re, -im], axis=-1), mx.concatenate([im, re], axis=-1)], axis=-2)


def _from_embedded(m: mx.array, rows: int, cols: int) -> mx.array:
    """The complex (..., rows, cols) matrix whose phi is the real matrix ``m``."""
    return complex_fixes.from_parts(m[..., :rows, :cols], m[..., rows:, :cols])


def _complex_pivots(x: mx.array) -> tuple[list[mx.array], mx.array]:
    """The pivots of an LU elimination with partial pivoting of complex (..., N, N) matrices,
    and the sign (+1 or -1, complex64) of the row permutation."""
    n = x.shape[-1]
    if x.size == 0:  # no matrices, or 0 x 0 ones: nothing to eliminate (det 1)
        return [], mx.ones(x.shape[:-2], dtype=mx.complex64)
    a = x
    swaps = mx.zeros(x.shape[:-2], dtype=mx.int32)
    rows = mx.arange(n)
    pivots = []
    for k in range(n):
        p = (mx.argmax(mx.abs(a[..., k:, k]), axis=-1) + k).astype(mx.int32)
        target = mx.where(rows == k, p[..., None], mx.where(rows == p[..., None], k, rows))
        a = mx.take_along_axis(a, mx.broadcast_to(target[..., :, None], a.shape), axis=-2)
        swaps = swaps + (p != k).astype(mx.int32)
        pivot = a[..., k, k]
        pivots.append(pivot)
        safe = mx.where(pivot == 0, mx.ones_like(pivot), pivot)
        factors = a[..., k + 1 :, k] / safe[..., None]
        below = a[..., k + 1 :, :] - factors[..., None] * a[..., k : k + 1, :]
        a = mx.concatenate([a[..., : k + 1, :], below], axis=-2)
    sign = mx.where(swaps % 2 == 1, -1.0, 1.0).astype(mx.complex64)
    return pivots, sign


def _complex_det(x: mx.array) -> mx.array:
    pivots, sign = _complex_pivots(x)
    result = sign
    for pivot in pivots:
        result = result * pivot
    return result


def _complex_slogdet(x: mx.array) -> tuple[mx.array, mx.array]:
    pivots, sign = _complex_pivots(x)
    logabsdet = mx.zeros(x.shape[:-2], dtype=mx.float32)
    for pivot in pivots:
        magnitude = mx.abs(pivot)
        sign = sign * mx.where(magnitude == 0, mx.zeros_like(pivot), pivot / mx.where(magnitude == 0, 1, magnitude))
        logabsdet = logabsdet + mx.log(magnitude)
    return sign, logabsdet


def _norm_without_overflow(v: mx.array) -> mx.array:
    """The 2-norm of ``v`` along its last axis (kept, size 1), scaled by the largest magnitude
    first: squaring entries above ~1.8e19 would overflow float32 (and give NaN factors)."""
    magnitude = mx.abs(v)
    scale = mx.max(magnitude, axis=-1, keepdims=True)
    scale = mx.where(scale == 0, mx.ones_like(scale), scale)
    return scale * mx.sqrt(mx.sum(mx.square(magnitude / scale), axis=-1, keepdims=True))


def _householder_qr(x: mx.array) -> tuple[mx.array, mx.array]:
    """The complete QR of real or complex (..., M, N) matrices by Householder reflections in
    MLX ops (MLX's own QR is real and reduced only): Q (..., M, M), R (..., M, N)."""
    rows, cols = x.shape[-2:]
    dtype = x.dtype
    q = mx.broadcast_to(mx.eye(rows, dtype=dtype), x.shape[:-2] + (rows, rows))
    r = x
    for k in range(builtins.min(rows - 1, cols)):
        v = r[..., k:, k]
        norm = _norm_without_overflow(v)
        head = v[..., :1]
        magnitude = mx.abs(head)
        phase = mx.where(magnitude == 0, mx.ones_like(head), head / mx.where(magnitude == 0, 1, magnitude))
        # u = v - alpha e1 with alpha = -phase * |v|: no cancellation in the first entry.
        u = mx.concatenate([head + phase * norm.astype(dtype), v[..., 1:]], axis=-1)
        length = _norm_without_overflow(u)
        u = u / mx.where(length == 0, 1, length).astype(dtype)
        u_conj = _xp.conj(u)
        below = r[..., k:, :]
        below = below - 2 * u[..., :, None] * (u_conj[..., None, :] @ below)
        r = mx.concatenate([r[..., :k, :], below], axis=-2)
        right = q[..., :, k:]
        right = right - 2 * (right @ u[..., :, None]) * u_conj[..., None, :]
        q = mx.concatenate([q[..., :, :k], right], axis=-1)
    return q, _xp.triu(r)


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


def _complex_cholesky_lower(x: mx.array) -> mx.array:
    """The lower Cholesky factor of Hermitian positive-definite complex64 (..., N, N)
    matrices, column by column in MLX ops (MLX's own Cholesky is real only; phi(A) does not
    help here: the real factor of phi(A) is not phi of a triangular matrix):
    ``L[j, j] = sqrt(A[j, j] - sum_k |L[j, k]|^2)`` and, below it,
    ``L[i, j] = (A[i, j] - sum_k L[i, k] conj(L[j, k])) / L[j, j]`` for k < j."""
    size = x.shape[-1]
    if size == 0:
        return x
    rows = mx.arange(size)
    columns: list[mx.array] = []
    for j in range(size):
        column = x[..., :, j]
        if columns:
            done = mx.stack(columns, axis=-1)  # (..., N, j): the columns found so far
            column = column - (done @ mx.conj(done[..., j, :])[..., None])[..., 0]
        pivot = mx.sqrt(mx.real(column[..., j : j + 1]))  # real and positive for a positive-definite x
        column = column / pivot.astype(mx.complex64)
        # Above the diagonal: zero; on it: the real pivot itself (no rounding of a division).
        column = mx.where(rows < j, mx.zeros((), dtype=mx.complex64), column)
        columns.append(mx.where(rows == j, pivot.astype(mx.complex64), column))
    return mx.stack(columns, axis=-1)


_complex_cholesky = _without_gradient("cholesky", _complex_cholesky_lower)


def cholesky(x: mx.array, /, *, upper: builtins.bool = False) -> mx.array:
    """The Cholesky factor of Hermitian (real: symmetric) positive-definite matrices: lower
    ``L`` with ``x = L @ L^H``, or upper ``U = L^H`` with ``x = U^H @ U``. complex64 is
    factored in MLX ops (:func:`_complex_cholesky_lower`), real dtypes by MLX."""
    x = _matrices(x, "cholesky", complex_ok=True)
    lower = _complex_cholesky(x) if x.dtype == mx.complex64 else _cholesky_lower(x)
    return _xp.conj(_xp.matrix_transpose(lower)) if upper else lower


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
    x = _matrices(x, "det", complex_ok=True)
    return _complex_det(x) if x.dtype == mx.complex64 else mx.linalg.det(x, stream=mx.cpu)


def slogdet(x: mx.array, /) -> common_linalg.SlogdetResult:
    """``(sign, log|det|)`` of square matrices; differentiable. A singular matrix gives
    sign 0 and logabsdet -inf."""
    x = _matrices(x, "slogdet", complex_ok=True)
    if x.dtype == mx.complex64:
        sign, logabsdet = _complex_slogdet(x)
    else:
        sign, logabsdet = mx.linalg.slogdet(x, stream=mx.cpu)
    return common_linalg.SlogdetResult(sign, logabsdet)


def diagonal(x: mx.array, /, *, offset: int = 0) -> mx.array:
    """The ``offset``-th diagonal of the last two axes (above the main one for offset > 0)."""
    if x.ndim < 2:
        raise ShapeError(f"linalg.diagonal needs an array of rank >= 2, got shape {tuple(x.shape)}")
    rows, cols = x.shape[-2:]
    if offset >= cols or offset <= -rows:
        # Beyond the matrix the diagonal is empty. Made directly: MLX takes the offset as an
        # int32, and its copy of an empty diagonal was seen to spin forever (MLX 0.32.4, once
        # in a full test run; never alone).
        return mx.zeros((*x.shape[:-2], 0), dtype=x.dtype)
    return mx.diagonal(x, offset, -2, -1)


def trace(x: mx.array, /, *, offset: int = 0, dtype: Any = None) -> mx.array:
    """Sum of the ``offset``-th diagonal of the last two axes, in ``dtype`` (as ``sum``)."""
    return _xp.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def eigh(x: mx.array, /) -> common_linalg.EighResult:
    """Eigenvalues (ascending; float32 for complex64) and eigenvectors of symmetric or
    Hermitian matrices; no gradient in MLX."""
    values, vectors = _eigh(_matrices(x, "eigh", complex_ok=True))
    return common_linalg.EighResult(values, vectors)


def eigvalsh(x: mx.array, /) -> mx.array:
    """Eigenvalues (ascending; float32 for complex64) of symmetric or Hermitian matrices; no
    gradient in MLX."""
    return _eigvalsh(_matrices(x, "eigvalsh", complex_ok=True))


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
    x = _matrices(x, "inv", complex_ok=True)
    if x.dtype == mx.complex64:
        n = x.shape[-1]
        return _from_embedded(_inverse(_embedded(x)), n, n)
    return _inverse(x)


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
    a = _matrices(x1, "solve", complex_ok=True)
    target = _xp.result_type(a, x2)
    if target == mx.complex64:  # phi(a) [re; im] = [b_re; b_im]
        b = x2.astype(target)
        vector = b.ndim == 1
        b = b[:, None] if vector else b
        stacked = mx.concatenate([mx.real(b), mx.imag(b)], axis=-2)
        m = a.shape[-1]
        solved = solve(_embedded(a.astype(target)), stacked)
        result = complex_fixes.from_parts(solved[..., :m, :], solved[..., m:, :])
        return result[..., 0] if vector else result
    a, b = a.astype(target), x2.astype(target)
    vector = b.ndim == 1
    if vector:
        b = b[:, None]
    if b.shape[-2] != a.shape[-1]:
        raise ShapeError(
            f"linalg.solve of shapes {shape_of(x1)} and {shape_of(x2)}: "
            f"{a.shape[-1]} unknowns but {b.shape[-2]} equations"
        )
    batch = broadcast_shapes(shape_of(a)[:-2], shape_of(b)[:-2], operation="linalg.solve")
    a = mx.broadcast_to(a, batch + tuple(a.shape[-2:]))
    b = mx.broadcast_to(b, batch + tuple(b.shape[-2:]))
    result = _solve_matrix(a, b)
    return result[..., 0] if vector else result


def qr(x: mx.array, /, *, mode: str = "reduced") -> common_linalg.QRResult:
    """``x = Q @ R``: ``"reduced"`` gives ``Q`` ``(..., M, K)``, ``"complete"`` ``(..., M, M)``.
    Real reduced QR is MLX's own (no gradient); complex64 and complete QR of tall matrices are
    Householder reflections in MLX ops (differentiable)."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr mode must be 'reduced' or 'complete', got {mode!r}")
    x = _matrices(x, "qr", square=False, complex_ok=True)
    rows, cols = x.shape[-2:]
    if x.dtype != mx.complex64 and (mode == "reduced" or rows <= cols):
        q, r = _qr(x)
        return common_linalg.QRResult(q, r)
    q, r = _householder_qr(x)
    if mode == "reduced":
        k = builtins.min(rows, cols)
        q, r = q[..., :, :k], r[..., :k, :]
    return common_linalg.QRResult(q, r)


def _complex_svd(x: mx.array, full_matrices: builtins.bool) -> tuple[mx.array, mx.array, mx.array]:
    """The SVD of complex64 matrices from the real SVD of phi(x): each singular value appears
    twice, and a column of phi's U or V stands for a complex singular vector (up to a phase,
    the same in U and V since phi(x) v = s u is x v = s u). The missing columns of full U and
    Vh are completed with a Householder QR."""
    rows, cols = x.shape[-2:]
    k = builtins.min(rows, cols)
    u2, s2, vt2 = _svd(_embedded(x))
    u = complex_fixes.from_parts(u2[..., :rows, 0 : 2 * k : 2], u2[..., rows:, 0 : 2 * k : 2])
    vh = _xp.conj(complex_fixes.from_parts(vt2[..., 0 : 2 * k : 2, :cols], vt2[..., 0 : 2 * k : 2, cols:]))
    if full_matrices and rows > k:
        u = mx.concatenate([u, _householder_qr(u)[0][..., :, k:]], axis=-1)
    if full_matrices and cols > k:
        v = _xp.conj(mx.swapaxes(vh, -1, -2))
        completed = _householder_qr(v)[0][..., :, k:]
        vh = mx.concatenate([vh, _xp.conj(mx.swapaxes(completed, -1, -2))], axis=-2)
    return u, s2[..., ::2], vh


def svd(x: mx.array, /, *, full_matrices: builtins.bool = True) -> common_linalg.SVDResult:
    """``x = U @ diag(S) @ Vh`` with descending ``S``; ``full_matrices=False`` keeps
    ``K = min(M, N)`` columns of ``U`` and rows of ``Vh``. No gradient in MLX."""
    x = _matrices(x, "svd", square=False, complex_ok=True)
    if x.dtype == mx.complex64:
        return common_linalg.SVDResult(*_complex_svd(x, full_matrices))
    u, s, vh = _svd(x)
    if not full_matrices:
        k = builtins.min(x.shape[-2:])
        u, vh = u[..., :, :k], vh[..., :k, :]
    return common_linalg.SVDResult(u, s, vh)


def svdvals(x: mx.array, /) -> mx.array:
    """Singular values, descending, ``(..., min(M, N))``; no gradient in MLX."""
    x = _matrices(x, "svdvals", square=False, complex_ok=True)
    if x.dtype == mx.complex64:
        return _svdvals(_embedded(x))[..., ::2]  # each singular value of x appears twice in phi(x)
    return _svdvals(x)


def pinv(x: mx.array, /, *, rtol: Any = None) -> mx.array:
    """The pseudo-inverse, from the SVD, keeping singular values above ``rtol`` times the largest."""
    x = _matrices(x, "pinv", square=False, complex_ok=True)
    if x.dtype == mx.complex64:
        rows, cols = x.shape[-2:]
        return _from_embedded(generic.pinv(_embedded(x), rtol=rtol, xp=_xp, svd=svd), cols, rows)
    return generic.pinv(x, rtol=rtol, xp=_xp, svd=svd)


def matrix_rank(x: mx.array, /, *, rtol: Any = None) -> mx.array:
    """The number of singular values above ``rtol`` times the largest (int32)."""
    return generic.matrix_rank(
        _matrices(x, "matrix_rank", square=False, complex_ok=True), rtol=rtol, xp=_xp, svdvals=svdvals
    )


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


# ------------------------------------------------------------------ half floats
# mx.linalg has no float16 or bfloat16 kernel for any factorization (probed, MLX 0.32: "Arrays
# must have type float32 or float64"): those, and the norms and powers that call them, refuse
# half floats up front with the DTypeError every backend gives (backends/_common/dtypes.py).
refuse_half_factorizations(
    sys.modules[__name__],
    ("cholesky", "det", "eigh", "eigvalsh", "inv", "matrix_rank", "pinv", "qr", "slogdet", "solve", "svd", "svdvals"),
    f"MLX {mx.__version__}",
)
