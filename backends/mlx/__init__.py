"""The MLX backend: our own array-API namespace over ``mlx.core``, ``mx.value_and_grad``
for autodiff and ``mx.compile`` as the compiler."""

from __future__ import annotations


def create(device: str | None = None):
    """Entry-point factory: an :class:`MLXBackend` on ``device`` (``"cpu"``, or ``"gpu"``
    where MLX has a Metal or CUDA GPU; MLX's default when None). Raises BackendUnavailable
    naming the extra to install when MLX is missing."""
    from portable_dl.backend import require_framework

    require_framework("mlx", "mlx", "mlx")
    from .backend import MLXBackend

    return MLXBackend(device)
