"""Every namespace function against NumPy in float64, on every backend.

Inputs are drawn in float64, rounded to the dtype under test, and given to both the backend
and NumPy (in float64), so the only difference left is the backend's arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, float_dtypes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portable_dl

RNG = np.random.default_rng(0)

# Domains of the inputs: where each function is defined and well conditioned.
DOMAINS = {
    "any": lambda shape: RNG.uniform(-3, 3, shape),
    "positive": lambda shape: RNG.uniform(0.1, 4, shape),
    "unit": lambda shape: RNG.uniform(-0.9, 0.9, shape),
    "above_one": lambda shape: RNG.uniform(1.1, 4, shape),
    "nonzero": lambda shape: np.where(RNG.uniform(size=shape) < 0.5, -1, 1) * RNG.uniform(0.5, 3, shape),
}

UNARY = [
    ("abs", np.abs, "any"),
    ("negative", np.negative, "any"),
    ("positive", np.positive, "any"),
    ("sign", np.sign, "any"),
    ("exp", np.exp, "any"),
    ("expm1", np.expm1, "any"),
    ("log", np.log, "positive"),
    ("log1p", np.log1p, "positive"),
    ("log2", np.log2, "positive"),
    ("log10", np.log10, "positive"),
    ("sqrt", np.sqrt, "positive"),
    ("square", np.square, "any"),
    ("reciprocal", np.reciprocal, "nonzero"),
    ("sin", np.sin, "any"),
    ("cos", np.cos, "any"),
    ("tan", np.tan, "unit"),
    ("asin", np.arcsin, "unit"),
    ("acos", np.arccos, "unit"),
    ("atan", np.arctan, "any"),
    ("sinh", np.sinh, "any"),
    ("cosh", np.cosh, "any"),
    ("tanh", np.tanh, "any"),
    ("asinh", np.arcsinh, "any"),
    ("acosh", np.arccosh, "above_one"),
    ("atanh", np.arctanh, "unit"),
    ("floor", np.floor, "any"),
    ("ceil", np.ceil, "any"),
    ("trunc", np.trunc, "any"),
    ("round", np.round, "any"),
]

BINARY = [
    ("add", np.add, "any"),
    ("subtract", np.subtract, "any"),
    ("multiply", np.multiply, "any"),
    ("divide", np.divide, "nonzero"),
    ("pow", np.power, "any"),
    ("maximum", np.maximum, "any"),
    ("minimum", np.minimum, "any"),
    ("atan2", np.arctan2, "nonzero"),
    ("hypot", np.hypot, "any"),
    ("copysign", np.copysign, "nonzero"),
    ("logaddexp", np.logaddexp, "any"),
    ("floor_divide", np.floor_divide, "nonzero"),
    ("remainder", np.remainder, "nonzero"),
]

COMPARISONS = [
    ("equal", np.equal),
    ("not_equal", np.not_equal),
    ("less", np.less),
    ("less_equal", np.less_equal),
    ("greater", np.greater),
    ("greater_equal", np.greater_equal),
]

# Pairs of shapes of different ranks that broadcast, including a 0-d operand.
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((5, 3, 2), (5, 1, 2))]


def draw(domain: str, shape, dtype: str) -> np.ndarray:
    """Values from ``domain`` rounded to ``dtype``; returned as that dtype."""
    return DOMAINS[domain](shape).astype(dtype)


def result_dtype(backend, array) -> str:
    return backend.dtype_name(array.dtype)


@pytest.mark.parametrize("name, reference, domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_matches_numpy(backend, name, reference, domain):
    for dtype in float_dtypes(backend):
        x = draw(domain, (3, 4), dtype)
        if name == "round":  # keep clear of .5 ties, where frameworks may differ by rounding rule
            x = (np.round(x * 4) / 4 + 0.1).astype(dtype)
        result = getattr(backend.xp, name)(backend.asarray(x))
        assert result_dtype(backend, result) == dtype, f"{name} changed the dtype"
        assert_close(backend.to_numpy(result), reference(x.astype(np.float64)), dtype, what=f"{name} {dtype}")


def test_round_is_half_to_even(backend):
    x = backend.asarray(np.array([0.5, 1.5, 2.5, -0.5, -1.5], dtype="float32"))
    np.testing.assert_array_equal(backend.to_numpy(backend.xp.round(x)), [0.0, 2.0, 2.0, -0.0, -2.0])


@pytest.mark.parametrize("name, reference, domain", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=[f"{a}+{b}" for a, b in BROADCAST_PAIRS])
def test_binary_matches_numpy_with_broadcasting(backend, name, reference, domain, shapes):
    for dtype in float_dtypes(backend):
        x1 = draw("positive" if name == "pow" else "any", shapes[0], dtype)
        x2 = draw(domain, shapes[1], dtype)
        result = getattr(backend.xp, name)(backend.asarray(x1), backend.asarray(x2))
        expected = reference(x1.astype(np.float64), x2.astype(np.float64))
        assert result_dtype(backend, result) == dtype
        # floor_divide and remainder are discontinuous: compare away from the jumps only.
        if name in ("floor_divide", "remainder"):
            quotient = x1.astype(np.float64) / x2.astype(np.float64)
            keep = np.abs(quotient - np.round(quotient)) > 1e-3
            actual = np.broadcast_to(backend.to_numpy(result), expected.shape)
            assert_close(actual[keep], expected[keep], dtype, what=f"{name} {dtype}")
        else:
            assert_close(backend.to_numpy(result), expected, dtype, what=f"{name} {dtype} {shapes}")


@pytest.mark.parametrize("name, reference", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons(backend, name, reference):
    x1 = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, -1.0]], dtype="float32")
    x2 = np.array([2.0, 2.0, -1.0], dtype="float32")
    result = getattr(backend.xp, name)(backend.asarray(x1), backend.asarray(x2))
    assert result_dtype(backend, result) == "bool"
    np.testing.assert_array_equal(backend.to_numpy(result), reference(x1, x2))


def test_logical_functions(backend):
    xp = backend.xp
    a = backend.asarray(np.array([True, True, False, False]))
    b = backend.asarray(np.array([True, False, True, False]))
    np.testing.assert_array_equal(backend.to_numpy(xp.logical_and(a, b)), [True, False, False, False])
    np.testing.assert_array_equal(backend.to_numpy(xp.logical_or(a, b)), [True, True, True, False])
    np.testing.assert_array_equal(backend.to_numpy(xp.logical_xor(a, b)), [False, True, True, False])
    np.testing.assert_array_equal(backend.to_numpy(xp.logical_not(a)), [False, False, True, True])


def test_special_values(backend):
    xp = backend.xp
    x = backend.asarray(np.array([0.0, -1.0, np.inf, -np.inf, np.nan, 1e30], dtype="float32"))
    np.testing.assert_array_equal(backend.to_numpy(xp.isnan(x)), [False, False, False, False, True, False])
    np.testing.assert_array_equal(backend.to_numpy(xp.isinf(x)), [False, False, True, True, False, False])
    np.testing.assert_array_equal(backend.to_numpy(xp.isfinite(x)), [True, True, False, False, False, True])
    # logaddexp of large arguments must not overflow: log(e^1000 + e^1000) = 1000 + log 2
    big = backend.asarray(np.array([1000.0, -1000.0], dtype="float32"))
    assert_close(backend.to_numpy(xp.logaddexp(big, big)), [1000 + math.log(2), -1000 + math.log(2)], "float32")


def test_where_and_clip(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        x = draw("any", (4, 5), dtype)
        bx = backend.asarray(x)
        chosen = xp.where(xp.greater(bx, 0.0), bx, xp.multiply(bx, 0.5))
        assert result_dtype(backend, chosen) == dtype
        assert_close(backend.to_numpy(chosen), np.where(x > 0, x, 0.5 * x), dtype)
        clipped = xp.clip(bx, min=-1.0, max=2.0)
        assert result_dtype(backend, clipped) == dtype
        assert_close(backend.to_numpy(clipped), np.clip(x, -1, 2), dtype)
        assert_close(backend.to_numpy(xp.clip(bx, max=0.5)), np.minimum(x, 0.5), dtype)
        assert_close(backend.to_numpy(xp.clip(bx, min=0.5)), np.maximum(x, 0.5), dtype)


REDUCTIONS = [
    ("sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims)),
    ("mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims)),
    ("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims)),
    ("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims)),
    ("prod", lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims)),
]
AXES = [None, 0, -1, (0, 2)]


@pytest.mark.parametrize("name, reference", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(backend, name, reference, axis, keepdims):
    for dtype in float_dtypes(backend):
        x = draw("positive" if name == "prod" else "any", (2, 3, 4), dtype)
        result = getattr(backend.xp, name)(backend.asarray(x), axis=axis, keepdims=keepdims)
        assert result_dtype(backend, result) == dtype
        assert_close(backend.to_numpy(result), reference(x.astype(np.float64), axis, keepdims), dtype, scale=4)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("axis", [None, 1, (0, 1)], ids=str)
def test_var_std_with_correction(backend, name, correction, axis):
    for dtype in float_dtypes(backend):
        x = draw("any", (4, 5, 3), dtype)
        result = getattr(backend.xp, name)(backend.asarray(x), axis=axis, correction=correction, keepdims=True)
        expected = getattr(np, name)(x.astype(np.float64), axis=axis, ddof=correction, keepdims=True)
        assert_close(backend.to_numpy(result), expected, dtype, scale=10)


def test_integer_sums_use_the_default_integer(backend):
    xp = backend.xp
    default_integer = backend.dtype_name(xp.__array_namespace_info__().default_dtypes()["integral"])
    x = backend.asarray(np.full((300,), 100, dtype="int8"))
    total = xp.sum(x)
    assert result_dtype(backend, total) == default_integer
    assert int(backend.to_numpy(total)) == 30000  # would wrap around in int8


def test_all_any_cumulative_sum(backend):
    xp = backend.xp
    mask = backend.asarray(np.array([[True, False], [True, True]]))
    np.testing.assert_array_equal(backend.to_numpy(xp.all(mask, axis=0)), [True, False])
    np.testing.assert_array_equal(backend.to_numpy(xp.any(mask, axis=1)), [True, True])
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype="float32")
    np.testing.assert_allclose(backend.to_numpy(xp.cumulative_sum(backend.asarray(x), axis=1)), np.cumsum(x, axis=1))


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(backend, shapes):
    for dtype in float_dtypes(backend):
        a, b = draw("any", shapes[0], dtype), draw("any", shapes[1], dtype)
        result = backend.xp.matmul(backend.asarray(a), backend.asarray(b))
        assert_close(backend.to_numpy(result), a.astype(np.float64) @ b.astype(np.float64), dtype, scale=4)


def test_tensordot_vecdot_matrix_transpose(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        a, b = draw("any", (2, 3, 4), dtype), draw("any", (3, 4, 5), dtype)
        expected = np.tensordot(a.astype(np.float64), b.astype(np.float64), axes=2)
        assert_close(
            backend.to_numpy(xp.tensordot(backend.asarray(a), backend.asarray(b), axes=2)), expected, dtype, scale=4
        )
        expected = np.tensordot(a.astype(np.float64), b.astype(np.float64), axes=([1], [0]))
        got = xp.tensordot(backend.asarray(a), backend.asarray(b), axes=([1], [0]))
        assert_close(backend.to_numpy(got), expected, dtype, scale=4)
        u, v = draw("any", (3, 4), dtype), draw("any", (4,), dtype)
        assert_close(
            backend.to_numpy(xp.vecdot(backend.asarray(u), backend.asarray(v))),
            u.astype(np.float64) @ v,
            dtype,
            scale=4,
        )
        assert_close(backend.to_numpy(xp.matrix_transpose(backend.asarray(a))), np.swapaxes(a, -1, -2), dtype)


def test_manipulation(backend):
    xp = backend.xp
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    bx = backend.asarray(x)
    check = lambda got, want: np.testing.assert_array_equal(backend.to_numpy(got), want)
    check(xp.reshape(bx, (4, 6)), x.reshape(4, 6))
    check(xp.reshape(bx, (-1,)), x.reshape(-1))
    check(xp.permute_dims(bx, (2, 0, 1)), x.transpose(2, 0, 1))
    check(xp.expand_dims(bx, axis=1), x[:, None])
    check(xp.squeeze(xp.expand_dims(bx, axis=0), axis=0), x)
    check(xp.concat([bx, bx], axis=1), np.concatenate([x, x], axis=1))
    check(xp.concat([bx, bx], axis=None), np.concatenate([x.ravel(), x.ravel()]))
    check(xp.stack([bx, bx], axis=-1), np.stack([x, x], axis=-1))
    check(xp.broadcast_to(backend.asarray(x[:, :1]), (2, 3, 4)), np.broadcast_to(x[:, :1], (2, 3, 4)))
    first, second = xp.broadcast_arrays(backend.asarray(x[:1]), backend.asarray(x[:, :, :1]))
    check(first, np.broadcast_to(x[:1], (2, 3, 4)))
    check(second, np.broadcast_to(x[:, :, :1], (2, 3, 4)))
    check(xp.flip(bx, axis=1), np.flip(x, axis=1))
    check(xp.flip(bx), np.flip(x))
    check(xp.roll(bx, 2, axis=2), np.roll(x, 2, axis=2))
    check(xp.tile(bx, (1, 2, 1)), np.tile(x, (1, 2, 1)))
    check(xp.repeat(bx, 2, axis=0), np.repeat(x, 2, axis=0))
    check(xp.moveaxis(bx, 0, -1), np.moveaxis(x, 0, -1))
    unstacked = xp.unstack(bx, axis=1)
    assert len(unstacked) == 3
    check(unstacked[1], x[:, 1])


def test_searching_and_indexing(backend):
    xp = backend.xp
    x = np.array([[3.0, 1.0, 4.0, 1.5], [5.0, 9.0, 2.0, 6.0]], dtype="float32")
    bx = backend.asarray(x)
    indexing = backend.dtype_name(xp.__array_namespace_info__().default_dtypes()["indexing"])
    for function, reference in (("argmax", np.argmax), ("argmin", np.argmin)):
        got = getattr(xp, function)(bx, axis=1)
        assert result_dtype(backend, got) == indexing
        np.testing.assert_array_equal(backend.to_numpy(got), reference(x, axis=1))
        assert int(backend.to_numpy(getattr(xp, function)(bx))) == reference(x)
    indices = backend.asarray(np.array([2, 0, 2]))
    np.testing.assert_array_equal(backend.to_numpy(xp.take(bx, indices, axis=1)), np.take(x, [2, 0, 2], axis=1))
    along = backend.asarray(np.array([[1], [3]]))
    np.testing.assert_array_equal(backend.to_numpy(xp.take_along_axis(bx, along, axis=1)), [[1.0], [6.0]])
    np.testing.assert_array_equal(backend.to_numpy(xp.sort(bx, axis=1)), np.sort(x, axis=1))
    np.testing.assert_array_equal(backend.to_numpy(xp.sort(bx, axis=1, descending=True)), -np.sort(-x, axis=1))
    np.testing.assert_array_equal(backend.to_numpy(xp.argsort(bx, axis=1)), np.argsort(x, axis=1, kind="stable"))


def test_creation(backend):
    xp = backend.xp
    check = lambda got, want: np.testing.assert_array_equal(backend.to_numpy(got), want)
    check(xp.zeros((2, 3), dtype=xp.float32), np.zeros((2, 3)))
    check(xp.ones((2,), dtype=xp.float32), np.ones(2))
    check(xp.full((2, 2), 7.0, dtype=xp.float32), np.full((2, 2), 7.0))
    check(xp.arange(5), np.arange(5))
    check(xp.arange(1, 2, 0.25, dtype=xp.float32), np.arange(1, 2, 0.25))
    np.testing.assert_allclose(
        backend.to_numpy(xp.linspace(0, 1, 5, dtype=xp.float32)), np.linspace(0, 1, 5), rtol=1e-6
    )
    check(xp.eye(3, dtype=xp.float32), np.eye(3))
    check(xp.eye(2, 3, k=1, dtype=xp.float32), np.eye(2, 3, k=1))
    x = backend.asarray(np.ones((2, 3), dtype="float32"))
    for name, value in (("zeros_like", 0.0), ("ones_like", 1.0)):
        made = getattr(xp, name)(x)
        assert result_dtype(backend, made) == "float32"
        check(made, np.full((2, 3), value))
    check(xp.full_like(x, 3.0), np.full((2, 3), 3.0))
    assert tuple(xp.empty_like(x).shape) == (2, 3)
    m = np.arange(9, dtype="float32").reshape(3, 3)
    check(xp.tril(backend.asarray(m)), np.tril(m))
    check(xp.triu(backend.asarray(m), k=1), np.triu(m, k=1))


def test_type_promotion(backend):
    xp = backend.xp
    x32 = backend.asarray(np.ones(3, dtype="float32"))
    assert result_dtype(backend, xp.add(x32, 1.5)) == "float32"  # Python scalars are weak
    assert result_dtype(backend, xp.multiply(x32, 2)) == "float32"
    assert backend.dtype_name(xp.result_type(xp.float32, xp.int8)) in ("float32", "float64")
    assert backend.dtype_name(xp.result_type(xp.int8, xp.int16)) == "int16"
    assert backend.dtype_name(xp.result_type(xp.uint8, xp.int8)) == "int16"
    assert backend.dtype_name(xp.result_type(xp.float32, 1.0)) == "float32"
    assert xp.can_cast(xp.float32, xp.float64) and not xp.can_cast(xp.float64, xp.float32)
    if backend.supports("float64"):
        x64 = backend.asarray(np.ones(3, dtype="float64"))
        assert result_dtype(backend, xp.add(x32, x64)) == "float64"
        assert backend.dtype_name(xp.result_type(xp.float32, xp.float64)) == "float64"
    assert result_dtype(backend, xp.astype(x32, xp.int32)) == "int32"
    assert xp.finfo(xp.float32).eps == pytest.approx(np.finfo(np.float32).eps)
    assert xp.iinfo(xp.int16).max == 32767
    assert xp.isdtype(xp.float32, "real floating") and not xp.isdtype(xp.int32, "real floating")


# ------------------------------------------------------------------ shape errors

FAILING_PAIRS = [((5, 3, 2), (5, 2)), ((5, 3, 2), (5, 3)), ((4, 3), (4,))]
WORKING_PAIRS = [
    ((5, 3, 2), (3, 2)),
    ((5, 3, 2), (5, 1, 2)),
    ((5, 3, 2), (1, 3, 2)),
    ((5, 3, 2), (5, 3, 1)),
    ((5, 3, 2), ()),
    ((4, 3), (3,)),
    ((4, 3), (4, 1)),
]
COMBINING = [
    "add",
    "subtract",
    "multiply",
    "divide",
    "pow",
    "maximum",
    "minimum",
    "logaddexp",
    "equal",
    "less",
    "atan2",
]


@pytest.mark.parametrize("shapes", FAILING_PAIRS, ids=str)
@pytest.mark.parametrize("name", COMBINING)
def test_shapes_that_do_not_broadcast_raise_broadcast_error(backend, name, shapes):
    a = backend.asarray(np.ones(shapes[0], dtype="float32"))
    b = backend.asarray(np.ones(shapes[1], dtype="float32"))
    with pytest.raises(portable_dl.BroadcastError) as caught:
        getattr(backend.xp, name)(a, b)
    assert str(shapes[0]) in str(caught.value) and str(shapes[1]) in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("shapes", WORKING_PAIRS, ids=str)
def test_the_classic_broadcasting_exercise(backend, shapes):
    a, b = np.arange(np.prod(shapes[0]), dtype="float32").reshape(shapes[0]), np.full(shapes[1], 2.0, dtype="float32")
    result = backend.xp.add(backend.asarray(a), backend.asarray(b))
    np.testing.assert_array_equal(backend.to_numpy(result), a + b)


def test_where_and_broadcast_to_raise_broadcast_error(backend):
    xp = backend.xp
    cond = backend.asarray(np.ones((4, 3), dtype=bool))
    with pytest.raises(portable_dl.BroadcastError):
        xp.where(cond, backend.asarray(np.ones((4,), dtype="float32")), 0.0)
    with pytest.raises(portable_dl.BroadcastError):
        xp.broadcast_to(backend.asarray(np.ones((3, 2), dtype="float32")), (3, 4))


def test_matmul_shape_errors(backend):
    xp = backend.xp
    ones = lambda shape: backend.asarray(np.ones(shape, dtype="float32"))
    with pytest.raises(portable_dl.ShapeError, match=r"inner dimensions"):
        xp.matmul(ones((3, 4)), ones((5, 2)))
    with pytest.raises(portable_dl.BroadcastError):
        xp.matmul(ones((2, 3, 4)), ones((3, 4, 5)))


def test_reshape_and_squeeze_shape_errors(backend):
    xp = backend.xp
    x = backend.asarray(np.ones((2, 3), dtype="float32"))
    with pytest.raises(portable_dl.ShapeError):
        xp.reshape(x, (4, 2))
    with pytest.raises(portable_dl.ShapeError):
        xp.squeeze(x, axis=0)


# ------------------------------------------------- random shapes, by hypothesis

shapes = st.lists(st.integers(min_value=1, max_value=3), min_size=0, max_size=4).map(tuple)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=shapes, second=shapes)
def test_random_shape_pairs_broadcast_exactly_when_numpy_says_so(backend, first, second):
    a = backend.asarray(np.ones(first, dtype="float32"))
    b = backend.asarray(np.full(second, 2.0, dtype="float32"))
    try:
        expected = np.broadcast_shapes(first, second)
    except ValueError:
        with pytest.raises(portable_dl.BroadcastError):
            backend.xp.multiply(a, b)
        return
    result = backend.xp.multiply(a, b)
    assert tuple(result.shape) == expected
    np.testing.assert_array_equal(backend.to_numpy(result), np.full(expected, 2.0))


# ------------------------------------------- the same mistake, the same message

MISTAKES = {
    "add (5,3,2)+(5,2)": lambda xp, a: xp.add(a((5, 3, 2)), a((5, 2))),
    "matmul inner": lambda xp, a: xp.matmul(a((3, 4)), a((5, 2))),
    "matmul batch": lambda xp, a: xp.matmul(a((2, 3, 4)), a((3, 4, 5))),
    "reshape": lambda xp, a: xp.reshape(a((2, 3)), (4, 2)),
    "squeeze": lambda xp, a: xp.squeeze(a((2, 3)), axis=0),
    "concat": lambda xp, a: xp.concat([a((2, 3)), a((2, 4))], axis=0),
    "stack": lambda xp, a: xp.stack([a((2, 3)), a((3, 2))]),
    "broadcast_to": lambda xp, a: xp.broadcast_to(a((3, 2)), (3, 4)),
    "tensordot": lambda xp, a: xp.tensordot(a((2, 3)), a((4, 5)), axes=1),
}


def message_of(backend, mistake):
    ones = lambda shape: backend.asarray(np.ones(shape, dtype="float32"))
    with pytest.raises(portable_dl.ShapeError) as caught:
        mistake(backend.xp, ones)
    return type(caught.value).__name__, str(caught.value)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_the_same_mistake_gives_the_same_error_and_message_on_every_backend(backend, name):
    expected = message_of(portable_dl.backend("numpy"), MISTAKES[name])
    assert message_of(backend, MISTAKES[name]) == expected
