"""Neural-network building blocks written once over the array API: layers as
``init``/``apply`` pairs, weight initializers, parameter counting and freezing."""

from __future__ import annotations

from .freezing import merge, partition, trainable_mask
from .initializers import (
    INITIALIZERS,
    Initializer,
    get_initializer,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    lecun_normal,
    normal,
    zeros,
)
from .layers import MLP, Dense, count_parameters

__all__ = [
    "INITIALIZERS",
    "MLP",
    "Dense",
    "Initializer",
    "count_parameters",
    "get_initializer",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "merge",
    "normal",
    "partition",
    "trainable_mask",
    "zeros",
]
