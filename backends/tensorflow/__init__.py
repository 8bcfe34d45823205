"""The TensorFlow backend: our own array-API namespace over ``tf`` ops, ``tf.GradientTape``
for autodiff and ``tf.function(jit_compile=True)`` (XLA) as the compiler."""

from __future__ import annotations


def create(device: str | None = None):
    """Entry-point factory: a :class:`TensorFlowBackend` on ``device`` (``"cpu"``,
    ``"gpu:N"``; TensorFlow's default when None). Raises BackendUnavailable naming the
    extra to install when TensorFlow is missing."""
    from portable_dl.backend import require_framework

    require_framework("tensorflow", "tensorflow", "tensorflow")
    from .backend import TensorFlowBackend

    return TensorFlowBackend(device)
