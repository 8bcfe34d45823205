"""The JAX backend: ``jax.numpy`` as the namespace, ``jax.value_and_grad`` for autodiff and
``jax.jit`` as the compiler."""

from __future__ import annotations


def create(device: str | None = None):
    """Entry-point factory: a :class:`JaxBackend` on ``device`` (``"cpu"``, ``"gpu:N"``;
    JAX's default device when None). Raises BackendUnavailable naming the extra to install
    when JAX is missing."""
    from portable_dl.backend import require_framework

    require_framework("jax", "jax", "jax")
    from .backend import JaxBackend

    return JaxBackend(device)
