"""The array API ``fft`` extension for MLX: ``xp.fft``, over ``mx.fft``.

MLX transforms in complex64 only: float64 input would come back as complex64, silently a
float32-precision answer, so it raises :class:`portable_dl.DTypeError` instead. MLX
differentiates its transforms (``mx.grad`` through ``fft``, ``rfft``, ``irfft``...).
``hfft`` and ``ihfft`` are ``irfft`` and ``rfft`` of the conjugate with the opposite
normalization, as NumPy defines them. float16 and bfloat16 input raise DTypeError too, as on
every backend: the standard has no complex dtype of their precision for the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlx.core as mx

from portable_dl.errors import DTypeError

from .._common import generic, surface
from .._common.dtypes import FFT_HALF_REASON, HALF_REFUSING_FFT, without_half_kernel
from . import namespace as _xp

# The extension's names are declared once, in backends/_common/surface.py.
__all__ = list(surface.FFT)

_NORMS = ("backward", "ortho", "forward")
# hfft is irfft of the conjugate with the normalization mirrored (and ihfft likewise).
_MIRRORED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _checked(x: mx.array, name: str, norm: str) -> mx.array:
    if norm not in _NORMS:
        raise ValueError(f"fft.{name}: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    if x.dtype == mx.float64:
        raise DTypeError(f"fft.{name}: MLX computes FFTs in complex64 only; float64 input would lose its precision")
    return x


def fft(x: mx.array, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> mx.array:
    """The 1-D discrete Fourier transform along ``axis`` (cropped or zero-padded to ``n``)."""
    return mx.fft.fft(_checked(x, "fft", norm), n=n, axis=axis, norm=norm)


def ifft(x: mx.array, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> mx.array:
    """The 1-D inverse discrete Fourier transform along ``axis``."""
    return mx.fft.ifft(_checked(x, "ifft", norm), n=n, axis=axis, norm=norm)


def fftn(
    x: mx.array, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> mx.array:
    """The n-D discrete Fourier transform over ``axes`` (all when None) with sizes ``s``."""
    return mx.fft.fftn(_checked(x, "fftn", norm), s=_sizes(s), axes=_n_axes(x, s, axes), norm=norm)


def ifftn(
    x: mx.array, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> mx.array:
    """The n-D inverse discrete Fourier transform over ``axes``."""
    return mx.fft.ifftn(_checked(x, "ifftn", norm), s=_sizes(s), axes=_n_axes(x, s, axes), norm=norm)


def rfft(x: mx.array, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> mx.array:
    """The 1-D transform of a real signal: the ``n // 2 + 1`` non-negative frequencies."""
    return mx.fft.rfft(_checked(x, "rfft", norm), n=n, axis=axis, norm=norm)


def irfft(x: mx.array, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> mx.array:
    """The inverse of :func:`rfft`: a real signal of length ``n`` (default ``2 * (m - 1)``)."""
    return mx.fft.irfft(_checked(x, "irfft", norm), n=n, axis=axis, norm=norm)


def rfftn(
    x: mx.array, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> mx.array:
    """The n-D transform of a real signal (the last axis of ``axes`` halved)."""
    return mx.fft.rfftn(_checked(x, "rfftn", norm), s=_sizes(s), axes=_n_axes(x, s, axes), norm=norm)


def irfftn(
    x: mx.array, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> mx.array:
    """The inverse of :func:`rfftn`."""
    return mx.fft.irfftn(_checked(x, "irfftn", norm), s=_sizes(s), axes=_n_axes(x, s, axes), norm=norm)


def hfft(x: mx.array, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> mx.array:
    """The real spectrum of a signal with Hermitian symmetry, given its first half."""
    return mx.fft.irfft(_xp.conj(_checked(x, "hfft", norm)), n=n, axis=axis, norm=_MIRRORED[norm])


def ihfft(x: mx.array, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> mx.array:
    """The inverse of :func:`hfft`: the first half of a Hermitian spectrum of a real signal."""
    return _xp.conj(mx.fft.rfft(_checked(x, "ihfft", norm), n=n, axis=axis, norm=_MIRRORED[norm]))


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> mx.array:
    """Sample frequencies ``[0, 1, ..., -1] / (d * n)`` (float32 by default)."""
    return generic.fftfreq(n, d=d, dtype=dtype, device=device, xp=_xp)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> mx.array:
    """Sample frequencies of :func:`rfft`, ``[0, 1, ..., n // 2] / (d * n)``."""
    return generic.rfftfreq(n, d=d, dtype=dtype, device=device, xp=_xp)


def fftshift(x: mx.array, /, *, axes: int | Sequence[int] | None = None) -> mx.array:
    """The zero frequency moved to the centre along ``axes`` (all when None)."""
    return mx.fft.fftshift(x, axes=_axis_list(axes))


def ifftshift(x: mx.array, /, *, axes: int | Sequence[int] | None = None) -> mx.array:
    """The inverse of :func:`fftshift`."""
    return mx.fft.ifftshift(x, axes=_axis_list(axes))


def _axis_list(axes: Any) -> Any:
    if axes is None:
        return None
    return [axes] if isinstance(axes, int) else list(axes)


def _n_axes(x: mx.array, s: Any, axes: Any) -> Any:
    """The axes of an n-D transform: as given; else the last ``len(s)`` (MLX wants them named
    whenever ``s`` is), or all."""
    if axes is None and s is not None:
        return list(range(x.ndim - len(s), x.ndim))
    return _axis_list(axes)


def _sizes(s: Any) -> Any:
    return None if s is None else tuple(s)


for _name in HALF_REFUSING_FFT:
    globals()[_name] = without_half_kernel(globals()[_name], _name, "", FFT_HALF_REASON)
del _name
