"""The array API 2024.12 functions added to every namespace (bitwise, complex, searching, set,
utility functions, the ``linalg`` and ``fft`` extensions), and the wrong results issue 14
found, on every backend, against NumPy float64 or hand-derived values.

Inputs are chosen to tell right from plausible-wrong: asymmetric shapes, non-symmetric
matrices, shifts by the whole bit width, signed zeros and NaNs with the sign bit, ties.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from helpers import FINITE_DIFFERENCE_TOLERANCE, assert_close, central_difference, float_dtypes
from portable_dl.backends._common import surface

from portable_dl.errors import DTypeError, ShapeError


def numpy_of(backend, x) -> np.ndarray:
    return np.asarray(backend.to_numpy(x))


def dtype_name(xp, dtype) -> str:
    """The standard's name of one of ``xp``'s dtype objects."""
    for name in surface.DTYPES:
        candidate = getattr(xp, name)
        if isinstance(candidate, types.FunctionType):
            continue  # a stand-in for a dtype the framework lacks (MLX's complex128)
        if dtype == candidate:
            return name
    raise AssertionError(f"{dtype!r} is not a dtype of the namespace")


def widest_float(backend) -> str:
    return float_dtypes(backend)[-1]


def complex_dtypes(backend) -> list[str]:
    """complex64 everywhere; complex128 where the namespace has it (MLX has not)."""
    xp = backend.xp
    names = ["complex64"]
    try:
        xp.asarray(np.zeros(1, np.complex128), dtype=xp.complex128)
        names.append("complex128")
    except Exception:
        pass
    return names


def default_index_dtype(xp) -> str:
    return dtype_name(xp, xp.__array_namespace_info__().default_dtypes()["indexing"])


# ---------------------------------------------------------------------------- bitwise
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
def test_bitwise_and_or_xor_invert(backend, dtype):
    xp = backend.xp
    if not backend.supports(dtype):
        pytest.skip(f"{backend.name} has no {dtype} here")
    a = np.array([0b0101, 0b1100, 7, 0, 100], dtype=dtype)
    b = np.array([0b0011, 0b1010, 0, 7, 27], dtype=dtype)
    x1, x2 = xp.asarray(a), xp.asarray(b)
    for name, reference in (("bitwise_and", a & b), ("bitwise_or", a | b), ("bitwise_xor", a ^ b)):
        result = getattr(xp, name)(x1, x2)
        assert dtype_name(xp, result.dtype) == dtype, name
        np.testing.assert_array_equal(numpy_of(backend, result), reference, err_msg=name)
    np.testing.assert_array_equal(numpy_of(backend, xp.bitwise_invert(x1)), ~a)


def test_bitwise_functions_on_booleans(backend):
    xp = backend.xp
    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    x1, x2 = xp.asarray(a), xp.asarray(b)
    np.testing.assert_array_equal(numpy_of(backend, xp.bitwise_and(x1, x2)), [True, False, False, False])
    np.testing.assert_array_equal(numpy_of(backend, xp.bitwise_or(x1, x2)), [True, True, True, False])
    np.testing.assert_array_equal(numpy_of(backend, xp.bitwise_xor(x1, x2)), [False, True, True, False])
    np.testing.assert_array_equal(numpy_of(backend, xp.bitwise_invert(x1)), [False, False, True, True])


@pytest.mark.parametrize("dtype, bits", [("int8", 8), ("int32", 32), ("int64", 64), ("uint8", 8)])
def test_shifts_by_the_bit_width_or_more(backend, dtype, bits):
    """A shift by the width or more empties the integer (C leaves it undefined, and MLX and
    TensorFlow kernels shifted by the amount modulo the width: 1 << 32 gave 1)."""
    xp = backend.xp
    if not backend.supports(dtype):
        pytest.skip(f"{backend.name} has no {dtype} here")
    signed = dtype.startswith("int")
    values = np.array([1, 5, 3, 6, 1], dtype=dtype)
    shifts = np.array([bits, bits + 3, 2, 1, bits - 1], dtype=dtype)
    top_bit = -(2 ** (bits - 1)) if signed else 2 ** (bits - 1)
    left = xp.bitwise_left_shift(xp.asarray(values), xp.asarray(shifts))
    assert dtype_name(xp, left.dtype) == dtype
    np.testing.assert_array_equal(numpy_of(backend, left), np.array([0, 0, 12, 12, top_bit], dtype=dtype))
    right = xp.bitwise_right_shift(xp.asarray(np.array([100, 7, 100, 1, 9], dtype=dtype)), xp.asarray(shifts))
    np.testing.assert_array_equal(numpy_of(backend, right), np.array([0, 0, 25, 0, 0], dtype=dtype))
    if signed:
        negative = xp.asarray(np.array([-1, -50, -50, -8], dtype=dtype))
        amounts = xp.asarray(np.array([bits, bits + 1, 1, 2], dtype=dtype))
        np.testing.assert_array_equal(numpy_of(backend, xp.bitwise_right_shift(negative, amounts)), [-1, -1, -25, -2])


# ---------------------------------------------------------------------------- complex numbers
def test_conj_real_imag_of_complex_arrays(backend):
    xp = backend.xp
    for name in complex_dtypes(backend):
        values = np.array([[1 + 2j, -3 - 0.5j, 0 - 1j]], dtype=name)
        x = xp.asarray(values)
        assert dtype_name(xp, x.dtype) == name
        real_name = {"complex64": "float32", "complex128": "float64"}[name]
        for function, reference in ((xp.real, values.real), (xp.imag, values.imag)):
            result = function(x)
            assert dtype_name(xp, result.dtype) == real_name
            np.testing.assert_array_equal(numpy_of(backend, result), reference)
        conjugate = xp.conj(x)
        assert dtype_name(xp, conjugate.dtype) == name
        np.testing.assert_array_equal(numpy_of(backend, conjugate), np.conj(values))


def test_conj_real_imag_of_real_arrays(backend):
    xp = backend.xp
    values = np.array([1.5, -2.0, 0.0], dtype="float32")
    x = xp.asarray(values)
    np.testing.assert_array_equal(numpy_of(backend, xp.conj(x)), values)
    real = xp.real(x)
    assert dtype_name(xp, real.dtype) == "float32"
    np.testing.assert_array_equal(numpy_of(backend, real), values)


def test_complex_arithmetic_keeps_complex_dtypes(backend):
    xp = backend.xp
    a = np.array([1 + 2j, -3 - 0.5j], dtype="complex64")
    b = np.array([0.5 - 1j, 2 + 2j], dtype="complex64")
    x1, x2 = xp.asarray(a), xp.asarray(b)
    small = np.array([1e-4 + 2e-4j, -3 + 0.5j], dtype="complex64")  # expm1 must not cancel near 0
    results = {
        "multiply": (xp.multiply(x1, x2), a * b),
        "divide": (xp.divide(x1, x2), a / b),
        "exp": (xp.exp(x1), np.exp(a)),
        "sqrt": (xp.sqrt(x1), np.sqrt(a)),
        "expm1": (xp.expm1(xp.asarray(small)), np.expm1(small.astype(np.complex128))),
    }
    for name, (result, reference) in results.items():
        assert dtype_name(xp, result.dtype) == "complex64", name
        np.testing.assert_allclose(numpy_of(backend, result), reference.astype(np.complex128), rtol=1e-5, err_msg=name)
    magnitude = xp.abs(x1)
    assert dtype_name(xp, magnitude.dtype) == "float32"
    np.testing.assert_allclose(numpy_of(backend, magnitude), np.abs(a), rtol=1e-6)
    assert xp.isdtype(x1.dtype, "complex floating") and xp.isdtype(x1.dtype, "numeric")
    assert not xp.isdtype(x1.dtype, "real floating")
    with_nan = xp.asarray(np.array([complex(np.nan, 1), 1j], "complex64"))
    np.testing.assert_array_equal(numpy_of(backend, xp.isnan(with_nan)), [True, False])


# ---------------------------------------------------------------------------- floating-point bits
def test_signbit_reads_the_sign_bit(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        values = np.array([-0.0, 0.0, np.copysign(np.nan, -1.0), np.nan, -np.inf, 2.5, -1e-30], dtype=dtype)
        result = xp.signbit(xp.asarray(values))
        assert dtype_name(xp, result.dtype) == "bool"
        np.testing.assert_array_equal(numpy_of(backend, result), [True, False, True, False, True, False, True])


def test_nextafter_steps_one_ulp(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        a = np.array([1.0, 1.0, 0.0, 0.0, -1.0, 2.0, -0.0, np.inf, 3.0], dtype=dtype)
        b = np.array([2.0, 0.0, 1.0, -1.0, -2.0, 2.0, 0.0, 0.0, np.nan], dtype=dtype)
        result = xp.nextafter(xp.asarray(a), xp.asarray(b))
        assert dtype_name(xp, result.dtype) == dtype
        expected = np.nextafter(a, b)
        bits = f"int{expected.itemsize * 8}"
        np.testing.assert_array_equal(
            numpy_of(backend, result).view(bits)[:-1], expected.view(bits)[:-1], err_msg=dtype
        )
        assert np.isnan(numpy_of(backend, result)[-1])


# ---------------------------------------------------------------------------- searching, counting
def test_nonzero_gives_one_index_array_per_axis(backend):
    xp = backend.xp
    values = np.array([[0, 3, 0, 1], [4, 0, 5, 0], [0, 0, 0, 0]], dtype="int32")
    result = xp.nonzero(xp.asarray(values))
    assert isinstance(result, tuple) and len(result) == 2
    for axis, expected in enumerate(np.nonzero(values)):
        assert dtype_name(xp, result[axis].dtype) == default_index_dtype(xp)
        np.testing.assert_array_equal(numpy_of(backend, result[axis]), expected)
    floats = xp.nonzero(xp.asarray(np.array([-0.0, np.nan, 0.0, 2.0], dtype="float32")))
    np.testing.assert_array_equal(numpy_of(backend, floats[0]), [1, 3])  # -0.0 is zero, NaN is not


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(backend, side):
    xp = backend.xp
    dtype = widest_float(backend)
    sorted_values = np.array([1.0, 2.0, 2.0, 3.0, 7.5], dtype=dtype)
    queries = np.array([[2.0, 0.5, 9.0], [3.0, 7.5, 2.5]], dtype=dtype)
    result = xp.searchsorted(xp.asarray(sorted_values), xp.asarray(queries), side=side)
    assert dtype_name(xp, result.dtype) == default_index_dtype(xp)
    np.testing.assert_array_equal(numpy_of(backend, result), np.searchsorted(sorted_values, queries, side=side))
    unsorted = np.array([3.0, 1.0, 7.5, 2.0, 2.0], dtype=dtype)
    sorter = np.argsort(unsorted, kind="stable")
    with_sorter = xp.searchsorted(xp.asarray(unsorted), xp.asarray(queries), side=side, sorter=xp.asarray(sorter))
    np.testing.assert_array_equal(
        numpy_of(backend, with_sorter), np.searchsorted(unsorted, queries, side=side, sorter=sorter)
    )


def test_count_nonzero(backend):
    xp = backend.xp
    values = np.array([[0, 1, 2], [0, 0, -3]], dtype="int16")
    x = xp.asarray(values)
    total = xp.count_nonzero(x)
    assert dtype_name(xp, total.dtype) == default_index_dtype(xp)
    assert int(numpy_of(backend, total)) == 3
    np.testing.assert_array_equal(numpy_of(backend, xp.count_nonzero(x, axis=0)), [0, 1, 2])
    np.testing.assert_array_equal(numpy_of(backend, xp.count_nonzero(x, axis=(0, 1), keepdims=True)), [[3]])
    floats = xp.asarray(np.array([-0.0, np.nan, 0.0, 1e-30], dtype="float32"))
    assert int(numpy_of(backend, xp.count_nonzero(floats))) == 2


# ---------------------------------------------------------------------------- set functions
def check_unique(backend, values):
    """Each unique_* result is consistent with x, whatever order the values come in (the
    standard leaves it open): values[inverse] == x, x.flat[indices] == values, counts add up,
    and each index is a value's first occurrence."""
    xp = backend.xp
    x = xp.asarray(values)
    flat = values.reshape(-1)
    expected = np.unique(flat)
    all_ = xp.unique_all(x)
    assert set(all_._fields) == {"values", "indices", "inverse_indices", "counts"}
    got_values = numpy_of(backend, all_.values)
    np.testing.assert_array_equal(np.sort(got_values), expected)
    indices = numpy_of(backend, all_.indices)
    inverse = numpy_of(backend, all_.inverse_indices)
    counts = numpy_of(backend, all_.counts)
    assert inverse.shape == values.shape
    np.testing.assert_array_equal(flat[indices], got_values)
    np.testing.assert_array_equal(got_values[inverse], values)
    np.testing.assert_array_equal(counts, [np.sum(flat == v) for v in got_values])
    for index in indices:
        assert not np.any(flat[:index] == flat[index])
    for part in (all_.indices, all_.inverse_indices, all_.counts):
        assert dtype_name(xp, part.dtype) == default_index_dtype(xp)
    counted = xp.unique_counts(x)
    counted_values = numpy_of(backend, counted.values)
    np.testing.assert_array_equal(numpy_of(backend, counted.counts), [np.sum(flat == v) for v in counted_values])
    inverted = xp.unique_inverse(x)
    np.testing.assert_array_equal(
        numpy_of(backend, inverted.values)[numpy_of(backend, inverted.inverse_indices)], values
    )
    np.testing.assert_array_equal(np.sort(numpy_of(backend, xp.unique_values(x))), expected)


def test_unique_functions_on_integers(backend):
    check_unique(backend, np.array([[3, 1, 3], [2, 1, 7]], dtype="int32"))


def test_unique_functions_on_floats(backend):
    check_unique(backend, np.array([2.5, -1.0, 2.5, 0.25, -1.0, -1.0], dtype="float32"))


# ---------------------------------------------------------------------------- creation, utility
def test_from_dlpack_of_a_numpy_array(backend):
    xp = backend.xp
    values = np.array([[1.5, -2.0, 3.25]], dtype="float32")
    result = xp.from_dlpack(values)
    assert dtype_name(xp, result.dtype) == "float32"
    np.testing.assert_array_equal(numpy_of(backend, result), values)


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid(backend, indexing):
    xp = backend.xp
    a, b, c = np.array([1, 2], "int32"), np.array([10, 20, 30], "int32"), np.array([7, 8, 9, 6], "int32")
    result = xp.meshgrid(xp.asarray(a), xp.asarray(b), xp.asarray(c), indexing=indexing)
    assert isinstance(result, list) and len(result) == 3
    for got, expected in zip(result, np.meshgrid(a, b, c, indexing=indexing)):
        assert tuple(got.shape) == expected.shape
        np.testing.assert_array_equal(numpy_of(backend, got), expected)


def test_cumulative_prod(backend):
    xp = backend.xp
    dtype = widest_float(backend)
    values = np.array([[1.5, -2.0, 3.0, 0.5], [2.0, 0.0, -1.0, 4.0]], dtype=dtype)
    x = xp.asarray(values)
    assert_close(numpy_of(backend, xp.cumulative_prod(x, axis=1)), np.cumprod(values, axis=1), dtype)
    with_one = xp.cumulative_prod(x, axis=0, include_initial=True)
    assert_close(numpy_of(backend, with_one), np.concatenate([np.ones((1, 4)), np.cumprod(values, axis=0)]), dtype)
    small = xp.cumulative_prod(xp.asarray(np.array([10, 20, 3], dtype="int8")), dtype=xp.int16)
    assert dtype_name(xp, small.dtype) == "int16"
    np.testing.assert_array_equal(numpy_of(backend, small), [10, 200, 600])


def test_diff(backend):
    xp = backend.xp
    values = np.array([[1, 4, 9, 16, 25], [2, 3, 5, 7, 11]], dtype="int32")
    x = xp.asarray(values)
    np.testing.assert_array_equal(numpy_of(backend, xp.diff(x)), np.diff(values))
    np.testing.assert_array_equal(numpy_of(backend, xp.diff(x, axis=0)), np.diff(values, axis=0))
    np.testing.assert_array_equal(numpy_of(backend, xp.diff(x, n=2)), np.diff(values, n=2))
    prepend, append = np.array([[0], [-1]], dtype="int32"), np.array([[100], [50]], dtype="int32")
    joined = xp.diff(x, axis=1, prepend=xp.asarray(prepend), append=xp.asarray(append))
    np.testing.assert_array_equal(numpy_of(backend, joined), np.diff(values, axis=1, prepend=prepend, append=append))


# ---------------------------------------------------------------------------- wrong results of issue 14
def test_integer_matmul_checks_shapes_and_keeps_the_dtype(backend):
    xp = backend.xp
    with pytest.raises(ShapeError):
        xp.matmul(xp.asarray(np.ones((2, 1), "int32")), xp.asarray(np.ones((3, 2), "int32")))
    a, b = np.array([[1, 2, -3], [3, 4, 5]]), np.array([[5, 6], [7, -8], [1, 2]])
    for dtype in [name for name in ("int8", "int16", "int32", "int64", "uint8") if backend.supports(name)]:
        left, right = (np.abs(a), np.abs(b)) if dtype == "uint8" else (a, b)
        result = xp.matmul(xp.asarray(left.astype(dtype)), xp.asarray(right.astype(dtype)))
        assert dtype_name(xp, result.dtype) == dtype
        np.testing.assert_array_equal(numpy_of(backend, result), left @ right, err_msg=dtype)


def test_integer_tensordot(backend):
    xp = backend.xp
    a = np.arange(24, dtype="int32").reshape(2, 3, 4) - 7
    b = np.arange(12, dtype="int32").reshape(4, 3) + 1
    x1, x2 = xp.asarray(a), xp.asarray(b)
    result = xp.tensordot(x1, x2, axes=1)
    assert dtype_name(xp, result.dtype) == "int32"
    np.testing.assert_array_equal(numpy_of(backend, result), np.tensordot(a, b, axes=1))
    np.testing.assert_array_equal(
        numpy_of(backend, xp.tensordot(x1, x2, axes=([1, 2], [1, 0]))), np.tensordot(a, b, axes=([1, 2], [1, 0]))
    )
    with pytest.raises(ShapeError):
        xp.tensordot(x1, x2, axes=([1], [0]))  # sizes 3 and 4


def test_vecdot_keeps_small_integer_dtypes(backend):
    xp = backend.xp
    for dtype in ("int8", "uint8", "int16"):
        a, b = np.array([[3, 4, 1], [1, 2, 0]], dtype), np.array([5, 6, 2], dtype)
        result = xp.vecdot(xp.asarray(a), xp.asarray(b))
        assert dtype_name(xp, result.dtype) == dtype
        np.testing.assert_array_equal(numpy_of(backend, result), [41, 17])


def test_vecdot_conjugates_its_first_argument(backend):
    xp = backend.xp
    a = np.array([1 + 2j, 3 - 1j], "complex64")
    b = np.array([2 - 1j, 1j], "complex64")
    np.testing.assert_allclose(numpy_of(backend, xp.vecdot(xp.asarray(a), xp.asarray(b))), np.vdot(a, b), rtol=1e-6)


def test_sums_and_products_honour_dtype(backend):
    xp = backend.xp
    x = xp.asarray(np.array([100, 100, 100], dtype="int8"))
    total = xp.sum(x, dtype=xp.int16)
    assert dtype_name(xp, total.dtype) == "int16" and int(numpy_of(backend, total)) == 300
    product = xp.prod(xp.asarray(np.array([10, 20], "int8")), dtype=xp.int16)
    assert dtype_name(xp, product.dtype) == "int16" and int(numpy_of(backend, product)) == 200
    running = xp.cumulative_sum(x, dtype=xp.int16)
    assert dtype_name(xp, running.dtype) == "int16"
    np.testing.assert_array_equal(numpy_of(backend, running), [100, 200, 300])
    default_integer = dtype_name(xp, xp.__array_namespace_info__().default_dtypes()["integral"])
    assert dtype_name(xp, xp.sum(x).dtype) == default_integer


def test_squeeze_of_no_axes_removes_nothing(backend):
    xp = backend.xp
    x = xp.asarray(np.zeros((1, 3, 1), "float32"))
    assert tuple(xp.squeeze(x, axis=()).shape) == (1, 3, 1)
    assert tuple(xp.squeeze(x, axis=(0, 2)).shape) == (3,)


def test_expand_dims_takes_a_positional_axis(backend):
    xp = backend.xp
    x = xp.asarray(np.zeros((2, 3), "float32"))
    assert tuple(xp.expand_dims(x, 1).shape) == (2, 1, 3)
    assert tuple(xp.expand_dims(x, axis=-1).shape) == (2, 3, 1)
    with pytest.raises(IndexError):
        xp.expand_dims(x, axis=3)


def test_info_and_finfo_types(backend):
    xp = backend.xp
    info = xp.__array_namespace_info__()
    assert isinstance(info.devices(), list)
    assert type(xp.finfo(xp.float32).eps) is float
    assert xp.finfo(xp.complex64).bits == 32
    assert xp.can_cast(xp.float32, xp.complex64)


# ---------------------------------------------------------------------------- linalg
RNG = np.random.default_rng(14)
MATRIX = np.array([[4.0, -2.0, 1.0], [3.0, 6.0, -4.0], [2.0, 1.0, 8.0]])  # not symmetric, well conditioned
SPD = MATRIX @ MATRIX.T + 3 * np.eye(3)
TALL = np.array([[1.0, 2.0], [3.0, -4.0], [5.0, 6.5]])


def test_linalg_det_slogdet_inv_solve(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        a = xp.asarray(MATRIX.astype(dtype))
        assert_close(numpy_of(backend, xp.linalg.det(a)), np.linalg.det(MATRIX), dtype, scale=10)
        sign, logabsdet = xp.linalg.slogdet(xp.asarray(-MATRIX.astype(dtype)))
        assert_close(numpy_of(backend, sign), -1.0, dtype)
        assert_close(numpy_of(backend, logabsdet), np.log(abs(np.linalg.det(MATRIX))), dtype, scale=10)
        assert_close(numpy_of(backend, xp.linalg.inv(a)), np.linalg.inv(MATRIX), dtype, scale=10)
        b = np.array([1.0, -2.0, 0.5])
        solved = xp.linalg.solve(a, xp.asarray(b.astype(dtype)))
        assert_close(numpy_of(backend, solved), np.linalg.solve(MATRIX, b), dtype, scale=10)
        batch = np.stack([MATRIX, SPD])
        rhs = RNG.standard_normal((3, 2))
        solved = xp.linalg.solve(xp.asarray(batch.astype(dtype)), xp.asarray(rhs.astype(dtype)))  # rhs broadcasts
        assert_close(numpy_of(backend, solved), np.linalg.solve(batch, np.stack([rhs, rhs])), dtype, scale=50)


def test_linalg_factorizations(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        scale = 100
        lower = numpy_of(backend, xp.linalg.cholesky(xp.asarray(SPD.astype(dtype))))
        assert_close(lower, np.linalg.cholesky(SPD), dtype, scale=scale)
        upper = numpy_of(backend, xp.linalg.cholesky(xp.asarray(SPD.astype(dtype)), upper=True))
        assert_close(upper, np.linalg.cholesky(SPD).T, dtype, scale=scale)
        q, r = xp.linalg.qr(xp.asarray(TALL.astype(dtype)))
        q, r = numpy_of(backend, q), numpy_of(backend, r)
        assert q.shape == (3, 2) and r.shape == (2, 2)
        assert_close(q @ r, TALL, dtype, scale=scale)
        assert_close(q.T @ q, np.eye(2), dtype, scale=scale)
        assert_close(np.tril(r, -1), np.zeros((2, 2)), dtype)
        u, s, vh = xp.linalg.svd(xp.asarray(TALL.astype(dtype)), full_matrices=False)
        u, s, vh = numpy_of(backend, u), numpy_of(backend, s), numpy_of(backend, vh)
        assert u.shape == (3, 2) and s.shape == (2,) and vh.shape == (2, 2)
        singular_values = np.linalg.svd(TALL, compute_uv=False)
        assert_close(s, singular_values, dtype, scale=scale)
        assert_close((u * s) @ vh, TALL, dtype, scale=scale)
        assert_close(
            numpy_of(backend, xp.linalg.svdvals(xp.asarray(TALL.astype(dtype)))), singular_values, dtype, scale=scale
        )
        values, vectors = xp.linalg.eigh(xp.asarray(SPD.astype(dtype)))
        values, vectors = numpy_of(backend, values), numpy_of(backend, vectors)
        assert_close(values, np.linalg.eigvalsh(SPD), dtype, scale=scale)
        assert_close(SPD @ vectors, vectors * values, dtype, scale=scale * 10)
        eigenvalues = numpy_of(backend, xp.linalg.eigvalsh(xp.asarray(SPD.astype(dtype))))
        assert_close(eigenvalues, np.linalg.eigvalsh(SPD), dtype, scale=scale)


def test_linalg_pinv_rank_power(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        assert_close(
            numpy_of(backend, xp.linalg.pinv(xp.asarray(TALL.astype(dtype)))), np.linalg.pinv(TALL), dtype, scale=100
        )
        deficient = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
        assert int(numpy_of(backend, xp.linalg.matrix_rank(xp.asarray(deficient.astype(dtype))))) == 2
        a = xp.asarray(MATRIX.astype(dtype))
        assert_close(
            numpy_of(backend, xp.linalg.matrix_power(a, 3)), np.linalg.matrix_power(MATRIX, 3), dtype, scale=100
        )
        assert_close(
            numpy_of(backend, xp.linalg.matrix_power(a, -2)), np.linalg.matrix_power(MATRIX, -2), dtype, scale=100
        )
        assert_close(numpy_of(backend, xp.linalg.matrix_power(a, 0)), np.eye(3), dtype)


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf])
def test_linalg_matrix_norm(backend, ord):
    xp = backend.xp
    dtype = widest_float(backend)
    stack = np.stack([MATRIX, SPD - 20])
    result = xp.linalg.matrix_norm(xp.asarray(stack.astype(dtype)), ord=ord)
    assert_close(numpy_of(backend, result), np.linalg.norm(stack, ord=ord, axis=(-2, -1)), dtype, scale=100)
    kept = xp.linalg.matrix_norm(xp.asarray(stack.astype(dtype)), ord=ord, keepdims=True)
    assert tuple(kept.shape) == (2, 1, 1)


@pytest.mark.parametrize("ord", [2, 1, 0, 3, -1, np.inf, -np.inf])
def test_linalg_vector_norm(backend, ord):
    xp = backend.xp
    dtype = widest_float(backend)
    values = np.array([[[3.0, -4.0, 0.5], [1.0, 2.0, -2.0]], [[0.5, -0.25, 6.0], [-7.0, 1.0, 1.0]]])
    if ord == 0:
        values[0, 0, 2] = values[1, 1, 0] = 0.0  # zeros to leave out of the count
    x = xp.asarray(values.astype(dtype))
    flat = values.reshape(-1)
    assert_close(numpy_of(backend, xp.linalg.vector_norm(x, ord=ord)), np.linalg.norm(flat, ord=ord), dtype, scale=10)
    along_one = xp.linalg.vector_norm(x, axis=1, ord=ord)
    assert_close(numpy_of(backend, along_one), np.linalg.norm(values, ord=ord, axis=1), dtype, scale=10)
    over_two = xp.linalg.vector_norm(x, axis=(0, 2), keepdims=True, ord=ord)
    expected = np.linalg.norm(np.moveaxis(values, 1, 0).reshape(2, -1), ord=ord, axis=1).reshape(1, 2, 1)
    assert_close(numpy_of(backend, over_two), expected, dtype, scale=10)


def test_linalg_trace_diagonal_outer_cross(backend):
    xp = backend.xp
    dtype = widest_float(backend)
    stack = np.arange(24.0).reshape(2, 3, 4) - 5
    x = xp.asarray(stack.astype(dtype))
    for offset in (0, 1, -2, 3, 5, 2**31, -(2**31)):  # far offsets: empty diagonals, not 32-bit overflow
        near = max(-3, min(offset, 4))  # the same (empty) diagonal, in NumPy's int range
        np.testing.assert_array_equal(
            numpy_of(backend, xp.linalg.diagonal(x, offset=offset)),
            np.diagonal(stack, offset=near, axis1=-2, axis2=-1),
            err_msg=str(offset),
        )
        np.testing.assert_array_equal(
            numpy_of(backend, xp.linalg.trace(x, offset=offset)),
            np.trace(stack, offset=near, axis1=-2, axis2=-1),
            err_msg=str(offset),
        )
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0])
    outer = xp.linalg.outer(xp.asarray(a.astype(dtype)), xp.asarray(b.astype(dtype)))
    np.testing.assert_array_equal(numpy_of(backend, outer), np.outer(a, b))
    u = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    v = np.array([4.0, -5.0, 6.0])
    crossed = xp.linalg.cross(xp.asarray(u.astype(dtype)), xp.asarray(v.astype(dtype)))
    np.testing.assert_allclose(numpy_of(backend, crossed), np.cross(u, v))
    columns = xp.linalg.cross(xp.asarray(u.T.astype(dtype)), xp.asarray(np.stack([v, v]).T.astype(dtype)), axis=0)
    np.testing.assert_allclose(numpy_of(backend, columns), np.cross(u.T, np.stack([v, v]).T, axis=0))
    for name in ("matmul", "matrix_transpose", "tensordot", "vecdot"):
        assert callable(getattr(xp.linalg, name))


# ---------------------------------------------------------------------------- fft
SIGNAL = np.array([[1.0, -2.0, 0.5, 3.0, 0.0, 1.5, -1.0], [0.25, 2.0, -3.0, 1.0, 4.0, -0.5, 2.0]])


def assert_spectrum(actual, expected, what=""):
    """float32/complex64 FFTs of length <= 16 agree with float64 to ~1e-5 of the spectrum's scale."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual.astype(np.complex128), expected, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
def test_fft_one_dimensional(backend, norm):
    xp = backend.xp
    fft = xp.fft
    signal = SIGNAL + 1j * SIGNAL[::-1]
    x = xp.asarray(signal.astype("complex64"))
    assert_spectrum(numpy_of(backend, fft.fft(x, norm=norm)), np.fft.fft(signal, norm=norm), "fft")
    assert_spectrum(
        numpy_of(backend, fft.fft(x, n=9, axis=0, norm=norm)), np.fft.fft(signal, n=9, axis=0, norm=norm), "fft n=9"
    )
    assert_spectrum(numpy_of(backend, fft.ifft(x, n=5, norm=norm)), np.fft.ifft(signal, n=5, norm=norm), "ifft n=5")
    real = xp.asarray(SIGNAL.astype("float32"))
    spectrum = fft.rfft(real, norm=norm)
    assert dtype_name(xp, spectrum.dtype) == "complex64"
    assert_spectrum(numpy_of(backend, spectrum), np.fft.rfft(SIGNAL, norm=norm), "rfft")
    half = np.fft.rfft(SIGNAL, n=8)
    halves = xp.asarray(half.astype("complex64"))
    back = fft.irfft(halves, norm=norm)
    assert dtype_name(xp, back.dtype) == "float32"
    assert_spectrum(numpy_of(backend, back), np.fft.irfft(half, norm=norm), "irfft")
    assert_spectrum(
        numpy_of(backend, fft.irfft(halves, n=7, norm=norm)), np.fft.irfft(half, n=7, norm=norm), "irfft n=7"
    )
    assert_spectrum(numpy_of(backend, fft.hfft(halves, n=7, norm=norm)), np.fft.hfft(half, n=7, norm=norm), "hfft")
    assert_spectrum(numpy_of(backend, fft.ihfft(real, norm=norm)), np.fft.ihfft(SIGNAL, norm=norm), "ihfft")


def test_fft_n_dimensional(backend):
    xp = backend.xp
    fft = xp.fft
    cube = np.arange(24.0).reshape(2, 3, 4) ** 1.5 - 8
    spectrum = np.fft.fftn(cube)
    x = xp.asarray(cube.astype("complex64"))
    assert_spectrum(numpy_of(backend, fft.fftn(x)), spectrum, "fftn")
    assert_spectrum(
        numpy_of(backend, fft.fftn(x, s=(4, 5), axes=(0, 2), norm="ortho")),
        np.fft.fftn(cube, s=(4, 5), axes=(0, 2), norm="ortho"),
        "fftn s axes",
    )
    assert_spectrum(
        numpy_of(backend, fft.ifftn(xp.asarray(spectrum.astype("complex64")))), cube.astype(np.complex128), "ifftn"
    )
    real = xp.asarray(cube.astype("float32"))
    assert_spectrum(numpy_of(backend, fft.rfftn(real, axes=(1, 2))), np.fft.rfftn(cube, axes=(1, 2)), "rfftn")
    half = np.fft.rfftn(cube)
    restored = fft.irfftn(xp.asarray(half.astype("complex64")), s=(2, 3, 4))
    assert_spectrum(numpy_of(backend, restored), cube.astype(np.complex128), "irfftn")


def test_fft_frequencies_and_shifts(backend):
    xp = backend.xp
    fft = xp.fft
    for n in (7, 8):
        assert_close(numpy_of(backend, fft.fftfreq(n, d=0.25)), np.fft.fftfreq(n, d=0.25), "float32")
        assert_close(numpy_of(backend, fft.rfftfreq(n, d=0.25)), np.fft.rfftfreq(n, d=0.25), "float32")
    default_float = dtype_name(xp, xp.__array_namespace_info__().default_dtypes()["real floating"])
    assert dtype_name(xp, fft.fftfreq(4).dtype) == default_float
    grid = np.arange(15).reshape(3, 5)
    x = xp.asarray(grid.astype("int32"))
    np.testing.assert_array_equal(numpy_of(backend, fft.fftshift(x)), np.fft.fftshift(grid))
    np.testing.assert_array_equal(numpy_of(backend, fft.fftshift(x, axes=1)), np.fft.fftshift(grid, axes=1))
    np.testing.assert_array_equal(numpy_of(backend, fft.ifftshift(x, axes=(0,))), np.fft.ifftshift(grid, axes=(0,)))


# ---------------------------------------------------------------------------- gradients
def gradient_check(backend, f_backend, f_numpy, point: np.ndarray, dtype: str, what: str) -> None:
    """``backend.value_and_grad(f_backend)`` at ``point`` against central differences of the
    float64 NumPy reference ``f_numpy`` (float32 gets a tolerance 1000 times wider)."""
    _, grad = backend.value_and_grad(f_backend)(backend.asarray(point.astype(dtype), dtype))
    expected = central_difference(f_numpy, point)
    tolerance = FINITE_DIFFERENCE_TOLERANCE * 10 * (1.0 if dtype == "float64" else 1e3)
    np.testing.assert_allclose(
        numpy_of(backend, grad),
        expected,
        rtol=tolerance,
        atol=tolerance * max(1.0, float(np.max(np.abs(expected)))),
        err_msg=what,
    )


WEIGHTS = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 1.0, 0.5]])


@pytest.mark.parametrize("name", ["det", "inv", "solve", "slogdet", "matrix_power"])
def test_linalg_gradients(backend, name):
    xp = backend.xp
    dtype = widest_float(backend)
    rhs = np.array([1.0, -2.0, 0.5])

    def weighted(a):
        return xp.asarray(a.astype(dtype))

    functions = {
        "det": (lambda a: xp.linalg.det(a), np.linalg.det),
        "inv": (lambda a: xp.sum(xp.linalg.inv(a) * weighted(WEIGHTS)), lambda a: np.sum(np.linalg.inv(a) * WEIGHTS)),
        "solve": (
            lambda a: xp.sum(xp.linalg.solve(a, weighted(rhs)) * weighted(rhs[::-1].copy())),
            lambda a: np.sum(np.linalg.solve(a, rhs) * rhs[::-1]),
        ),
        "slogdet": (lambda a: xp.linalg.slogdet(a)[1], lambda a: np.linalg.slogdet(a)[1]),
        "matrix_power": (
            lambda a: xp.sum(xp.linalg.matrix_power(a, 2) * weighted(WEIGHTS)),
            lambda a: np.sum(np.linalg.matrix_power(a, 2) * WEIGHTS),
        ),
    }
    f_backend, f_numpy = functions[name]
    gradient_check(backend, f_backend, f_numpy, MATRIX / 4, dtype, name)


def test_gradients_of_cumulative_prod_diff_and_norm(backend):
    xp = backend.xp
    dtype = widest_float(backend)
    point = np.array([1.5, -0.5, 2.0, 0.75, -1.25])
    weights = np.array([1.0, -2.0, 0.5, 3.0, 0.25])
    w = xp.asarray(weights.astype(dtype))
    gradient_check(
        backend,
        lambda x: xp.sum(xp.cumulative_prod(x) * w),
        lambda x: np.sum(np.cumprod(x) * weights),
        point,
        dtype,
        "cumulative_prod",
    )
    w3 = xp.asarray(weights[:3].astype(dtype))
    gradient_check(
        backend,
        lambda x: xp.sum(xp.diff(x, n=2) * w3),
        lambda x: np.sum(np.diff(x, n=2) * weights[:3]),
        point,
        dtype,
        "diff",
    )
    gradient_check(
        backend,
        lambda x: xp.linalg.vector_norm(x * w),
        lambda x: np.linalg.norm(x * weights),
        point,
        dtype,
        "vector_norm",
    )


def test_gradient_of_fft(backend):
    xp = backend.xp
    point = np.array([1.5, -0.5, 2.0, 0.75, -1.25, 0.5])
    weights = np.array([1.0, -2.0, 0.5, 3.0])

    def f_backend(x):
        spectrum = xp.fft.rfft(x)
        return xp.sum(xp.real(spectrum) * xp.asarray(weights.astype("float32"))) + xp.sum(xp.imag(spectrum) ** 2)

    def f_numpy(x):
        spectrum = np.fft.rfft(x)
        return np.sum(spectrum.real * weights) + np.sum(spectrum.imag**2)

    gradient_check(backend, f_backend, f_numpy, point, "float32", "rfft")


def test_linalg_of_complex_matrices(backend):
    """complex64 det, slogdet, inv, solve, svdvals, pinv, matrix_rank and qr (MLX computes
    them through the real embedding [[X, -Y], [Y, X]], an LU elimination and Householder QR)."""
    xp = backend.xp
    a = (MATRIX + 1j * np.array([[0.5, 1.0, -2.0], [0.0, -1.5, 1.0], [2.0, 0.25, 0.5]])).astype("complex64")
    tall = (TALL - 1j * TALL[::-1]).astype("complex64")
    reference_a, reference_tall = a.astype(np.complex128), tall.astype(np.complex128)

    def close(actual, expected, what):
        expected = np.asarray(expected)
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(numpy_of(backend, actual), expected, rtol=1e-4, atol=1e-5 * scale, err_msg=what)

    x = xp.asarray(a)
    close(xp.linalg.det(x), np.linalg.det(reference_a), "det")
    sign, logabsdet = xp.linalg.slogdet(x)
    expected_sign, expected_log = np.linalg.slogdet(reference_a)
    close(sign, expected_sign, "slogdet sign")
    close(logabsdet, expected_log, "slogdet logabsdet")
    close(xp.linalg.inv(x), np.linalg.inv(reference_a), "inv")
    rhs = np.array([1 - 1j, 2j, -0.5 + 0.25j], dtype="complex64")
    close(xp.linalg.solve(x, xp.asarray(rhs)), np.linalg.solve(reference_a, rhs.astype(np.complex128)), "solve")
    close(xp.linalg.svdvals(xp.asarray(tall)), np.linalg.svd(reference_tall, compute_uv=False), "svdvals")
    close(xp.linalg.pinv(xp.asarray(tall)), np.linalg.pinv(reference_tall), "pinv")
    assert int(numpy_of(backend, xp.linalg.matrix_rank(xp.asarray(tall)))) == 2
    for mode, q_shape in (("reduced", (3, 2)), ("complete", (3, 3))):
        q, r = xp.linalg.qr(xp.asarray(tall), mode=mode)
        q, r = numpy_of(backend, q), numpy_of(backend, r)
        assert q.shape == q_shape and r.shape == (q_shape[1], 2), mode
        np.testing.assert_allclose(q @ r, reference_tall, atol=1e-5 * 10, err_msg=mode)
        np.testing.assert_allclose(np.conj(q.T) @ q, np.eye(q_shape[1]), atol=1e-5, err_msg=mode)
        assert np.all(np.tril(r, -1) == 0), mode
    u, s, vh = (numpy_of(backend, part) for part in xp.linalg.svd(xp.asarray(tall), full_matrices=True))
    assert u.shape == (3, 3) and s.shape == (2,) and vh.shape == (2, 2)
    np.testing.assert_allclose((u[:, :2] * s) @ vh, reference_tall, atol=1e-4)
    np.testing.assert_allclose(np.conj(u.T) @ u, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(s, np.linalg.svd(reference_tall, compute_uv=False), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_pow_of_unsigned_integers_wraps_like_numpy(backend, dtype):
    """TensorFlow's Pow kernel has no unsigned types; every backend must still give the
    unsigned result, wrapped modulo 2**bits as NumPy's (250**3 overflows uint8 and uint16)."""
    if not backend.supports(dtype):
        pytest.skip(f"{backend.name} does not compute in {dtype}")
    x = np.array([3, 250, 7, 2], dtype=dtype)
    y = np.array([2, 3, 5, 7], dtype=dtype)
    with np.errstate(over="ignore"):
        expected = np.power(x, y)
    result = backend.xp.pow(backend.asarray(x), backend.asarray(y))
    assert dtype_name(backend.xp, result.dtype) == dtype
    np.testing.assert_array_equal(numpy_of(backend, result), expected)


# ---------------------------------------------------- element-moving functions of every dtype
@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "uint32", "uint64", "float32"])
def test_tile_and_repeat_move_every_dtype(backend, dtype):
    """tile and repeat only move elements, so they take every dtype (TensorFlow's Tile kernel,
    also behind its repeat, has no uint16). 65535 and 300 tell a wrong bit pattern from a cast."""
    xp = backend.xp
    values = np.array([[1, 65535, 2], [300, 7, 0]]).astype(dtype)
    try:
        x = xp.asarray(values, dtype=getattr(xp, dtype))
    except DTypeError as error:  # a dtype the framework lacks here (JAX's uint64 without x64)
        pytest.skip(str(error))
    results = {
        "tile": (xp.tile(x, (2, 1, 2)), np.tile(values, (2, 1, 2))),
        "repeat": (xp.repeat(x, 2, axis=0), np.repeat(values, 2, axis=0)),
        "repeat per element": (
            xp.repeat(x, xp.asarray(np.array([1, 3, 1])), axis=1),
            np.repeat(values, [1, 3, 1], axis=1),
        ),
        "repeat flattened": (xp.repeat(x, 2), np.repeat(values, 2)),
    }
    for name, (result, expected) in results.items():
        assert dtype_name(xp, result.dtype) == dtype, name
        np.testing.assert_array_equal(numpy_of(backend, result), expected, err_msg=name)


def test_cross_of_complex_vectors(backend):
    """linalg.cross takes every numeric dtype, complex too (TensorFlow's Cross kernel has no
    complex): the bilinear product, no conjugation, checked against NumPy in complex128."""
    xp = backend.xp
    a = np.array([[1 + 2j, 3 - 1j, 0.5j], [2, 1j, -1]])
    b = np.array([[0.5 - 1j, 2j, 1], [1, 1, 1 + 1j]])
    for dtype in complex_dtypes(backend):
        result = xp.linalg.cross(xp.asarray(a.astype(dtype)), xp.asarray(b.astype(dtype)))
        assert dtype_name(xp, result.dtype) == dtype
        np.testing.assert_allclose(numpy_of(backend, result), np.cross(a, b), rtol=1e-6, err_msg=dtype)
        along_first = xp.linalg.cross(xp.asarray(a.T.astype(dtype)), xp.asarray(b.T.astype(dtype)), axis=0)
        np.testing.assert_allclose(numpy_of(backend, along_first), np.cross(a, b).T, rtol=1e-6, err_msg=dtype)


def test_signed_zeros_keep_their_sign_whichever_was_made_first(backend):
    """TensorFlow caches eager tensors made from Python scalars by value, and -0.0 == 0.0: a
    ``full(..., -0.0)`` made after a ``full(..., 0.0)`` came back +0.0, and the reverse (an
    order-dependent wrong sign). Every way a Python signed zero enters an array keeps its sign."""
    xp = backend.xp
    x = xp.asarray([1.0, 2.0])
    makers = {
        "full": lambda v: xp.full((2,), v),
        "full_like": lambda v: xp.full_like(x, v),
        "asarray": lambda v: xp.asarray(v),
        "where": lambda v: xp.where(xp.greater(x, 0), v, x),
        "multiply": lambda v: xp.multiply(x, v),
        "clip": lambda v: xp.clip(xp.asarray([-1.0]), min=v),
    }
    for name, make in makers.items():
        for value in (0.0, -0.0, 0.0):  # whichever sign a cache holds first, one of these shows it
            result = np.asarray(backend.to_numpy(make(value)))
            assert np.all(result == 0) and np.all(np.signbit(result) == np.signbit(value)), (name, value)


@pytest.mark.parametrize("name", ["log", "log2", "log10", "sign"])
def test_complex_log_and_sign_far_from_the_unit_circle(backend, name):
    """|x| from 1e-21 to 3e37 in complex64, where squaring a part overflows or underflows float32:
    TensorFlow's vectorized kernels gave NaN + ...j (log) and 0 (sign). Reference: NumPy in
    complex128, each part within float32 rounding."""
    from portable_dl.conformance.standard_functions import FAR_COMPLEX

    xp = backend.xp
    values = FAR_COMPLEX.astype(np.complex64)
    result = np.asarray(backend.to_numpy(getattr(xp, name)(xp.asarray(values))))
    wide = values.astype(np.complex128)
    expected = wide / np.abs(wide) if name == "sign" else getattr(np, name)(wide)
    assert result.dtype == np.complex64
    np.testing.assert_allclose(result.real, expected.real, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(result.imag, expected.imag, rtol=2e-6, atol=1e-7)
