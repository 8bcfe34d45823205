"""The array API ``fft`` extension for TensorFlow: ``xp.fft``, over ``tf.signal``.

``tf.signal`` transforms the innermost axis (or two, three) only, takes no ``n`` for complex
transforms and no ``norm``: each 1-D transform here moves ``axis`` last, crops or zero-pads
it to ``n``, transforms and scales, and the n-D transforms apply the 1-D ones axis by axis
(the DFT is separable). float32 input gives complex64, float64 complex128. TensorFlow
differentiates every transform. float16 and bfloat16 input raise DTypeError, as on every backend:
the standard has no complex dtype of their precision for the result (and TensorFlow's RFFT takes
float32 and float64 only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from portable_dl.errors import DTypeError

from .._common import generic, surface
from .._common.dtypes import FFT_HALF_REASON, HALF_REFUSING_FFT, without_half_kernel
from .._common.promotion import COMPLEX_OF
from . import namespace as _xp

# The extension's names are declared once, in backends/_common/surface.py.
__all__ = list(surface.FFT)

_NORMS = ("backward", "ortho", "forward")
# hfft is irfft of the conjugate with the normalization mirrored (and ihfft likewise).
_MIRRORED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _scale(result: tf.Tensor, n: int, norm: str, inverse: bool) -> tf.Tensor:
    """Apply ``norm`` to a transform of length ``n``. TensorFlow's forward transforms are
    unscaled and its inverses divide by ``n`` (the "backward" convention)."""
    if norm not in _NORMS:
        raise ValueError(f"fft norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    if norm == "backward":
        return result
    if inverse:
        factor = math.sqrt(n) if norm == "ortho" else float(n)
    else:
        factor = 1 / math.sqrt(n) if norm == "ortho" else 1 / n
    # tf.constant, not tf.cast: tf.cast of a Python float goes through float32 first.
    return result * tf.constant(factor, dtype=result.dtype)


def _complex(x: tf.Tensor, name: str) -> tf.Tensor:
    if x.dtype.is_complex:
        return x
    if not x.dtype.is_floating:
        raise DTypeError(f"fft.{name} needs a floating or complex array, got {x.dtype.name}")
    return tf.cast(x, COMPLEX_OF[x.dtype.name])


def _real(x: tf.Tensor, name: str) -> tf.Tensor:
    if not x.dtype.is_floating:
        raise DTypeError(f"fft.{name} needs a real floating array, got {x.dtype.name}")
    return x


def _fit(x: tf.Tensor, n: int) -> tf.Tensor:
    """The last axis cropped or zero-padded to length ``n``."""
    size = x.shape[-1]
    if n < 1:
        raise ValueError(f"fft length must be positive, got {n}")
    if n < size:
        return x[..., :n]
    if n > size:
        padding = [[0, 0]] * (x.shape.rank - 1) + [[0, n - size]]
        return tf.pad(x, padding)
    return x


def _along(x: tf.Tensor, axis: int, transform: Any) -> tf.Tensor:
    """``transform`` (of the last axis) applied along ``axis``."""
    rank = x.shape.rank
    axis = generic.normalize_axis(axis, rank)
    if axis == rank - 1:
        return transform(x)
    return _xp.moveaxis(transform(_xp.moveaxis(x, axis, -1)), -1, axis)


def _c2c(x: Any, n: int | None, axis: int, norm: str, name: str, inverse: bool) -> tf.Tensor:
    x = _complex(_xp._tensor(x), name)

    def transform(last: tf.Tensor) -> tf.Tensor:
        length = last.shape[-1] if n is None else n
        result = (tf.signal.ifft if inverse else tf.signal.fft)(_fit(last, length))
        return _scale(result, length, norm, inverse)

    return _along(x, axis, transform)


def _r2c(x: Any, n: int | None, axis: int, norm: str, name: str) -> tf.Tensor:
    x = _real(_xp._tensor(x), name)

    def transform(last: tf.Tensor) -> tf.Tensor:
        length = last.shape[-1] if n is None else n
        result = tf.signal.rfft(_fit(last, length), fft_length=[length])
        return _scale(result, length, norm, inverse=False)

    return _along(x, axis, transform)


def _c2r(x: Any, n: int | None, axis: int, norm: str, name: str) -> tf.Tensor:
    x = _complex(_xp._tensor(x), name)

    def transform(last: tf.Tensor) -> tf.Tensor:
        length = 2 * (last.shape[-1] - 1) if n is None else n
        result = tf.signal.irfft(_fit(last, length // 2 + 1), fft_length=[length])
        return _scale(result, length, norm, inverse=True)

    return _along(x, axis, transform)


def fft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> tf.Tensor:
    """The 1-D discrete Fourier transform along ``axis`` (cropped or zero-padded to ``n``)."""
    return _c2c(x, n, axis, norm, "fft", inverse=False)


def ifft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> tf.Tensor:
    """The 1-D inverse discrete Fourier transform along ``axis``."""
    return _c2c(x, n, axis, norm, "ifft", inverse=True)


def rfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> tf.Tensor:
    """The 1-D transform of a real signal: the ``n // 2 + 1`` non-negative frequencies."""
    return _r2c(x, n, axis, norm, "rfft")


def irfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> tf.Tensor:
    """The inverse of :func:`rfft`: a real signal of length ``n`` (default ``2 * (m - 1)``)."""
    return _c2r(x, n, axis, norm, "irfft")


def hfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> tf.Tensor:
    """The real spectrum of a signal with Hermitian symmetry, given its first half."""
    return _c2r(_xp.conj(_complex(_xp._tensor(x), "hfft")), n, axis, _MIRRORED.get(norm, norm), "hfft")


def ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> tf.Tensor:
    """The inverse of :func:`hfft`: the first half of a Hermitian spectrum of a real signal."""
    return _xp.conj(_r2c(x, n, axis, _MIRRORED.get(norm, norm), "ihfft"))


def _plan(x: tf.Tensor, s: Sequence[int] | None, axes: Sequence[int] | None) -> list[tuple[int, int | None]]:
    """(axis, length) pairs of an n-D transform: ``axes`` default to the last ``len(s)`` axes, or all."""
    rank = x.shape.rank
    if axes is None:
        axes = list(range(rank)) if s is None else list(range(rank - len(s), rank))
    axes = [generic.normalize_axis(a, rank) for a in axes]
    if s is not None and len(s) != len(axes):
        raise ValueError(f"fft: s and axes must have the same length, got {list(s)} and {axes}")
    sizes = [None] * len(axes) if s is None else [None if d == -1 else int(d) for d in s]
    return list(zip(axes, sizes))


def fftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> tf.Tensor:
    """The n-D discrete Fourier transform over ``axes`` (all when None) with sizes ``s``."""
    x = _complex(_xp._tensor(x), "fftn")
    for axis, n in _plan(x, s, axes):
        x = _c2c(x, n, axis, norm, "fftn", inverse=False)
    return x


def ifftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> tf.Tensor:
    """The n-D inverse discrete Fourier transform over ``axes``."""
    x = _complex(_xp._tensor(x), "ifftn")
    for axis, n in _plan(x, s, axes):
        x = _c2c(x, n, axis, norm, "ifftn", inverse=True)
    return x


def rfftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> tf.Tensor:
    """The n-D transform of a real signal: :func:`rfft` over the last of ``axes``, then
    :func:`fft` over the others."""
    x = _real(_xp._tensor(x), "rfftn")
    plan = _plan(x, s, axes)
    last_axis, last_n = plan[-1]
    x = _r2c(x, last_n, last_axis, norm, "rfftn")
    for axis, n in plan[:-1]:
        x = _c2c(x, n, axis, norm, "rfftn", inverse=False)
    return x


def irfftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> tf.Tensor:
    """The inverse of :func:`rfftn`: :func:`ifft` over all but the last of ``axes``, then
    :func:`irfft` over the last."""
    x = _complex(_xp._tensor(x), "irfftn")
    plan = _plan(x, s, axes)
    for axis, n in plan[:-1]:
        x = _c2c(x, n, axis, norm, "irfftn", inverse=True)
    last_axis, last_n = plan[-1]
    return _c2r(x, last_n, last_axis, norm, "irfftn")


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Sample frequencies ``[0, 1, ..., -1] / (d * n)`` (float32 by default)."""
    return generic.fftfreq(n, d=d, dtype=dtype, device=device, xp=_xp)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Sample frequencies of :func:`rfft`, ``[0, 1, ..., n // 2] / (d * n)``."""
    return generic.rfftfreq(n, d=d, dtype=dtype, device=device, xp=_xp)


def fftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> tf.Tensor:
    """The zero frequency moved to the centre along ``axes`` (all when None)."""
    x = _xp._tensor(x)
    return tf.signal.fftshift(x, axes=list(range(x.shape.rank)) if axes is None else axes)


def ifftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> tf.Tensor:
    """The inverse of :func:`fftshift`."""
    x = _xp._tensor(x)
    return tf.signal.ifftshift(x, axes=list(range(x.shape.rank)) if axes is None else axes)


for _name in HALF_REFUSING_FFT:
    globals()[_name] = without_half_kernel(globals()[_name], _name, "", FFT_HALF_REASON)
del _name
