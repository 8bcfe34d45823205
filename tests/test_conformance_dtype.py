"""``portable-dl conformance --dtype float16,bfloat16`` (issue 16): the flag, a passing
half-precision run, references on half-rounded inputs, and planted half-precision faults
that the tolerances of conformance/tolerances.py are tight enough to catch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from portable_dl.conformance import cli, gradients, ops, runner, tolerances
from portable_dl.conformance.half_reference import overflowed, round_to
from portable_dl.conformance.mutants import broken_backend, namespace_with

import portable_dl

ml_dtypes = pytest.importorskip("ml_dtypes")
numpy_namespace = portable_dl.backend("numpy").xp


# ------------------------------------------------------------------- the flag
@pytest.mark.parametrize(
    ("arguments", "dtypes"),
    [
        ([], ["float32", "float64"]),
        (["--dtype", "float16,bfloat16"], ["float16", "bfloat16"]),
        (["--dtype", " bfloat16 , float32,"], ["bfloat16", "float32"]),
        (["--dtype", "float16", "--dtype", "float64,float16"], ["float16", "float64"]),
    ],
)
def test_dtype_takes_a_comma_list(arguments, dtypes):
    parsed = cli.build_parser().parse_args(arguments)
    assert cli.selected_dtypes(parsed) == dtypes


@pytest.mark.parametrize("value", ["float16,float8", "half", ",", "float16;bfloat16"])
def test_an_unknown_dtype_is_a_usage_error_naming_it(value, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--backends", "numpy", "--dtype", value])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "argument --dtype: unknown dtype" in error
    assert "dtypes: float32, float64, float16, bfloat16" in error
    if value == "float16,float8":
        assert "'float8'" in error and "'float16'" not in error.split("unknown dtype")[1].split(";")[0]


# ------------------------------------------------------------- a whole run
def test_a_float16_run_on_numpy_passes_and_reports_the_dtype_per_row(tmp_path, capsys):
    output = tmp_path / "report.json"
    code = cli.main(
        [
            "--backends",
            "numpy",
            "--dtype",
            "float16",
            "--family",
            "broadcasting,ops",
            "--jobs",
            "1",
            "--format",
            "json",
            "--output",
            str(output),
        ]
    )
    report = json.loads(output.read_text())
    failures = [row for row in report["results"] if row["status"] == "fail"]
    assert code == 0, failures[:3]
    assert report["settings"]["dtypes"] == ["float16"]
    rows = report["results"]
    assert {row["dtype"] for row in rows} == {"float16"}
    passed = [row for row in rows if row["status"] == "pass"]
    assert len(passed) > 200
    # Every skip says why: the cases defined for float32 and float64 only name the reason.
    skipped = [row for row in rows if row["status"] == "skip"]
    assert skipped and all(row["message"] for row in skipped)
    assert any("no complex dtype has half-precision parts" in row["message"] for row in skipped)
    assert any("has no float16 kernel" in row["message"] for row in skipped)  # NumPy's linalg
    # Half-precision tolerances, not float32's: an element-wise case is judged by 2 units of 2**-11.
    add = next(row for row in passed if row["case"] == "add" and row["family"] == "ops")
    assert add["tolerance"] == 2 * 2.0**-11


# ------------------------------------------------ references of half-precision runs
def test_the_reference_sees_the_inputs_rounded_to_the_half_dtype():
    # Hand-derived: 0.1 = 1.6 * 2**-4; float16 keeps 10 fraction bits (1.6 * 1024 = 1638.4 ->
    # 1638), bfloat16 7 (1.6 * 128 = 204.8 -> 205).
    assert round_to(0.1, "float16") == 1638 / 1024 * 2.0**-4 == 0.0999755859375
    assert round_to(0.1, "bfloat16") == 205 / 128 * 2.0**-4 == 0.10009765625
    assert round_to(65520.0, "float16") == np.inf and round_to(65519.0, "float16") == 65504.0
    case = next(case for case in ops.cases() if case.name == "exp")
    reference = runner.Reference()
    x = ops.draw("any", (4, 5), 1)
    for dtype in ("float16", "bfloat16"):
        expected = np.exp(round_to(x, dtype))  # float64 on the rounded inputs
        np.testing.assert_array_equal(reference.numeric(case, dtype)["value"], expected)
    np.testing.assert_array_equal(reference.numeric(case, "float32")["value"], np.exp(x))


def test_a_result_beyond_the_half_range_is_expected_infinite():
    outputs = {"value": np.array([70000.0, -1e6, 65504.0, 3e38]), "dtype": "float16"}
    result = overflowed(outputs, "float16")
    assert result["value"].tolist() == [np.inf, -np.inf, 65504.0, np.inf] and result["dtype"] == "float16"
    assert overflowed(outputs, "bfloat16")["value"].tolist() == [70000.0, -1e6, 65504.0, 3e38]


def test_half_tolerances_come_from_each_dtypes_unit_roundoff():
    assert tolerances.UNIT_ROUNDOFF["float16"] == np.finfo(np.float16).eps / 2
    assert tolerances.UNIT_ROUNDOFF["bfloat16"] == float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps) / 2
    # element-wise: 2 units; a sum of 5 terms: 2 + 4 sqrt(4) = 10 units; its gradient: twice that.
    assert tolerances.value_tolerance("bfloat16") == 2 * 2.0**-8
    assert tolerances.value_tolerance("float16", reduction_size=5) == 10 * 2.0**-11
    assert tolerances.value_tolerance("float16", reduction_size=5, gradient=True) == 20 * 2.0**-11


# ------------------------------------------------------------ planted faults
def _add_through_bfloat16(x1, x2, /):
    """float16 addition whose result is rounded to bfloat16 on the way (then back to float16)."""
    result = numpy_namespace.add(x1, x2)
    if result.dtype == np.float16:
        return result.astype(ml_dtypes.bfloat16).astype(np.float16)
    return result


def _multiply_left_in_float32(x1, x2, /):
    """bfloat16 multiplication computed in float32 whose result is never rounded to bfloat16."""
    if getattr(x1, "dtype", None) == ml_dtypes.bfloat16:
        return numpy_namespace.multiply(x1.astype(np.float32), np.asarray(x2).astype(np.float32))
    return numpy_namespace.multiply(x1, x2)


def _tanh_with_gradient(wrong_by: float):
    """tanh whose half-precision gradient is ``(1 - tanh**2) * (1 + wrong_by)``."""
    from autograd.extend import defvjp, primitive

    @primitive
    def tanh(x):
        return np.tanh(x)

    def backward(ans, x):
        def vjp(g):
            if ans.dtype not in (np.float16, ml_dtypes.bfloat16):
                return g * (1 - ans**2)
            exact = g.astype(np.float32) * (1 - ans.astype(np.float32) ** 2) * (1 + wrong_by)
            return exact.astype(ans.dtype)

        return vjp

    defvjp(tanh, backward)
    return tanh


#: A wrong derivative of relative size 1%: the float16 gradient tolerance of the tanh case is
#: 4 units of 2**-11 (0.2%), so it fails; bfloat16's, 4 units of 2**-8 (1.6%), would not.
WRONG_BY = 0.01

FAULTS = {
    "float16 add rounds through bfloat16": (
        dict(add=_add_through_bfloat16),
        lambda: next(case for case in ops.cases() if case.name == "add"),
        "float16",
        "value",
    ),
    "bfloat16 multiply computes in float32 without rounding the result": (
        dict(multiply=_multiply_left_in_float32),
        lambda: next(case for case in ops.cases() if case.name == "multiply"),
        "bfloat16",
        "dtype: 'float32', reference 'bfloat16'",
    ),
    "float16 tanh gradient wrong by 1%": (
        dict(tanh=_tanh_with_gradient(WRONG_BY)),
        lambda: next(case for case in gradients.cases() if case.name == "tanh"),
        "float16",
        "grad x",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_planted_half_precision_fault_is_caught_in_its_dtype_only(fault):
    replacements, find_case, dtype, message = FAULTS[fault]
    broken = broken_backend("half-fault", namespace_with(**replacements))()
    right = portable_dl.backend("numpy")
    case, reference = find_case(), runner.Reference()
    assert runner.run_case(case, right, dtype, reference).status == "pass"
    row = runner.run_case(case, broken, dtype, reference)
    assert row.status == "fail" and message in row.message, row
    if row.max_rel_error is not None:
        assert row.max_rel_error > row.tolerance
    # The fault is in half precision only: the same case in float32 passes.
    assert runner.run_case(case, broken, "float32", reference).status == "pass"
