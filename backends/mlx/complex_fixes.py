"""MLX's complex64 quirks, and the standard's forms of the functions they affect.

- ``mx.expm1`` refuses complex64: ``expm1(a + ib) = expm1(a) cos(b) - 2 sin(b/2)**2
  + i exp(a) sin(b)``, which keeps its digits near 0, with the special values of C99's cexpm1.
- ``mx.sign`` of a complex zero gives ``-0 - 0j``; the standard's ``sign`` of zero is ``0 + 0j``.
- ``mx.tanh`` of ``+-inf + ib`` (finite b) gives ``+-1 - 0j`` where C99 and the standard give
  ``+-1 + 0j`` (a zero of b's sign).

Results are assembled from their real and imaginary parts with :func:`from_parts`, which keeps
the sign of zero parts (``re + 1j * im`` would turn ``-0`` into ``+0``).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from .._common import complex_special_values, generic

__all__ = ["from_parts", "expm1", "sign", "tanh"]


def from_parts(real: mx.array, imag: mx.array) -> mx.array:
    """The complex64 array ``real + i imag`` from two float32 arrays, bit for bit."""
    real, imag = mx.broadcast_arrays(real.astype(mx.float32), imag.astype(mx.float32))
    return mx.stack([real, imag], axis=-1).view(mx.complex64)[..., 0]


def expm1(x: mx.array) -> mx.array:
    """``exp(x) - 1`` of complex64 ``x`` (:func:`portable_dl.backends._common.generic.complex_expm1`)."""
    return generic.complex_expm1(x, xp=_xp(), from_parts=from_parts)


def sign(x: mx.array) -> mx.array:
    """``x / |x|`` of complex64 ``x``, and ``0 + 0j`` at zero."""
    return mx.where(x == 0, mx.zeros((), dtype=mx.complex64), mx.sign(x))


def tanh(x: mx.array) -> mx.array:
    """``tanh`` of complex64 ``x``, ``+-1 +- 0j`` where ``a`` is infinite and ``b`` finite."""
    return complex_special_values.complex_function("tanh", mx.tanh, x, xp=_xp(), from_parts=from_parts)


def _xp() -> Any:
    from . import namespace  # the namespace imports this module first

    return namespace
