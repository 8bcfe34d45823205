"""float16 and bfloat16 where the TensorFlow and MLX namespaces needed work of their own, held on
every backend (tests/test_namespace_half.py has the rest).

What those two frameworks lack, and what each test checks the namespace does about it:

- Most of ``linalg`` has no half-float kernel (TensorFlow's CPU: Cholesky, Svd, MatrixDeterminant,
  MatrixSolve, SelfAdjointEigV2, and for bfloat16 MatrixInverse and Qr too, while XLA has float16
  ones; MLX: every factorization). A function either computes the right answer in the half dtype
  (checked here on a non-symmetric matrix, which tells an inverse from its transpose) or raises
  DTypeError naming *itself* and the dtype, never an inner function (``matrix_rank`` calls
  ``svdvals``), never the framework's error, also inside ``backend.compile``.
- TensorFlow has no half NextAfter kernel, and its Bitcast needs an integer of the float's width
  (``signbit``, ``copysign`` and ``remainder``'s zero sign read the bits).
- MLX hands no bfloat16 buffer to NumPy: ``to_numpy``, ``nonzero`` and ``unique_*`` read bfloat16
  some other way, exactly; without ml_dtypes NumPy has no bfloat16 and ``to_numpy`` says what to
  install. NumPy sorts ml_dtypes' bfloat16 wrongly around a NaN, so ``unique_*`` cannot hand it
  the bfloat16 array either.
- TensorFlow's sort compares with ``<``, which a NaN fails both ways: the values around a NaN
  stayed unsorted, in every float dtype. MLX's copysign missed the sign bit of a NaN.
- (TensorFlow and MLX kept running sums, ``cumulative_sum``, in the half dtype, where they stall:
  tests/test_namespace_half.py's long sums hold that.)

References are NumPy float64 on the (exactly representable) half inputs, or enumerations of every
half value; tolerances are counted in each dtype's epsilon, written out below by hand.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from portable_dl.errors import DTypeError

ml_dtypes = pytest.importorskip("ml_dtypes", reason="NumPy's bfloat16 comes from ml_dtypes")

HALF = ("float16", "bfloat16")
#: Machine epsilon, 2**-(stored mantissa bits): float16 stores 10, bfloat16 7.
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
NUMPY_HALF = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
NUMPY_FLOAT = {**NUMPY_HALF, "float32": np.float32, "float64": np.float64}


def half_xp(backend, dtype: str):
    """The namespace, or a skip where the backend cannot compute in ``dtype`` here."""
    if not backend.supports(dtype):
        pytest.skip(f"{backend.name} has no {dtype} here")
    return backend.xp


def half_array(backend, values, dtype: str):
    """``values`` rounded to ``dtype`` in NumPy and moved to the backend unchanged."""
    return backend.asarray(np.asarray(values, dtype=np.float64).astype(NUMPY_FLOAT[dtype]))


def as_float64(backend, x) -> np.ndarray:
    """A backend array's values in float64 (every half value is exactly a float64)."""
    return np.asarray(backend.to_numpy(x)).astype(np.float64)


def bits(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).view(np.uint16)


def assert_dtype(backend, x, dtype: str, what: str = "") -> None:
    assert backend.dtype_name(x.dtype) == dtype, f"{what}: {backend.name} gave {x.dtype}, not {dtype}"


def assert_within_eps(actual: np.ndarray, expected: np.ndarray, dtype: str, count: float, what: str) -> None:
    """Within ``count`` epsilons of ``dtype``, relative to the array's largest magnitude."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    tolerance = count * EPS[dtype] * scale
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance, err_msg=what)


# ------------------------------------------------------------------------ linalg
#: A well-conditioned (cond 2.2), non-symmetric matrix: a transposed inverse is 38% off.
GENERAL = np.array([[4.0, 1.0, 0.5], [-1.0, 3.0, 0.25], [0.5, -0.75, 2.0]])
#: Symmetric positive definite, for cholesky and eigvalsh.
SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.25], [0.5, 0.25, 2.0]])
RIGHT_HAND = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])

#: name: (call on the namespace, NumPy float64 reference, whether the result keeps the half dtype)
LINALG_CASES = {
    "cholesky": (lambda xp, a, s, b: xp.linalg.cholesky(s), lambda: np.linalg.cholesky(SPD), True),
    "det": (lambda xp, a, s, b: xp.linalg.det(a), lambda: np.linalg.det(GENERAL), True),
    "slogdet": (lambda xp, a, s, b: xp.linalg.slogdet(a)[1], lambda: np.linalg.slogdet(GENERAL)[1], True),
    "eigvalsh": (lambda xp, a, s, b: xp.linalg.eigvalsh(s), lambda: np.linalg.eigvalsh(SPD), True),
    "inv": (lambda xp, a, s, b: xp.linalg.inv(a), lambda: np.linalg.inv(GENERAL), True),
    "solve": (lambda xp, a, s, b: xp.linalg.solve(a, b), lambda: np.linalg.solve(GENERAL, RIGHT_HAND), True),
    # R is unique up to the signs of its rows: compared by magnitude.
    "qr": (lambda xp, a, s, b: xp.abs(xp.linalg.qr(a)[1]), lambda: np.abs(np.linalg.qr(GENERAL)[1]), True),
    "svdvals": (lambda xp, a, s, b: xp.linalg.svdvals(a), lambda: np.linalg.svd(GENERAL, compute_uv=False), True),
    "pinv": (lambda xp, a, s, b: xp.linalg.pinv(a), lambda: np.linalg.inv(GENERAL), True),
    "matrix_rank": (lambda xp, a, s, b: xp.linalg.matrix_rank(a), lambda: np.array(3.0), False),
    "matrix_power": (
        lambda xp, a, s, b: xp.linalg.matrix_power(a, -2),
        lambda: np.linalg.matrix_power(GENERAL, -2),
        True,
    ),
    "matrix_norm": (lambda xp, a, s, b: xp.linalg.matrix_norm(a, ord=2), lambda: np.linalg.norm(GENERAL, 2), True),
}


def check_linalg_case(backend, name: str, dtype: str, call) -> None:
    """``call()`` gives the right answer in ``dtype`` or raises DTypeError naming ``linalg.<name>``."""
    compute, reference, keeps_dtype = LINALG_CASES[name]
    try:
        result = call()
    except DTypeError as error:
        message = str(error)
        named = message.startswith((f"linalg.{name}:", f"{name}:"))
        assert named, f"{backend.name}: the error names another function than linalg.{name}: {message}"
        assert dtype in message, f"{backend.name}: the error does not name {dtype}: {message}"
        return
    if keeps_dtype:
        assert_dtype(backend, result, dtype, f"linalg.{name}")
    # n = 3 and condition 2.2: a half-precision factorization is within 16 eps of the largest entry.
    assert_within_eps(as_float64(backend, result), reference(), dtype, 16, f"{backend.name} linalg.{name} {dtype}")


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", sorted(LINALG_CASES))
def test_linalg_in_half_floats_computes_or_names_the_function(backend, name, dtype):
    xp = half_xp(backend, dtype)
    a, s, b = (half_array(backend, m, dtype) for m in (GENERAL, SPD, RIGHT_HAND))
    compute = LINALG_CASES[name][0]
    check_linalg_case(backend, name, dtype, lambda: compute(xp, a, s, b))


@pytest.mark.parametrize("dtype", HALF)
def test_linalg_in_half_floats_inside_compile(backend, dtype):
    """Traced, TensorFlow refuses bfloat16 Cholesky with a TypeError of its own, and XLA has a
    float16 Cholesky that the eager CPU lacks: either way a right answer or the same DTypeError."""
    xp = half_xp(backend, dtype)
    cholesky = backend.compile(lambda m: xp.linalg.cholesky(m))
    spd = half_array(backend, SPD, dtype)
    check_linalg_case(backend, "cholesky", dtype, lambda: cholesky(spd))


# ------------------------------------------------------------------ floating-point bits
def every_value(dtype: str) -> np.ndarray:
    """Every non-NaN value of ``dtype`` (both infinities included), ascending, in float64."""
    with np.errstate(invalid="ignore"):  # ml_dtypes warns when it casts a NaN
        patterns = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(NUMPY_HALF[dtype]).astype(np.float64)
    return np.unique(patterns[~np.isnan(patterns)])


@pytest.mark.parametrize("dtype", HALF)
def test_nextafter_of_half_floats_is_the_neighbouring_value(backend, dtype):
    """TensorFlow has no half NextAfter kernel. The reference is independent of any bit stepping:
    the neighbour of x in the sorted list of every value of the dtype."""
    xp = half_xp(backend, dtype)
    table = every_value(dtype)
    largest, tiny = table[-2], table[np.searchsorted(table, 0.0) + 1]
    smallest_normal = {"float16": 2.0**-14, "bfloat16": 2.0**-126}[dtype]
    x1 = np.array([1.0, 1.0, 0.0, -0.0, largest, -2.0, np.nan, 3.0, tiny, -tiny, smallest_normal, 0.3])
    x2 = np.array([2.0, 0.0, 1.0, -1.0, np.inf, -3.0, 1.0, 3.0, 0.0, 1.0, 0.0, -np.inf])
    x1, x2 = (x.astype(NUMPY_HALF[dtype]).astype(np.float64) for x in (x1, x2))
    expected = np.where(
        x1 < x2,
        table[np.minimum(np.searchsorted(table, x1, side="right"), table.size - 1)],
        table[np.maximum(np.searchsorted(table, x1, side="left") - 1, 0)],
    )
    expected = np.where(x1 == x2, x2, expected)
    expected[np.isnan(x1) | np.isnan(x2)] = np.nan
    result = xp.nextafter(half_array(backend, x1, dtype), half_array(backend, x2, dtype))
    assert_dtype(backend, result, dtype, "nextafter")
    np.testing.assert_array_equal(as_float64(backend, result), expected)


@pytest.mark.parametrize("dtype", HALF + ("float32", "float64"))
def test_signbit_copysign_and_remainder_read_the_sign_bit(backend, dtype):
    """TensorFlow read the sign bit through a bitcast to int32 or int64, which a 16-bit float
    cannot take; MLX's copysign compared ``x2 < 0``, which a NaN with the sign bit fails in every
    float dtype. NaNs with the sign bit and signed zeros tell a bit test from a comparison."""
    xp = half_xp(backend, dtype)
    numpy_dtype = NUMPY_FLOAT[dtype]
    negative_nan = np.copysign(np.nan, -1.0)
    values = np.array([-0.0, 0.0, -np.inf, np.nan, -1e-7, 2.5, negative_nan]).astype(numpy_dtype)
    negative = np.array([True, False, True, False, True, False, True])
    assert np.array_equal(np.signbit(values.astype(np.float64)), negative)  # the casts kept every sign
    x = backend.asarray(values)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(xp.signbit(x))), negative)

    magnitudes = half_array(backend, [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5], dtype)
    copied = xp.copysign(magnitudes, x)
    assert_dtype(backend, copied, dtype, "copysign")
    np.testing.assert_array_equal(as_float64(backend, copied), np.where(negative, -1.5, 1.5))

    dividends, divisors = half_array(backend, [-0.0, -3.0, 3.0, 5.5], dtype), half_array(backend, [2, 2, -2, 2], dtype)
    remainder = xp.remainder(dividends, divisors)
    assert_dtype(backend, remainder, dtype, "remainder")
    result = as_float64(backend, remainder)
    np.testing.assert_array_equal(result, [0.0, 1.0, -1.0, 1.5])
    assert not np.signbit(result[0]), "remainder(-0.0, 2.0) is +0.0 (the sign of the divisor)"


# ------------------------------------------------------------------ sorting
def nan_ordered(values: np.ndarray, descending: bool) -> np.ndarray:
    """The stable order of ``values`` with a NaN larger than +inf: NaNs last ascending, first
    descending, each group in its original order (NumPy's, PyTorch's, JAX's and MLX's order)."""
    nan = np.isnan(values)
    positions = np.flatnonzero(~nan)
    ordered = positions[np.argsort(-values[~nan] if descending else values[~nan], kind="stable")]
    return np.concatenate([np.flatnonzero(nan), ordered] if descending else [ordered, np.flatnonzero(nan)])


@pytest.mark.parametrize("dtype", HALF + ("float32", "float64"))
def test_sort_with_nans_sorts_the_other_values(backend, dtype):
    """TensorFlow's sort compares with ``<``, which a NaN fails both ways: it left the values
    around a NaN unsorted, in every float dtype. Ties (two infinities, -0.0 and +0.0) keep their
    order; the NaNs go last, or first in descending order."""
    xp = half_xp(backend, dtype)
    values = np.array([1.5, np.nan, -2.0, 0.5, -0.0, np.inf, np.nan, -np.inf, 0.0, np.inf, -2.0])
    x = half_array(backend, values, dtype)
    for descending in (False, True):
        expected = nan_ordered(values, descending)
        order = np.asarray(backend.to_numpy(xp.argsort(x, descending=descending)))
        np.testing.assert_array_equal(order, expected, err_msg=f"argsort, descending={descending}")
        result = xp.sort(x, descending=descending)
        assert_dtype(backend, result, dtype, "sort")
        np.testing.assert_array_equal(as_float64(backend, result), values[expected])
    matrix = half_array(backend, values[:9].reshape(3, 3), dtype)
    by_columns = as_float64(backend, xp.sort(matrix, axis=0))
    np.testing.assert_array_equal(by_columns, np.sort(values[:9].reshape(3, 3), axis=0))


# ------------------------------------------------------------------ values read through NumPy
def test_unique_and_nonzero_of_bfloat16(backend):
    """MLX hands no bfloat16 buffer to NumPy, where these functions count: the values come back
    exactly, +0 and -0 are one value, each NaN is its own."""
    xp = half_xp(backend, "bfloat16")
    values = np.array([1.5, -0.0, 0.0, np.nan, 1.5, -2.0, np.nan, 0.1, 3.0e38]).astype(ml_dtypes.bfloat16)
    x = backend.asarray(values)
    exact = values.astype(np.float32)  # every bfloat16 is exactly a float32
    unique, first, inverse, counts = np.unique(
        exact, return_index=True, return_inverse=True, return_counts=True, equal_nan=False
    )

    result = xp.unique_all(x)
    assert_dtype(backend, result.values, "bfloat16", "unique_all values")
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(result.values)).astype(np.float32), unique)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(result.counts)), counts)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(result.inverse_indices)), inverse.reshape(values.shape))
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(result.indices)), first)
    np.testing.assert_array_equal(
        np.asarray(backend.to_numpy(xp.unique_values(x))).astype(np.float32), np.unique(exact, equal_nan=False)
    )
    (indices,) = xp.nonzero(x)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(indices)), np.flatnonzero(exact))


def test_to_numpy_of_bfloat16_without_ml_dtypes(backend, monkeypatch):
    """Without ml_dtypes NumPy has no bfloat16: a backend whose framework hands its own (TensorFlow)
    still gives one; the others say what to install, with the one documented error."""
    half_xp(backend, "bfloat16")
    values = np.array([1.5, -0.0, 0.1]).astype(ml_dtypes.bfloat16)
    x = backend.asarray(values)
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import ml_dtypes now raises ImportError
    try:
        result = np.asarray(backend.to_numpy(x))
    except DTypeError as error:
        assert "pip install ml_dtypes" in str(error)
        return
    assert result.dtype.name == "bfloat16"
    np.testing.assert_array_equal(bits(result), bits(values))


# ------------------------------------------------------------------ creation from Python floats
@pytest.mark.parametrize("dtype", HALF)
def test_python_floats_round_once_into_half_floats(backend, dtype):
    """Python floats go straight to the half dtype (subnormals, overflow to inf and the sign of
    zero included): MLX's asarray reaches bfloat16 without ml_dtypes, TensorFlow's fills through
    the namespace's one scalar path, whose cache cannot turn -0.0 into +0.0."""
    xp = half_xp(backend, dtype)
    numpy_dtype = NUMPY_HALF[dtype]
    # 65520 and 3.4e38 lie beyond the largest value's rounding boundary (overflow to inf); 1e-7 is
    # a float16 subnormal and 1e-40 a bfloat16 one.
    values = [0.1, 1 / 3, -0.0, 65519.0, 65520.0, 1e-7, 1e-40, 3.3e38, 3.4e38, -2.5]
    with np.errstate(over="ignore"):  # the overflow to inf is the point, not a mistake
        expected = np.array(values, dtype=np.float64).astype(numpy_dtype)
        result = xp.asarray(values, dtype=getattr(xp, dtype))
    assert_dtype(backend, result, dtype, "asarray")
    np.testing.assert_array_equal(bits(backend.to_numpy(result)), bits(expected))

    filled = xp.full((2,), -0.0, dtype=getattr(xp, dtype))
    like = xp.full_like(filled, 0.1)
    np.testing.assert_array_equal(bits(backend.to_numpy(filled)), bits(np.full(2, -0.0, dtype=numpy_dtype)))
    np.testing.assert_array_equal(bits(backend.to_numpy(like)), bits(np.full(2, 0.1).astype(numpy_dtype)))
    chosen = xp.where(xp.asarray([True, False]), like, -0.0)
    assert_dtype(backend, chosen, dtype, "where with a Python float")
    assert np.signbit(np.asarray(backend.to_numpy(chosen)).astype(np.float32)[1]), "where(..., -0.0) kept -0.0"
