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


#: Float64 central differences with step 1e-6 carry an error of about eps/h + h^2 ~ 1e-10.
FINITE_DIFFERENCE_TOLERANCE = 1e-7


def ulps(dtype: str, count: float) -> float:
    """``count`` units in the last place of ``dtype`` (its machine epsilon times count)."""
    return count * float(np.finfo(dtype).eps)


def assert_matches(actual, expected, dtype: str, count: float = 64, what: str = "") -> None:
    """Finite, and within ``count`` ulps of ``dtype``, relative to each value and to the array's scale."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values {actual}"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=ulps(dtype, count), atol=ulps(dtype, count) * scale, err_msg=what)
