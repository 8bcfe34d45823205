"""Complex elementwise functions at the standard's special values and on their branch cuts; ``sign`` at zeros.

The expected values (``conformance.standard_functions.COMPLEX_SPECIAL_VALUES``, shared with
the conformance case) are copied by hand from the array API standard's lists (2024.12,
``elementwise_functions``), not from the code under test. XLA gave
``NaN + NaN j`` at most of them (JAX), and every framework but NumPy put ``sqrt(-4 - 0j)`` on
the wrong side of the cut.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from portable_dl.conformance.standard_functions import COMPLEX_SPECIAL_VALUES

from portable_dl.errors import DTypeError

#: function -> [(a, b, expected real, expected imaginary)], shared with the conformance case.
CASES = COMPLEX_SPECIAL_VALUES


def _same(actual: float, expected: float, what: str) -> None:
    if math.isnan(expected):
        assert math.isnan(actual), what
    elif expected == 0 or math.isinf(expected):
        assert actual == expected and math.copysign(1, actual) == math.copysign(1, expected), what
    else:
        assert actual == pytest.approx(expected, rel=1e-6), what


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_complex_special_values(backend, name, dtype):
    xp = backend.xp
    cases = CASES[name]
    values = np.empty(len(cases), dtype=dtype)
    values.real = [a for a, _, _, _ in cases]
    values.imag = [b for _, b, _, _ in cases]
    try:
        x = xp.asarray(values, dtype=getattr(xp, dtype))
    except DTypeError as error:  # MLX has no complex128, JAX none without x64: said by the namespace
        pytest.skip(str(error))
    result = np.asarray(backend.to_numpy(getattr(xp, name)(x)))
    for (a, b, real, imag), got in zip(cases, result):
        what = f"{name}({a!r} + {b!r}j) = {got!r}, the standard says ({real!r}, {imag!r})"
        _same(float(got.real), real, what)
        _same(float(got.imag), imag, what)


def test_complex_sign_of_zeros_and_a_unit(backend):
    """``sign(x) = x / |x|`` for complex ``x``, and ``0 + 0j`` at a zero of any signs (the
    standard's special case, read by array-api-tests as +0 + 0j; ``jnp.sign(-0 - 0j)`` kept the signs)."""
    xp = backend.xp
    values = np.array([complex(-0.0, -0.0), complex(0.0, -0.0), complex(-0.0, 0.0), 3 + 4j], dtype="complex64")
    result = np.asarray(backend.to_numpy(xp.sign(xp.asarray(values))))
    for got in result[:3]:
        _same(float(got.real), 0.0, f"sign of a complex zero gave {got!r}")
        _same(float(got.imag), 0.0, f"sign of a complex zero gave {got!r}")
    _same(float(result[3].real), 0.6, "real part of sign(3 + 4j)")
    _same(float(result[3].imag), 0.8, "imaginary part of sign(3 + 4j)")


def test_sign_of_a_real_zero_is_positive_zero(backend):
    """``sign(-0.0)`` is ``+0`` (the standard's 0, as array-api-tests reads it; ``jnp.sign`` gave -0)."""
    xp = backend.xp
    result = np.asarray(backend.to_numpy(xp.sign(xp.asarray(np.array([-0.0, 0.0, -2.5], dtype="float32")))))
    for got, expected in zip(result, (0.0, 0.0, -1.0)):
        _same(float(got), expected, f"sign gave {result!r}")
