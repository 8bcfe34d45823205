"""The PyTorch backend: ``array_api_compat.torch`` as the namespace, ``torch.autograd`` and
``torch.func`` for autodiff and ``torch.compile`` as the compiler."""

from __future__ import annotations


def create(device: str | None = None):
    """Entry-point factory: a :class:`TorchBackend` on ``device`` (``"cpu"``, ``"cuda:N"``,
    ``"mps"``; torch's default device when None). Raises BackendUnavailable naming the
    extra to install when PyTorch is missing."""
    from portable_dl.backend import require_framework

    require_framework("torch", "torch", "torch")
    from .backend import TorchBackend

    return TorchBackend(device)
