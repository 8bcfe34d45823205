"""Comparing a backend's outputs with the reference's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .cases import Outputs


@dataclass
class Comparison:
    """The worst output of a case: its errors and the tolerance it was judged by."""

    passed: bool
    max_abs_error: float | None = 0.0
    max_rel_error: float | None = 0.0
    tolerance: float | None = 0.0
    message: str = ""


def is_numeric(value: Any) -> bool:
    return isinstance(value, np.ndarray) or isinstance(value, (float, np.floating))


def compare_numeric(name: str, actual: Any, expected: Any, tolerance: float) -> Comparison:
    """Norm-wise comparison (see :mod:`.tolerances`); NaN and infinities must sit at the
    same places with the same signs."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Comparison(False, np.inf, np.inf, tolerance, f"{name}: shape {actual.shape}, reference {expected.shape}")
    finite = np.isfinite(expected)
    special_mismatch = ~finite & ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    if special_mismatch.any():
        index = tuple(int(i) for i in np.argwhere(special_mismatch)[0])
        return Comparison(
            False, np.inf, np.inf, tolerance, f"{name}{list(index)}: {actual[index]}, reference {expected[index]}"
        )
    if not finite.any():
        return Comparison(True, 0.0, 0.0, tolerance)
    difference = np.abs(actual[finite] - expected[finite])
    difference = np.where(np.isnan(difference), np.inf, difference)
    max_abs = float(difference.max()) if difference.size else 0.0
    scale = max(float(np.abs(expected[finite]).max()), np.finfo(np.float64).tiny)
    max_rel = max_abs / scale
    passed = max_rel <= tolerance
    message = "" if passed else f"{name}: differs by {max_rel:.3g} of its scale {scale:.3g} (tolerance {tolerance:.3g})"
    return Comparison(passed, max_abs, max_rel, tolerance, message)


def compare_elementwise(
    name: str, actual: Any, expected: Any, tolerance: float, dtype: str, zero_sign: bool = True
) -> Comparison:
    """Element-by-element comparison (see :mod:`.tolerances`): each element within
    ``tolerance`` of its own reference value, relative to that value (absolute below the
    smallest normal number of ``dtype``, where flushing subnormals to zero is a platform's
    choice); NaN, infinities and the sign of zero exactly."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Comparison(False, np.inf, np.inf, tolerance, f"{name}: shape {actual.shape}, reference {expected.shape}")
    if expected.size == 0:
        return Comparison(True, 0.0, 0.0, tolerance)
    both_nan = np.isnan(actual) & np.isnan(expected)
    # Infinities and zeros must match exactly, with their signs (== does not see a zero's sign).
    exact = ~np.isfinite(expected) | (expected == 0)
    same_sign = (np.signbit(actual) == np.signbit(expected)) | (not zero_sign)
    exact_mismatch = exact & ~both_nan & ~((actual == expected) & same_sign)
    exact_mismatch &= ~(
        (expected == 0) & (np.abs(actual) < _smallest_normal(dtype)) & (actual != 0)
    )  # flushed subnormals
    if exact_mismatch.any():
        index = tuple(int(i) for i in np.argwhere(exact_mismatch)[0])
        return Comparison(
            False,
            np.inf,
            np.inf,
            tolerance,
            f"{name}{list(index)}: {actual[index]!r}, reference {expected[index]!r} (exactly)",
        )
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.where(both_nan, 0.0, np.abs(actual - expected))
        difference = np.where(np.isnan(difference), np.inf, difference)
        relative = difference / np.maximum(np.abs(expected), _smallest_normal(dtype) / tolerance)
    relative = np.where(exact, 0.0, relative)
    worst = np.unravel_index(int(np.argmax(relative)), relative.shape)
    max_rel = float(relative[worst])
    max_abs = float(np.where(exact, 0.0, difference).max())
    passed = max_rel <= tolerance
    message = (
        ""
        if passed
        else (
            f"{name}{[int(i) for i in worst]}: {actual[worst]!r}, reference {expected[worst]!r}: "
            f"relative error {max_rel:.3g} (tolerance {tolerance:.3g}, element by element)"
        )
    )
    return Comparison(passed, max_abs, max_rel, tolerance, message)


#: The smallest normal number of each float dtype: 2**(1 - exponent bias). bfloat16 shares
#: float32's exponent (NumPy knows it only through ml_dtypes, so it is written here).
SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}


def _smallest_normal(dtype: str) -> float:
    return SMALLEST_NORMAL.get(dtype, SMALLEST_NORMAL["float64"])


def compare_exact(name: str, actual: Any, expected: Any, against: str = "reference") -> Comparison:
    if actual == expected:
        return Comparison(True)
    # An exact output (a shape, a dtype, an error's name) has no error size to report.
    return Comparison(False, None, None, None, message=f"{name}: {actual!r}, {against} {expected!r}")


def compare_outputs(
    actual: Outputs,
    numeric_reference: Outputs,
    exact_reference: Outputs,
    tolerance: float,
    label: str = "",
    elementwise: bool = False,
    dtype: str = "float64",
    zero_sign: bool = True,
    against: str = "reference",
) -> Comparison:
    """Compare every output (numeric ones element by element when ``elementwise``, in
    ``dtype``'s range); return the failing one, or the worst passing one."""
    worst = Comparison(True, tolerance=tolerance)
    missing = set(exact_reference) - set(actual)
    if missing:
        return Comparison(False, None, None, None, message=f"missing outputs {sorted(missing)}")
    for name, expected in exact_reference.items():
        value = actual[name]
        if is_numeric(expected):
            if name not in numeric_reference:
                continue
            if elementwise:
                result = compare_elementwise(label + name, value, numeric_reference[name], tolerance, dtype, zero_sign)
            else:
                result = compare_numeric(label + name, value, numeric_reference[name], tolerance)
        else:
            result = compare_exact(label + name, value, expected, against)
        if not result.passed:
            return result
        if result.max_rel_error >= worst.max_rel_error:
            worst = Comparison(True, result.max_abs_error, result.max_rel_error, tolerance)
    return worst
