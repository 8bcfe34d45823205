"""Small tools the tests share: comparison against NumPy float64 and finite differences.

The numbers come from the conformance suite's one tolerance module and its one numerical
oracle (``portable_dl.conformance.tolerances`` and ``.numerics``), where they are explained.
"""

from __future__ import annotations

import numpy as np
from portable_dl.conformance import numerics, tolerances

#: Relative and absolute tolerance per dtype (see conformance/tolerances.py, "the pytest tests").
RTOL = tolerances.TEST_RELATIVE
ATOL = tolerances.TEST_ABSOLUTE


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


def central_difference(f, x: np.ndarray, eps: float = tolerances.FINITE_DIFFERENCE_STEP) -> np.ndarray:
    """The gradient of the scalar function ``f`` of a float64 array ``x``, by central differences."""
    return numerics.central_differences(f, x, step=eps)


FINITE_DIFFERENCE_TOLERANCE = tolerances.TEST_FINITE_DIFFERENCE_TOLERANCE


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
