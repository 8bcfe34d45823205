"""Gradient cases of the front end: activations, losses, layers, a whole MLP, freezing."""

from __future__ import annotations

from .cases import Case


def cases(quick: bool) -> list[Case]:
    return []
