"""Weight initializers: ``(rng, shape, fan_in, fan_out) -> float64 NumPy array``.

``rng`` is a ``numpy.random.Generator``; values are drawn in float64 NumPy and only then
cast and moved to a backend, so one seed gives bit-identical weights on every backend.
For a Dense layer with ``W`` of shape ``(in, out)``, ``fan_in = in`` and ``fan_out = out``.

The normal variants are plain normal distributions, not truncated ones, as in
``torch.nn.init`` (Keras truncates; its standard deviations then differ by a factor).

=================  =========================  ==============================
initializer        distribution               scale
=================  =========================  ==============================
``he_normal``      N(0, std^2)                std = sqrt(2 / fan_in)
``he_uniform``     U(-limit, limit)           limit = sqrt(6 / fan_in)
``glorot_normal``  N(0, std^2)                std = sqrt(2 / (fan_in + fan_out))
``glorot_uniform`` U(-limit, limit)           limit = sqrt(6 / (fan_in + fan_out))
``lecun_normal``   N(0, std^2)                std = sqrt(1 / fan_in)
``normal(s)``      N(0, s^2)                  std = s (0.01 by default)
``zeros``          0                          (biases)
=================  =========================  ==============================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "Initializer",
    "he_normal",
    "he_uniform",
    "glorot_normal",
    "glorot_uniform",
    "lecun_normal",
    "normal",
    "zeros",
    "get_initializer",
    "INITIALIZERS",
]

Initializer = Callable[[np.random.Generator, tuple, int, int], np.ndarray]


def _check_fans(fan_in: int, fan_out: int) -> None:
    if fan_in <= 0 or fan_out <= 0:
        raise ValueError(f"initializers need positive fan_in and fan_out, got {fan_in} and {fan_out}")


def _normal(rng: np.random.Generator, shape: tuple, std: float) -> np.ndarray:
    return rng.normal(0.0, std, size=tuple(shape)).astype(np.float64)


def _uniform(rng: np.random.Generator, shape: tuple, limit: float) -> np.ndarray:
    return rng.uniform(-limit, limit, size=tuple(shape)).astype(np.float64)


def he_normal(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 2 / fan_in): keeps the variance of activations through relu layers (He et al. 2015)."""
    _check_fans(fan_in, fan_out)
    return _normal(rng, shape, math.sqrt(2.0 / fan_in))


def he_uniform(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-sqrt(6 / fan_in), sqrt(6 / fan_in)): the variance of :func:`he_normal`."""
    _check_fans(fan_in, fan_out)
    return _uniform(rng, shape, math.sqrt(6.0 / fan_in))


def glorot_normal(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 2 / (fan_in + fan_out)) (Glorot and Bengio 2010), for tanh and sigmoid layers."""
    _check_fans(fan_in, fan_out)
    return _normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out)))


def glorot_uniform(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)): the variance of :func:`glorot_normal`."""
    _check_fans(fan_in, fan_out)
    return _uniform(rng, shape, math.sqrt(6.0 / (fan_in + fan_out)))


def lecun_normal(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 1 / fan_in) (LeCun et al. 1998), for selu-like layers."""
    _check_fans(fan_in, fan_out)
    return _normal(rng, shape, math.sqrt(1.0 / fan_in))


def normal(stddev: float = 0.01) -> Initializer:
    """An initializer drawing from N(0, stddev^2) whatever the fans."""
    if not stddev > 0:
        raise ValueError(f"normal initializer needs stddev > 0, got {stddev}")

    def normal_initializer(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
        return _normal(rng, shape, stddev)

    normal_initializer.__name__ = f"normal({stddev})"
    return normal_initializer


def zeros(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int) -> np.ndarray:
    """All zeros (biases). Draws nothing from ``rng``."""
    return np.zeros(tuple(shape), dtype=np.float64)


#: Initializers by name, for ``Dense(init="he_normal")`` and :func:`get_initializer`.
INITIALIZERS: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "lecun_normal": lecun_normal,
    "normal": normal(),
    "zeros": zeros,
}


def get_initializer(name_or_callable: str | Initializer) -> Initializer:
    """The initializer called ``name_or_callable`` (see :data:`INITIALIZERS`), or a callable
    unchanged. Unknown names raise ValueError listing the known ones."""
    if callable(name_or_callable):
        return name_or_callable
    if isinstance(name_or_callable, str) and name_or_callable.lower() in INITIALIZERS:
        return INITIALIZERS[name_or_callable.lower()]
    raise ValueError(f"unknown initializer {name_or_callable!r}; known: {', '.join(sorted(INITIALIZERS))}")
