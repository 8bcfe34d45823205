"""The array API ``linalg`` extension for TensorFlow: ``xp.linalg``, over ``tf.linalg``.

Every function takes float32, float64, complex64 and complex128 matrices (integers raise
:class:`portable_dl.DTypeError`; so do float16 and bfloat16 where TensorFlow's CPU has no kernel
for them, which is most factorizations: see "half floats" at the end) and is
differentiable with ``tf.GradientTape`` where TensorFlow differentiates it: all of them,
``svd``/``eigh`` for distinct singular values and eigenvalues, ``qr`` for full-rank matrices
with at least as many rows as columns.

Where ``tf.linalg`` departs from the standard: ``svd`` returns ``(s, u, v)`` with ``v`` not
transposed (here ``(U, S, Vh)``); ``solve`` does not broadcast batch axes nor take a vector
right-hand side; ``cross`` works on the last axis only; ``cholesky`` gives the lower factor only.
"""

from __future__ import annotations

import builtins
from typing import Any

import tensorflow as tf

from portable_dl.errors import DTypeError, ShapeError

from .._common import generic, surface
from .._common import linalg as common_linalg
from .._common.broadcasting import broadcast_shapes, shape_of
from .._common.dtypes import half_name, without_half_kernel
from . import namespace as _xp

# The extension's names are declared once, in backends/_common/surface.py.
__all__ = list(surface.LINALG)

matmul = _xp.matmul
matrix_transpose = _xp.matrix_transpose
tensordot = _xp.tensordot
vecdot = _xp.vecdot


def _matrices(x: Any, name: str, square: builtins.bool = True) -> tf.Tensor:
    """``x`` as a tensor, checked to be a (stack of) floating or complex (square) matrices."""
    x = _xp._tensor(x)
    if not (x.dtype.is_floating or x.dtype.is_complex):
        raise DTypeError(f"linalg.{name} needs a floating or complex array, got {x.dtype.name}")
    shape = shape_of(x)
    if len(shape) < 2 or (square and shape[-1] != shape[-2]):
        kind = "square matrices" if square else "matrices"
        raise ShapeError(f"linalg.{name} needs {kind} in the last two axes, got shape {shape}")
    return x


def cholesky(x: Any, /, *, upper: builtins.bool = False) -> tf.Tensor:
    """The Cholesky factor of Hermitian positive-definite matrices: lower ``L`` with
    ``x = L @ L^H``, or upper ``U = L^H``."""
    lower = tf.linalg.cholesky(_matrices(x, "cholesky"))
    return tf.linalg.adjoint(lower) if upper else lower


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> tf.Tensor:
    """The cross product of 3-vectors along ``axis`` of the broadcast shape."""
    a, b = _xp._promoted(x1, x2)
    shape = broadcast_shapes(shape_of(a), shape_of(b), operation="linalg.cross")
    if not -len(shape) <= axis < len(shape) or shape[axis] != 3:
        raise ShapeError(f"linalg.cross needs size 3 along axis {axis}, got shapes {shape_of(x1)} and {shape_of(x2)}")
    a, b = tf.broadcast_to(a, shape), tf.broadcast_to(b, shape)
    moved = _cross_last(_xp.moveaxis(a, axis, -1), _xp.moveaxis(b, axis, -1))
    return _xp.moveaxis(moved, -1, axis)


def _cross_last(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Cross products along the last axis; TensorFlow's Cross kernel takes no complex dtype,
    so complex vectors are crossed component by component (the product is bilinear)."""
    if not a.dtype.is_complex:
        return tf.linalg.cross(a, b)
    (a0, a1, a2), (b0, b1, b2) = tf.unstack(a, axis=-1), tf.unstack(b, axis=-1)
    return tf.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def det(x: Any, /) -> tf.Tensor:
    """Determinants of square matrices, ``(..., M, M)`` to ``(...)``."""
    return tf.linalg.det(_matrices(x, "det"))


def slogdet(x: Any, /) -> common_linalg.SlogdetResult:
    """``(sign, log|det|)`` of square matrices (sign 0 and -inf for singular ones)."""
    sign, logabsdet = tf.linalg.slogdet(_matrices(x, "slogdet"))
    if logabsdet.dtype.is_complex:  # TensorFlow returns it in the input's complex dtype
        logabsdet = tf.math.real(logabsdet)
    return common_linalg.SlogdetResult(sign, logabsdet)


def diagonal(x: Any, /, *, offset: int = 0) -> tf.Tensor:
    """The ``offset``-th diagonal of the last two axes (above the main one for offset > 0)."""
    x = _xp._tensor(x)
    shape = shape_of(x)
    if len(shape) < 2:
        raise ShapeError(f"linalg.diagonal needs an array of rank >= 2, got shape {shape}")
    if offset >= shape[-1] or -offset >= shape[-2]:  # tf.linalg.diag_part refuses a diagonal outside the matrix
        return tf.zeros(shape[:-2] + (0,), x.dtype)
    return tf.linalg.diag_part(x, k=offset)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> tf.Tensor:
    """Sum of the ``offset``-th diagonal of the last two axes, in ``dtype`` (as ``sum``)."""
    return _xp.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def eigh(x: Any, /) -> common_linalg.EighResult:
    """Eigenvalues (ascending) and eigenvectors of Hermitian matrices."""
    values, vectors = tf.linalg.eigh(_matrices(x, "eigh"))
    # TensorFlow's eigenvalues of a complex matrix are complex; the standard's are real.
    return common_linalg.EighResult(tf.math.real(values), vectors)


def eigvalsh(x: Any, /) -> tf.Tensor:
    """Eigenvalues (ascending) of Hermitian matrices."""
    return tf.math.real(tf.linalg.eigvalsh(_matrices(x, "eigvalsh")))  # real, as in eigh


def inv(x: Any, /) -> tf.Tensor:
    """Inverses of square matrices."""
    return tf.linalg.inv(_matrices(x, "inv"))


def solve(x1: Any, x2: Any, /) -> tf.Tensor:
    """``x`` with ``x1 @ x = x2`` for square ``x1`` (``(..., M, M)``) and ``x2`` either a
    vector ``(M,)`` or matrices ``(..., M, K)``; batch axes broadcast."""
    _matrices(x1, "solve")
    a, b = _xp._promoted(x1, x2)
    vector = b.shape.rank == 1
    if vector:
        b = b[:, None]
    if shape_of(b)[-2] != shape_of(a)[-1]:
        raise ShapeError(
            f"linalg.solve of shapes {shape_of(x1)} and {shape_of(x2)}: "
            f"{shape_of(a)[-1]} unknowns but {shape_of(b)[-2]} equations"
        )
    batch = broadcast_shapes(shape_of(a)[:-2], shape_of(b)[:-2], operation="linalg.solve")
    a = tf.broadcast_to(a, batch + shape_of(a)[-2:])
    b = tf.broadcast_to(b, batch + shape_of(b)[-2:])
    result = tf.linalg.solve(a, b)
    return result[..., 0] if vector else result


def qr(x: Any, /, *, mode: str = "reduced") -> common_linalg.QRResult:
    """``x = Q @ R``: ``"reduced"`` gives ``Q`` ``(..., M, K)``, ``"complete"`` ``(..., M, M)``."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr mode must be 'reduced' or 'complete', got {mode!r}")
    x = _matrices(x, "qr", square=False)
    # TensorFlow's Householder QR squares entries unscaled: entries above ~1.8e19 overflow
    # float32 and every factor is NaN. Factor x / 2**k (exact) instead; R takes the 2**k back.
    largest = tf.reduce_max(tf.abs(x), axis=[-2, -1], keepdims=True)
    exponent = tf.round(tf.math.log(tf.where(largest > 0, largest, tf.ones_like(largest))) / 0.6931471805599453)
    scale = tf.cast(tf.stop_gradient(tf.pow(tf.constant(2.0, largest.dtype), exponent)), x.dtype)
    q, r = tf.linalg.qr(x / scale, full_matrices=mode == "complete")
    return common_linalg.QRResult(q, r * scale)


def svd(x: Any, /, *, full_matrices: builtins.bool = True) -> common_linalg.SVDResult:
    """``x = U @ diag(S) @ Vh`` with descending ``S``."""
    s, u, v = tf.linalg.svd(_matrices(x, "svd", square=False), full_matrices=full_matrices)
    return common_linalg.SVDResult(u, s, tf.linalg.adjoint(v))


def svdvals(x: Any, /) -> tf.Tensor:
    """Singular values, descending, ``(..., min(M, N))``."""
    return tf.linalg.svd(_matrices(x, "svdvals", square=False), compute_uv=False)


def pinv(x: Any, /, *, rtol: Any = None) -> tf.Tensor:
    """The pseudo-inverse, from the SVD, keeping singular values above ``rtol`` times the largest."""
    return generic.pinv(_matrices(x, "pinv", square=False), rtol=rtol, xp=_xp, svd=svd)


def matrix_rank(x: Any, /, *, rtol: Any = None) -> tf.Tensor:
    """The number of singular values above ``rtol`` times the largest (int64)."""
    return generic.matrix_rank(_matrices(x, "matrix_rank", square=False), rtol=rtol, xp=_xp, svdvals=svdvals)


def matrix_power(x: Any, n: int, /) -> tf.Tensor:
    """``x`` to the integer power ``n`` (negative: of its inverse)."""
    return generic.matrix_power(_xp._tensor(x), n, xp=_xp, inv=inv)


def matrix_norm(x: Any, /, *, keepdims: builtins.bool = False, ord: Any = "fro") -> tf.Tensor:
    """Matrix norms of the last two axes (``"fro"``, ``"nuc"``, 1, -1, 2, -2, inf, -inf)."""
    return common_linalg.matrix_norm(_xp._tensor(x), keepdims=keepdims, ord=ord, xp=_xp)


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False, ord: Any = 2) -> tf.Tensor:
    """Vector norms over ``axis`` (all axes when None; a tuple is one flattened vector)."""
    return common_linalg.vector_norm(_xp._tensor(x), axis=axis, keepdims=keepdims, ord=ord, xp=_xp)


def outer(x1: Any, x2: Any, /) -> tf.Tensor:
    """``x1[i] * x2[j]`` for two 1-D arrays."""
    return common_linalg.outer(_xp._tensor(x1), _xp._tensor(x2), xp=_xp)


# ------------------------------------------------------------------ half floats
# TensorFlow's CPU kernels for the half floats, probed (TensorFlow 2.21): Cholesky, Svd,
# MatrixDeterminant, LogMatrixDeterminant, SelfAdjointEigV2 and MatrixSolve have none (XLA has
# float16 ones, the eager CPU not); MatrixInverse and Qr have float16 but no bfloat16. The
# functions that need a missing kernel refuse it up front, with the DTypeError every backend
# gives (backends/_common/dtypes.py), so that eager calls, traced ones and XLA agree.
_FRAMEWORK = f"TensorFlow {tf.__version__}"
_NO_HALF_KERNEL = ("cholesky", "det", "slogdet", "eigh", "eigvalsh", "solve", "svd", "svdvals", "pinv", "matrix_rank")
_NO_BFLOAT16_KERNEL = ("inv", "qr")


def _is_bfloat16(x: Any, /, *args: Any, **kwargs: Any) -> builtins.bool:
    return half_name(getattr(x, "dtype", None)) == "bfloat16"


for _name in _NO_HALF_KERNEL:
    globals()[_name] = without_half_kernel(globals()[_name], _name, _FRAMEWORK)
for _name in _NO_BFLOAT16_KERNEL:
    globals()[_name] = without_half_kernel(globals()[_name], _name, _FRAMEWORK, when=_is_bfloat16)
del _name
# The spectral norms take singular values (Svd); negative powers an inverse (bfloat16: none).
matrix_norm = without_half_kernel(
    matrix_norm, "matrix_norm", _FRAMEWORK, when=lambda x, /, *, ord="fro", **_: ord in (2, -2, "nuc")
)
matrix_power = without_half_kernel(
    matrix_power, "matrix_power", _FRAMEWORK, when=lambda x, n, /: n < 0 and _is_bfloat16(x)
)
