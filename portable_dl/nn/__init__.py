"""Neural-network building blocks written once over the array API: layers as
``init``/``apply`` pairs, weight initializers, parameter counting and freezing."""

from __future__ import annotations

from .freezing import merge, partition, trainable_mask
from .initializers import (
    INITIALIZERS,
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
    "Dense",
    "MLP",
    "count_parameters",
    "trainable_mask",
    "partition",
    "merge",
    "get_initializer",
    "INITIALIZERS",
    "he_normal",
    "he_uniform",
    "glorot_normal",
    "glorot_uniform",
    "lecun_normal",
    "normal",
    "zeros",
]
