"""The NumPy backend: the embedded default and the reference of the conformance suite."""

from __future__ import annotations


def create(device: str | None = None):
    """Entry-point factory: a :class:`NumPyBackend` on ``device`` (only ``"cpu"``)."""
    from .backend import NumPyBackend

    return NumPyBackend(device)
