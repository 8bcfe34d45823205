"""float16 and bfloat16 in every namespace that has them: the dtypes, their limits, conversion in
and out bit for bit, creation, type promotion, the namespace's functions keeping the half dtype,
gradients, and a DTypeError naming the function where a framework has no half kernel.

References are independent of the code under test: NumPy float64 computed on the inputs already
rounded to the half dtype, then compared with a tolerance of a few units in the last place
(ulps) of the half dtype, taken from its epsilon (2**-10 for float16, 2**-7 for bfloat16);
rounding is checked against ``ml_dtypes`` (NumPy's own float16 conversion for float16) and
against hand-derived values. Inputs tell the two half dtypes apart: ``1 + 2**-8`` is exact in
float16 and rounds to 1 in bfloat16; 65520 overflows float16 and is 65536 in bfloat16.

The half dtypes are an extension of the standard (``backends/_common/surface.py``): a backend
whose framework lacks one says so with a DTypeError from ``backend.dtype``, and its tests skip
with that reason.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from portable_dl.errors import DTypeError

HALF = ["float16", "bfloat16"]

#: Each half dtype's epsilon (the spacing of its numbers at 1), written out, not read from code under test.
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7}


def numpy_half(name):
    """NumPy's scalar type for a half dtype: its own float16, ml_dtypes' bfloat16."""
    if name == "float16":
        return np.float16
    return pytest.importorskip("ml_dtypes", reason="NumPy's bfloat16 comes from ml_dtypes").bfloat16


def half_dtype(backend, name):
    """The backend's dtype object for ``name``, or a skip with the backend's own reason."""
    try:
        return backend.dtype(name)
    except DTypeError as error:
        pytest.skip(f"{backend.name} has no {name}: {error}")


def half_array(backend, values, name):
    """``values`` rounded to the half dtype in NumPy (the reference rounding), and moved to the
    backend bit for bit: (backend array, the same numbers as float64)."""
    half_dtype(backend, name)
    rounded = np.asarray(values, dtype=np.float64).astype(numpy_half(name))
    return backend.asarray(rounded), rounded.astype(np.float64)


def as_float64(backend, x):
    return np.asarray(backend.to_numpy(x)).astype(np.float64)


def assert_half(backend, result, name):
    assert backend.dtype_name(result.dtype) == name, f"dtype {result.dtype}, expected {name}"


def assert_close_in_ulps(got, reference, name, ulps=2.0, scale=None):
    """``got`` within ``ulps`` units in the last place of the half dtype of ``reference``: the
    tolerance is ``ulps * eps * max(|reference|, scale)``, NaN where the reference is NaN."""
    reference = np.asarray(reference, dtype=np.float64)
    magnitude = np.abs(reference) if scale is None else np.maximum(np.abs(reference), scale)
    tolerance = ulps * EPS[name] * np.maximum(magnitude, 2.0**-14)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(reference))
    finite = ~np.isnan(reference)
    assert np.all(np.abs(got[finite] - reference[finite]) <= tolerance[finite]), (
        f"got {got[finite]}, reference {reference[finite]}, tolerance {tolerance[finite]}"
    )


# ---------------------------------------------------------------------------- dtypes, limits
@pytest.mark.parametrize("name", HALF)
def test_half_dtypes_are_exported_beside_the_standard_list(backend, name):
    xp = backend.xp
    dtype = half_dtype(backend, name)
    assert dtype == getattr(xp, name) and backend.supports(name)
    assert backend.dtype_name(dtype) == name
    assert xp.isdtype(dtype, "real floating") and xp.isdtype(dtype, "numeric")
    assert not xp.isdtype(dtype, "integral") and not xp.isdtype(dtype, "complex floating")
    assert xp.isdtype(dtype, (xp.int8, dtype)) and not xp.isdtype(dtype, xp.float32)
    # array-api-tests iterates the info object's list: the standard's dtypes only.
    assert name not in xp.__array_namespace_info__().dtypes()
    assert xp.__array_namespace_info__().default_dtypes()["real floating"] in (xp.float32, xp.float64)


# Hand-derived: float16 has 10 stored mantissa bits and 5 exponent bits (bias 15), bfloat16 7 and 8 (bias 127).
FINFO = {
    "float16": (16, 2.0**-10, 65504.0, 2.0**-14),
    "bfloat16": (16, 2.0**-7, (2 - 2.0**-7) * 2.0**127, 2.0**-126),
}


@pytest.mark.parametrize("name", HALF)
def test_finfo_of_the_half_dtypes(backend, name):
    xp = backend.xp
    dtype = half_dtype(backend, name)
    bits, eps, largest, smallest_normal = FINFO[name]
    for argument in (dtype, xp.zeros((2,), dtype=dtype)):
        info = xp.finfo(argument)
        assert (info.bits, info.eps, info.max, info.min, info.smallest_normal) == (
            bits,
            eps,
            largest,
            -largest,
            smallest_normal,
        )
        assert all(type(value) is float for value in (info.eps, info.max, info.min, info.smallest_normal))
        assert info.dtype == dtype
    assert math.isclose(FINFO["bfloat16"][2], 3.3895313892515355e38) and 2.0**-14 == 6.103515625e-05


# ------------------------------------------------------------------------ in and out, exactly
#: Python floats at the edges of the two dtypes, and what each rounds to (round half to even):
ROUNDING = {
    "float16": [
        (1 + 2.0**-8, 1 + 2.0**-8),  # exact in float16
        (1 + 2.0**-11, 1.0),  # a tie: to even
        (1 + 3 * 2.0**-11, 1 + 2.0**-9),  # a tie: to even, upwards
        (65504.0, 65504.0),  # the largest
        (65519.0, 65504.0),  # below the tie with 65536
        (65520.0, math.inf),  # the tie with 65536: to even, which is past the largest
        (2.0**-24, 2.0**-24),  # the smallest subnormal
        (2.0**-25, 0.0),  # a tie with zero: to even
        (3 * 2.0**-26, 2.0**-24),
        (-0.0, -0.0),
    ],
    "bfloat16": [
        (1 + 2.0**-8, 1.0),  # a tie: to even
        (1 + 3 * 2.0**-9, 1 + 2.0**-7),
        (65504.0, 65536.0),
        (65520.0, 65536.0),
        (3.3e38, 3.3e38 // 2.0**120 * 2.0**120),  # the bfloat16 below, 0x7F76 ...
        (3.4e38, math.inf),  # past (2 - 2**-8) * 2**127, the tie above the largest
        (2.0**-133, 2.0**-133),  # the smallest subnormal
        (3 * 2.0**-135, 2.0**-133),
        (-0.0, -0.0),
    ],
}


@pytest.mark.parametrize("name", HALF)
def test_asarray_rounds_python_floats_to_nearest_even(backend, name):
    xp = backend.xp
    dtype = half_dtype(backend, name)
    values, expected = (list(column) for column in zip(*ROUNDING[name]))
    reference = np.asarray(values).astype(numpy_half(name))  # ml_dtypes / NumPy: one rounding from float64
    for result in (xp.asarray(values, dtype=dtype), backend.asarray(values, dtype=name)):
        assert_half(backend, result, name)
        out = backend.to_numpy(result)
        assert out.dtype == np.dtype(numpy_half(name))
        np.testing.assert_array_equal(out.view(np.uint16), reference.view(np.uint16))
        np.testing.assert_array_equal(out.astype(np.float64), expected)
        np.testing.assert_array_equal(np.signbit(out.astype(np.float64)), np.signbit(expected))


@pytest.mark.parametrize("name", HALF)
def test_every_bit_pattern_goes_in_and_out_unchanged(backend, name):
    """All 65536 values (both zeros, subnormals, infinities, NaNs with their payloads), through
    ``backend.asarray`` and ``xp.asarray``, back with ``to_numpy``: bit for bit."""
    half_dtype(backend, name)
    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(numpy_half(name))
    for moved in (backend.asarray(values), backend.xp.asarray(values)):
        assert_half(backend, moved, name)
        out = backend.to_numpy(moved)
        assert out.dtype == np.dtype(numpy_half(name))
        np.testing.assert_array_equal(out.view(np.uint16), bits)


@pytest.mark.parametrize("name", HALF)
def test_astype_to_and_from_half(backend, name):
    xp = backend.xp
    dtype = half_dtype(backend, name)
    wide = xp.asarray(np.array([1 + 2.0**-8, -2.5, 70000.0], dtype=np.float32))
    narrow = xp.astype(wide, dtype)
    assert_half(backend, narrow, name)
    expected = {"float16": [1 + 2.0**-8, -2.5, math.inf], "bfloat16": [1.0, -2.5, 70144.0]}[name]
    np.testing.assert_array_equal(as_float64(backend, narrow), expected)
    back = xp.astype(narrow, xp.float32)
    assert back.dtype == xp.float32
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(back)), np.asarray(expected, dtype=np.float32))
    truncated = xp.astype(xp.asarray([2.75, -2.75], dtype=dtype), xp.int32)
    assert truncated.dtype == xp.int32
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(truncated)), [2, -2])


# ---------------------------------------------------------------------------------- creation
@pytest.mark.parametrize("name", HALF)
def test_creation_functions_make_half_arrays(backend, name):
    xp = backend.xp
    dtype = half_dtype(backend, name)
    cases = {
        "zeros": (xp.zeros((2, 3), dtype=dtype), np.zeros((2, 3))),
        "ones": (xp.ones((2, 3), dtype=dtype), np.ones((2, 3))),
        "full": (
            xp.full((2, 3), 1 + 2.0**-8, dtype=dtype),
            np.full((2, 3), {"float16": 1 + 2.0**-8, "bfloat16": 1.0}[name]),
        ),
        "arange": (xp.arange(0, 2.5, 0.5, dtype=dtype), np.array([0.0, 0.5, 1.0, 1.5, 2.0])),
        "linspace": (xp.linspace(0, 1, 5, dtype=dtype), np.array([0.0, 0.25, 0.5, 0.75, 1.0])),
        "eye": (xp.eye(2, 3, k=1, dtype=dtype), np.eye(2, 3, k=1)),
        "asarray": (xp.asarray(2.5, dtype=dtype), np.array(2.5)),
    }
    template = xp.asarray([[1.5, -2.0, 3.0]], dtype=dtype)
    cases.update(
        zeros_like=(xp.zeros_like(template), np.zeros((1, 3))),
        ones_like=(xp.ones_like(template), np.ones((1, 3))),
        full_like=(xp.full_like(template, -0.75), np.full((1, 3), -0.75)),
        tril=(xp.tril(xp.ones((2, 2), dtype=dtype)), np.tril(np.ones((2, 2)))),
    )
    for label, (result, expected) in cases.items():
        assert backend.dtype_name(result.dtype) == name, label
        np.testing.assert_array_equal(as_float64(backend, result), expected, err_msg=label)
    for result in (xp.empty((2, 1), dtype=dtype), xp.empty_like(template)):
        assert_half(backend, result, name)
    grid = xp.meshgrid(xp.asarray([1.0, 2.0], dtype=dtype), xp.asarray([3.0, 4.0, 5.0], dtype=dtype))
    assert all(backend.dtype_name(g.dtype) == name for g in grid)
    np.testing.assert_array_equal(as_float64(backend, grid[1]), [[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]])


# --------------------------------------------------------------------------------- promotion
def test_float16_with_bfloat16_promotes_to_float32(backend):
    xp = backend.xp
    float16, bfloat16 = half_dtype(backend, "float16"), half_dtype(backend, "bfloat16")
    assert xp.result_type(float16, bfloat16) == xp.float32 == xp.result_type(bfloat16, float16)
    a = xp.asarray([1 + 2.0**-8, 3.0], dtype=float16)  # exact in float16, not in bfloat16
    b = xp.asarray([1.0, 2.0**-7], dtype=bfloat16)
    for result in (xp.add(a, b), xp.add(b, a)):
        assert result.dtype == xp.float32
        np.testing.assert_array_equal(np.asarray(backend.to_numpy(result)), np.float32([2 + 2.0**-8, 3 + 2.0**-7]))
    assert not xp.can_cast(float16, bfloat16) and not xp.can_cast(bfloat16, float16)


@pytest.mark.parametrize("name", HALF)
def test_half_promotion_with_arrays_and_python_scalars(backend, name):
    xp = backend.xp
    dtype = half_dtype(backend, name)
    x = xp.asarray([1.5, -0.25], dtype=dtype)
    # A Python float is weak: it takes the half dtype (rounded to it), it does not widen.
    for result in (xp.multiply(x, 2.0), xp.add(x, 1), xp.subtract(3.0, x), xp.where(xp.less(x, 0.0), 0.0, x)):
        assert_half(backend, result, name)
    np.testing.assert_array_equal(as_float64(backend, xp.multiply(x, 2.0)), [3.0, -0.5])
    np.testing.assert_array_equal(as_float64(backend, xp.where(xp.less(x, 0.0), 0.0, x)), [1.5, 0.0])
    # The scalar is rounded to the half dtype: 1 + 2**-8 is 1 in bfloat16, itself in float16.
    shifted = as_float64(backend, xp.subtract(xp.asarray([0.0], dtype=dtype), -(1 + 2.0**-8)))
    np.testing.assert_array_equal(shifted, [{"float16": 1 + 2.0**-8, "bfloat16": 1.0}[name]])
    # Integers and bools meeting a half array take the half dtype; float32 and float64 widen it.
    for other in (xp.int8, xp.uint8, xp.int32, xp.bool):
        assert xp.result_type(dtype, other) == dtype == xp.result_type(other, dtype)
    counts = xp.asarray([3, -2], dtype=xp.int8)
    result = xp.add(x, counts)
    assert_half(backend, result, name)
    np.testing.assert_array_equal(as_float64(backend, result), [4.5, -2.25])
    assert xp.result_type(dtype, xp.float32) == xp.float32
    assert xp.add(x, xp.asarray([0.5, 0.5], dtype=xp.float32)).dtype == xp.float32
    assert xp.can_cast(dtype, xp.float32) and not xp.can_cast(xp.float32, dtype)
    assert not xp.can_cast(dtype, xp.int32)
    assert xp.result_type(dtype, 2.0) == dtype


# ---------------------------------------------------------------------------- element-wise
#: name -> (NumPy float64 reference, inputs): inside each function's domain, no integer quotients.
UNARY = {
    "abs": (np.abs, "signed"),
    "negative": (np.negative, "signed"),
    "exp": (np.exp, "signed"),
    "expm1": (np.expm1, "signed"),
    "log": (np.log, "positive"),
    "log1p": (np.log1p, "positive"),
    "log2": (np.log2, "positive"),
    "log10": (np.log10, "positive"),
    "sqrt": (np.sqrt, "positive"),
    "square": (np.square, "signed"),
    "reciprocal": (np.reciprocal, "positive"),
    "sin": (np.sin, "signed"),
    "cos": (np.cos, "signed"),
    "tan": (np.tan, "signed"),
    "asin": (np.arcsin, "signed"),
    "acos": (np.arccos, "signed"),
    "atan": (np.arctan, "signed"),
    "sinh": (np.sinh, "signed"),
    "cosh": (np.cosh, "signed"),
    "tanh": (np.tanh, "signed"),
    "asinh": (np.arcsinh, "signed"),
    "acosh": (np.arccosh, "above_one"),
    "atanh": (np.arctanh, "signed"),
    "floor": (np.floor, "wide"),
    "ceil": (np.ceil, "wide"),
    "trunc": (np.trunc, "wide"),
    "round": (np.round, "ties"),
    "sign": (np.sign, "signed"),
}
INPUTS = {
    "signed": [-0.9, -0.55, -0.3, 0.125, 0.4, 0.7, 0.95],
    "positive": [0.05, 0.3, 0.9, 1.7, 3.4, 11.0, 100.0],
    "above_one": [1.0, 1.25, 2.0, 5.5, 30.0],
    "wide": [-2.75, -1.5, -0.25, 0.25, 1.5, 2.75, 100.5],
    "ties": [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.25],  # round half to even: -2, -2, -0, 0, 2, 2, 3
}


@pytest.mark.parametrize("name", HALF)
@pytest.mark.parametrize("function", sorted(UNARY))
def test_unary_functions_keep_the_half_dtype(backend, name, function):
    reference, domain = UNARY[function]
    x, values = half_array(backend, INPUTS[domain], name)
    result = getattr(backend.xp, function)(x)
    assert_half(backend, result, name)
    # One unit: a correctly rounded result is within half of one; a result composed of several
    # half-precision roundings (TensorFlow's log2, XLA's asinh) is 1.5 to 2 units off.
    assert_close_in_ulps(as_float64(backend, result), reference(values), name, ulps=1.0)


#: name -> NumPy float64 reference; x1 and x2 chosen so that no quotient is near an integer.
BINARY = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "pow": np.power,
    "atan2": np.arctan2,
    "hypot": np.hypot,
    "logaddexp": np.logaddexp,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "copysign": np.copysign,
    "remainder": np.remainder,
    "floor_divide": np.floor_divide,
}
X1 = [0.3, 2.7, -1.9, 5.25, -0.6, 7.0]
X2 = [0.7, -1.2, 1.3, 2.0, -0.45, 0.9]


@pytest.mark.parametrize("name", HALF)
@pytest.mark.parametrize("function", sorted(BINARY))
def test_binary_functions_keep_the_half_dtype(backend, name, function):
    x1, v1 = half_array(backend, np.abs(X1) if function == "pow" else X1, name)
    x2, v2 = half_array(backend, X2, name)
    result = getattr(backend.xp, function)(x1, x2)
    assert_half(backend, result, name)
    # remainder's result is as exact as its inputs only relative to the divisor's size.
    scale = np.abs(v2) if function == "remainder" else None
    assert_close_in_ulps(as_float64(backend, result), BINARY[function](v1, v2), name, ulps=1.0, scale=scale)


@pytest.mark.parametrize("name", HALF)
def test_comparisons_and_predicates_on_half_arrays(backend, name):
    xp = backend.xp
    x, values = half_array(backend, [-0.0, 0.0, 1.5, -math.inf, math.nan, 2.0**-8], name)
    y, other = half_array(backend, [0.0, -0.0, 1.25, -math.inf, 1.0, 0.0], name)
    expected = {
        "equal": values == other,
        "less": values < other,
        "greater_equal": values >= other,
        "isnan": np.isnan(values),
        "isinf": np.isinf(values),
        "isfinite": np.isfinite(values),
        "signbit": np.signbit(values),
    }
    results = {
        "equal": xp.equal(x, y),
        "less": xp.less(x, y),
        "greater_equal": xp.greater_equal(x, y),
        "isnan": xp.isnan(x),
        "isinf": xp.isinf(x),
        "isfinite": xp.isfinite(x),
        "signbit": xp.signbit(x),
    }
    for label, result in results.items():
        assert result.dtype == xp.bool, label
        np.testing.assert_array_equal(np.asarray(backend.to_numpy(result)), expected[label], err_msg=label)


@pytest.mark.parametrize("name", HALF)
def test_overflow_and_signed_zeros_in_half_arithmetic(backend, name):
    xp = backend.xp
    largest = FINFO[name][2]
    half_ulp_at_largest = {"float16": 16.0, "bfloat16": 2.0**119}[name]
    big, _ = half_array(backend, [largest, largest, -largest, -largest], name)
    step = [half_ulp_at_largest / 2, half_ulp_at_largest, -half_ulp_at_largest / 2, -half_ulp_at_largest]
    step, _ = half_array(backend, step, name)
    # Below the tie the largest stays; at the tie, round half to even goes past it (odd mantissa).
    total = as_float64(backend, xp.add(big, step))
    np.testing.assert_array_equal(total, [largest, math.inf, -largest, -math.inf])
    doubled = as_float64(backend, xp.multiply(big, 2.0))
    np.testing.assert_array_equal(doubled, [math.inf, math.inf, -math.inf, -math.inf])
    zeros, _ = half_array(backend, [0.0, -0.0], name)
    for result, signs in (
        (xp.negative(zeros), [True, False]),
        (xp.multiply(zeros, -1.0), [True, False]),
        (xp.abs(xp.negative(zeros)), [False, False]),
        (xp.copysign(xp.ones_like(zeros), zeros), [False, True]),
    ):
        assert_half(backend, result, name)
        np.testing.assert_array_equal(np.signbit(as_float64(backend, result)), signs)


@pytest.mark.parametrize("name", HALF)
def test_clip_and_where_keep_the_half_dtype(backend, name):
    xp = backend.xp
    x, values = half_array(backend, [-1.5, 0.2, 0.45, 0.9, 3.0], name)
    clipped = xp.clip(x, 0.25, 0.75)
    assert_half(backend, clipped, name)
    np.testing.assert_array_equal(as_float64(backend, clipped), np.clip(values, 0.25, 0.75))
    low, _ = half_array(backend, [0.0, 0.0, 0.5, 0.5, 0.5], name)
    clipped = xp.clip(x, low, None)
    assert_half(backend, clipped, name)
    np.testing.assert_array_equal(as_float64(backend, clipped), [0.0, values[1], 0.5, values[3], 3.0])


# ------------------------------------------------------------------------ statistics, searching
@pytest.mark.parametrize("name", HALF)
def test_reductions_keep_the_half_dtype(backend, name):
    xp = backend.xp
    data = [[0.3, 1.7, -2.2, 0.9, 5.5], [1.1, -0.4, 0.8, 3.3, -1.6], [2.5, 0.7, 1.9, -0.2, 0.6]]
    x, values = half_array(backend, data, name)
    n = values.shape[1]
    # A sum of n terms rounded in the half dtype is within about n ulps of the sum of magnitudes.
    magnitude = np.sum(np.abs(values), axis=1)
    cases = [
        ("sum", xp.sum(x, axis=1), values.sum(axis=1), magnitude),
        ("mean", xp.mean(x, axis=1), values.mean(axis=1), magnitude / n),
        ("prod", xp.prod(x, axis=1), values.prod(axis=1), np.abs(values.prod(axis=1))),
        ("var", xp.var(x, axis=1), values.var(axis=1), np.sum(values**2, axis=1) / n),
        ("std", xp.std(x, axis=1, correction=1), values.std(axis=1, ddof=1), np.sqrt(np.sum(values**2, axis=1) / n)),
        ("cumulative_sum", xp.cumulative_sum(x, axis=1), np.cumsum(values, axis=1), np.cumsum(np.abs(values), axis=1)),
        (
            "cumulative_prod",
            xp.cumulative_prod(x, axis=1),
            np.cumprod(values, axis=1),
            np.abs(np.cumprod(values, axis=1)),
        ),
    ]
    for label, result, reference, scale in cases:
        assert backend.dtype_name(result.dtype) == name, label
        got = as_float64(backend, result)
        tolerance = 2 * (n + 1) * EPS[name] * np.maximum(scale, 2.0**-14)
        assert np.all(np.abs(got - reference) <= tolerance), f"{label}: got {got}, reference {reference}"
    for label, result, reference in (
        ("max", xp.max(x, axis=0), values.max(axis=0)),
        ("min", xp.min(x), values.min()),
        ("sum all", xp.sum(xp.ones((4, 3), dtype=half_dtype(backend, name))), 12.0),
    ):
        assert backend.dtype_name(result.dtype) == name, label
        np.testing.assert_array_equal(as_float64(backend, result), reference, err_msg=label)


@pytest.mark.parametrize("name", HALF)
def test_long_sums_do_not_stall_in_half_precision(backend, name):
    """4096 values near 0.35: added one by one in the half dtype, the running sum stops growing
    once its spacing passes the addend (bfloat16 stalls at 128, 82% low); accumulated wider, as
    PyTorch and JAX do, and rounded once, the sum is within two ulps of the float64 sum."""
    xp = backend.xp
    x, values = half_array(backend, np.arange(4096) % 7 * 0.1 + 0.05, name)
    for label, result, reference in (
        ("sum", xp.sum(x), values.sum()),
        ("mean", xp.mean(x), values.mean()),
        ("cumulative_sum", xp.cumulative_sum(x)[-1], values.sum()),
        ("vecdot", xp.vecdot(x, xp.ones_like(x)), values.sum()),
    ):
        assert backend.dtype_name(result.dtype) == name, label
        got = float(as_float64(backend, result))
        assert abs(got - reference) <= 2 * EPS[name] * reference, f"{label}: {got}, float64 {reference}"


@pytest.mark.parametrize("name", HALF)
def test_searching_and_sorting_half_arrays(backend, name):
    xp = backend.xp
    # 1 + 2**-8 and 1 tie in bfloat16 and differ in float16: the order and the argmax tell.
    x, values = half_array(backend, [1.0, 3.0, -0.0, 1 + 2.0**-8, 3.0, -2.0], name)
    assert int(backend.to_numpy(xp.argmax(x))) == 1  # the first of the tied maxima
    assert int(backend.to_numpy(xp.argmin(x))) == 5
    order = np.asarray(backend.to_numpy(xp.argsort(x)))
    np.testing.assert_array_equal(order, np.argsort(values, kind="stable"))
    descending = np.asarray(backend.to_numpy(xp.argsort(x, descending=True)))
    np.testing.assert_array_equal(descending, np.argsort(-values, kind="stable"))
    for result, expected in (
        (xp.sort(x), np.sort(values)),
        (xp.flip(x), values[::-1]),
        (xp.roll(x, 2), np.roll(values, 2)),
        (xp.take(x, xp.asarray([3, 0, 3]), axis=0), values[[3, 0, 3]]),
        (xp.unique_values(x), np.unique(values)),
        (xp.concat([x, xp.flip(x)]), np.concatenate([values, values[::-1]])),
        (xp.reshape(xp.stack([x, x]), (3, 4)), np.stack([values, values]).reshape(3, 4)),
        (xp.tile(x, (2,)), np.tile(values, 2)),
        (xp.repeat(x, 2), np.repeat(values, 2)),
        (xp.broadcast_to(xp.expand_dims(x, axis=0), (2, 6)), np.broadcast_to(values, (2, 6))),
        (xp.where(xp.greater(x, 0.5), x, xp.negative(x)), np.where(values > 0.5, values, -values)),
        (xp.diff(x), np.diff(values)),
    ):
        assert_half(backend, result, name)
        np.testing.assert_array_equal(as_float64(backend, result), expected)
    (nonzero,) = xp.nonzero(x)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(nonzero)), np.nonzero(values)[0])
    assert int(backend.to_numpy(xp.count_nonzero(x))) == 5
    grid, _ = half_array(backend, [-1.0, 1.0, 1 + 2.0**-8, 2.0], name)
    positions = xp.searchsorted(grid, xp.asarray([1 + 2.0**-8], dtype=half_dtype(backend, name)))
    expected_position = {"float16": 2, "bfloat16": 1}[name]  # in bfloat16 the probe is 1, which is grid[1]
    assert int(backend.to_numpy(positions)[0]) == expected_position


# ---------------------------------------------------------------------------- linear algebra
@pytest.mark.parametrize("name", HALF)
def test_products_keep_the_half_dtype(backend, name):
    xp = backend.xp
    a, va = half_array(backend, [[0.5, -1.25, 2.0], [1.5, 0.75, -0.3]], name)
    b, vb = half_array(backend, [[1.1, 0.2], [-0.6, 0.9], [0.35, -1.7]], name)
    v, vv = half_array(backend, [0.3, -2.5, 1.2], name)
    k = 3
    cases = [
        ("matmul", xp.matmul(a, b), va @ vb, np.abs(va) @ np.abs(vb)),
        ("matmul vector", xp.matmul(a, v), va @ vv, np.abs(va) @ np.abs(vv)),
        ("tensordot", xp.tensordot(a, b, axes=1), va @ vb, np.abs(va) @ np.abs(vb)),
        ("vecdot", xp.vecdot(a, v), va @ vv, np.abs(va) @ np.abs(vv)),
        ("outer", xp.linalg.outer(v, v), np.outer(vv, vv), np.abs(np.outer(vv, vv))),
        ("trace", xp.linalg.trace(xp.matmul(b, a)), np.trace(vb @ va), np.abs(vb) @ np.abs(va)),
        ("vector_norm", xp.linalg.vector_norm(v), np.linalg.norm(vv), np.linalg.norm(vv)),
        ("matrix_norm", xp.linalg.matrix_norm(a), np.linalg.norm(va), np.linalg.norm(va)),
        ("cross", xp.linalg.cross(v, xp.flip(v)), np.cross(vv, vv[::-1]), np.abs(vv) * np.abs(vv).max()),
        ("matrix_power", xp.linalg.matrix_power(xp.matmul(a, b), 2), np.linalg.matrix_power(va @ vb, 2), None),
        ("matrix_transpose", xp.matrix_transpose(a), va.T, np.abs(va.T)),
    ]
    for label, result, reference, scale in cases:
        assert backend.dtype_name(result.dtype) == name, label
        got = as_float64(backend, result)
        if scale is None:  # two rounded products in a row: bounded by the product of magnitudes
            scale = np.linalg.matrix_power(np.abs(va) @ np.abs(vb), 2)
        tolerance = 2 * (k + 2) * EPS[name] * np.maximum(scale, 2.0**-14)
        assert np.all(np.abs(got - reference) <= tolerance), f"{label}: got {got}, reference {reference}"


#: Factorizations no framework here computes in half precision on every device: either a result
#: of the half dtype, or a DTypeError naming the function and the dtype.
FACTORIZATIONS = {
    "cholesky": lambda xp, m: xp.linalg.cholesky(m),
    "det": lambda xp, m: xp.linalg.det(m),
    "inv": lambda xp, m: xp.linalg.inv(m),
    "solve": lambda xp, m: xp.linalg.solve(m, m),
    "eigh": lambda xp, m: xp.linalg.eigh(m).eigenvalues,
    "eigvalsh": lambda xp, m: xp.linalg.eigvalsh(m),
    "qr": lambda xp, m: xp.linalg.qr(m).R,
    "svd": lambda xp, m: xp.linalg.svd(m).S,
    "svdvals": lambda xp, m: xp.linalg.svdvals(m),
    "slogdet": lambda xp, m: xp.linalg.slogdet(m).logabsdet,
    "pinv": lambda xp, m: xp.linalg.pinv(m),
    "matrix_rank": lambda xp, m: xp.linalg.matrix_rank(m),
    "matrix_norm": lambda xp, m: xp.linalg.matrix_norm(m, ord=2),
    "matrix_power": lambda xp, m: xp.linalg.matrix_power(m, -1),
}
#: The references, on the matrix 2 I + 0.25 (a symmetric positive definite 2x2: eigenvalues 2 and 2.5).
FACTORIZATION_REFERENCES = {
    "cholesky": lambda m: np.linalg.cholesky(m),
    "det": lambda m: np.linalg.det(m),
    "inv": lambda m: np.linalg.inv(m),
    "solve": lambda m: np.eye(2),
    "eigh": lambda m: np.linalg.eigvalsh(m),
    "eigvalsh": lambda m: np.linalg.eigvalsh(m),
    "qr": lambda m: np.abs(np.linalg.qr(m)[1]),
    "svd": lambda m: np.linalg.svd(m, compute_uv=False),
    "svdvals": lambda m: np.linalg.svd(m, compute_uv=False),
    "slogdet": lambda m: np.log(np.linalg.det(m)),
    "pinv": lambda m: np.linalg.inv(m),
    "matrix_rank": lambda m: 2,
    "matrix_norm": lambda m: 2.5,
    "matrix_power": lambda m: np.linalg.inv(m),
}


@pytest.mark.parametrize("name", HALF)
@pytest.mark.parametrize("function", sorted(FACTORIZATIONS))
def test_factorizations_compute_in_half_or_say_which_kernel_is_missing(backend, name, function):
    m, values = half_array(backend, np.eye(2) * 2 + 0.25, name)
    try:
        result = FACTORIZATIONS[function](backend.xp, m)
    except DTypeError as error:
        message = str(error)
        assert message.startswith(f"{function}: ") and name in message, message
        return
    got = as_float64(backend, result)
    if function == "qr":
        got = np.abs(got)  # R is unique up to the signs of its rows
    if function != "matrix_rank":
        assert_half(backend, result, name)
    assert_close_in_ulps(got, FACTORIZATION_REFERENCES[function](values), name, ulps=8, scale=1.0)


@pytest.mark.parametrize("name", HALF)
def test_numpy_torch_and_jax_refuse_half_factorizations(backend, name):
    """The NumPy, PyTorch and JAX namespaces refuse the LAPACK factorizations in half
    precision (probed: NumPy raises TypeError for float16 and answers bfloat16 in float64,
    PyTorch and JAX raise their own errors); the message names the function and the dtype."""
    if backend.name not in ("numpy", "torch", "jax"):
        pytest.skip("probed on NumPy, PyTorch and JAX; other frameworks may have these kernels")
    m, _ = half_array(backend, np.eye(2) * 2 + 0.25, name)
    with pytest.raises(DTypeError, match=rf"^inv: \S+ \S+ has no {name} kernel for this function"):
        backend.xp.linalg.inv(m)
    with pytest.raises(DTypeError, match=rf"^matrix_norm: .* has no {name} kernel"):
        backend.xp.linalg.matrix_norm(m, ord="nuc")


@pytest.mark.parametrize("name", HALF)
def test_fourier_transforms_refuse_half_input(backend, name):
    """There is no complex half dtype for the result: every backend refuses alike."""
    xp = backend.xp
    x, values = half_array(backend, [1.0, 2.0, 0.5, -1.0], name)
    for transform in ("fft", "rfft", "fftn", "rfftn", "ihfft"):
        with pytest.raises(DTypeError, match=rf"^{transform}: .*{name}"):
            getattr(xp.fft, transform)(x)
    shifted = xp.fft.fftshift(x)  # moves data: every dtype
    assert_half(backend, shifted, name)
    np.testing.assert_array_equal(as_float64(backend, shifted), np.fft.fftshift(values))


# ---------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", HALF)
def test_gradients_in_half_precision_match_finite_differences(backend, name):
    """d/dp of sum(tanh(p) * p * w) + mean((p @ m)**2): half gradients, within a tolerance
    from the dtype's eps, of central differences in float64 at the same (rounded) point."""
    xp = backend.xp
    dtype = half_dtype(backend, name)
    p, vp = half_array(backend, [[0.3, -0.8, 1.2], [0.05, 0.6, -1.5]], name)
    w, vw = half_array(backend, [[1.0, -0.5, 0.25], [2.0, 0.75, -1.25]], name)
    m, vm = half_array(backend, [[0.5, -1.0], [0.25, 0.75], [-0.5, 1.5]], name)

    def loss(params):
        return xp.add(
            xp.sum(xp.multiply(xp.multiply(xp.tanh(params), params), w)), xp.mean(xp.square(xp.matmul(params, m)))
        )

    def loss64(values):
        return np.sum(np.tanh(values) * values * vw) + np.mean((values @ vm) ** 2)

    value, gradient = backend.value_and_grad(loss)(p)
    assert backend.dtype_name(value.dtype) == name and gradient.dtype == dtype
    expected = np.zeros_like(vp)
    step = 1e-6
    for index in np.ndindex(vp.shape):
        shift = np.zeros_like(vp)
        shift[index] = step
        expected[index] = (loss64(vp + shift) - loss64(vp - shift)) / (2 * step)
    # Each gradient entry sums a handful of products computed in the half dtype.
    tolerance = 4 * EPS[name] * (np.abs(expected) + 1)
    got = as_float64(backend, gradient)
    assert np.all(np.abs(got - expected) <= tolerance), f"got {got}, expected {expected}"
    assert abs(float(as_float64(backend, value)) - loss64(vp)) <= 4 * EPS[name] * (abs(loss64(vp)) + 1)


# ------------------------------------------------------------------------------- NumPy specific
def test_numpy_without_ml_dtypes_says_how_to_get_bfloat16(monkeypatch):
    import portable_dl

    backend = portable_dl.backend("numpy")
    monkeypatch.delattr(backend.xp, "bfloat16")
    with pytest.raises(DTypeError, match="pip install ml_dtypes"):
        backend.dtype("bfloat16")
    assert not backend.supports("bfloat16") and backend.supports("float16")
