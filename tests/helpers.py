"""Small tools the tests share: tolerances by dtype and comparison against NumPy float64."""

from __future__ import annotations

import numpy as np

#: Relative tolerance per dtype: a few hundred ulps, enough for transcendental functions and
#: short reductions, far below any real error (a wrong formula is off by > 1e-3).
RTOL = {"float32": 2e-5, "float64": 1e-12}
ATOL = {"float32": 2e-6, "float64": 1e-13}


def float_dtypes(backend) -> list[str]:
    """The floating dtypes this backend supports here."""
    return [name for name in ("float32", "float64") if backend.supports(name)]


def assert_close(actual, expected, dtype: str, scale: float = 1.0, what: str = "") -> None:
    """``actual`` (NumPy) equals ``expected`` (NumPy float64) within the dtype's tolerance,
    ``scale`` times wider for long reductions."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(
        actual, expected, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale, equal_nan=True, err_msg=what
    )


def central_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The gradient of the scalar function ``f`` of a float64 array ``x``, by central differences."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad
