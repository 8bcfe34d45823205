"""The suite's tolerances are tight enough to fail what they must (issue 11.6 and 11.8):
a wrong float32 gradient formula of relative size 1e-4, and an element-wise error on a
small output element beside a huge one."""

from __future__ import annotations

import numpy as np
import pytest
from autograd.extend import defvjp, primitive
from broken_backends import broken_backend, namespace_with
from portable_dl.conformance import compare, gradients, runner, tolerances
from portable_dl.conformance.families import collect_cases

import portable_dl

WRONG_BY = 1e-4


@primitive
def _tanh_slightly_wrong_gradient(x):
    return np.tanh(x)


# The right formula, 1 - tanh^2, off by one part in ten thousand.
defvjp(_tanh_slightly_wrong_gradient, lambda ans, x: lambda g: g * (1 - ans**2) * (1 + WRONG_BY))


def test_every_float32_gradient_tolerance_is_below_a_wrong_formula_of_1e_4():
    cases = [case for case in collect_cases(["gradients", "compile", "broadcasting"]) if case.gradient]
    assert len(cases) > 100
    for case in cases:
        tolerance = tolerances.value_tolerance("float32", case.reduction_size, True, case.steps)
        assert tolerance <= WRONG_BY / 3, (case.id, tolerance)
        if case.finite_differences is not None:
            assert tolerances.finite_difference_tolerance("float32", case.reduction_size) <= WRONG_BY / 3, case.id


def test_a_float32_gradient_wrong_by_1e_4_fails():
    create = broken_backend("tanh-gradient-off-by-1e-4", namespace_with(tanh=_tanh_slightly_wrong_gradient))
    broken, right = create(), portable_dl.backend("numpy")
    case = next(case for case in gradients.cases() if case.name == "tanh")
    reference = runner.Reference()
    assert runner.run_case(case, right, "float32", reference).status == "pass"
    row = runner.run_case(case, broken, "float32", reference)
    assert row.status == "fail" and "grad x" in row.message, row


@pytest.mark.parametrize(
    "actual, expected, verdict",
    [
        ([1.0, 3e38], [0.0, 3e38], False),  # round(0.5) giving 1, not 0 (ties to even), beside 3e38
        ([0.0, 3e38], [1e-30, 3e38], False),  # log1p(1e-30) = 0 instead of 1e-30
        ([0.0, 3e38], [-0.0, 3e38], False),  # the sign of zero
        ([np.nan, 1.0], [1.0, 1.0], False),  # a NaN where there is none
        ([1.0 + 2e-6, 3e38], [1.0, 3e38], True),  # a few ulps
        ([1e-40, 1.0], [0.0, 1.0], True),  # a subnormal where zero: flushing is a platform's choice
    ],
)
def test_element_wise_judging_sees_an_error_on_a_small_element_beside_a_huge_one(actual, expected, verdict):
    tolerance = tolerances.value_tolerance("float32")
    result = compare.compare_elementwise("value", np.array(actual), np.array(expected), tolerance, "float32")
    assert result.passed is verdict, result


def test_every_half_precision_element_wise_tolerance_fails_a_float16_result_rounded_through_bfloat16():
    """Issue 16: an element-wise float16 result rounded through bfloat16 is off by up to
    2**-8 of its value (bfloat16's unit roundoff); the float16 tolerance of every element-wise
    case is a quarter of that, and bfloat16's own is 2 of its units."""
    cases = [case for case in collect_cases(["ops", "broadcasting"]) if case.elementwise and "float16" in case.dtypes]
    assert len(cases) > 100
    for case in cases:
        assert tolerances.value_tolerance("float16", case.reduction_size) == 2.0**-10, case.id
        assert tolerances.value_tolerance("bfloat16", case.reduction_size) == 2.0**-7, case.id
