"""The functions array API 2024.12 added to the namespaces, against hand-derived values,
NumPy float64 and finite differences, on every backend.

The cross-backend agreement of the same functions is the conformance suite's job
(``conformance/standard_functions.py``); these tests pin the numbers themselves, so that the
NumPy reference cannot be wrong in the same way as the backends it judges.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, central_difference, float_dtypes
from portable_dl.backends._common.generic import accumulation_dtype

from portable_dl.errors import DTypeError, ShapeError


def values(backend, x) -> np.ndarray:
    return np.asarray(backend.to_numpy(x))


def default_integer(backend) -> str:
    return backend.dtype_name(backend.xp.__array_namespace_info__().default_dtypes()["integral"])


# --------------------------------------------------------------------- integers and bits
def test_bitwise_functions_on_signed_integers(backend):
    xp = backend.xp
    a = backend.asarray(np.array([-7, -1, 0, 3, 12], dtype=np.int32))
    b = backend.asarray(np.array([3, 5, 6, 1, 10], dtype=np.int32))
    s = backend.asarray(np.array([0, 1, 2, 3, 4], dtype=np.int32))
    # Two's complement by hand: -7 = ...11111001, -1 = ...1111.
    np.testing.assert_array_equal(values(backend, xp.bitwise_and(a, b)), [1, 5, 0, 1, 8])
    np.testing.assert_array_equal(values(backend, xp.bitwise_or(a, b)), [-5, -1, 6, 3, 14])
    np.testing.assert_array_equal(values(backend, xp.bitwise_xor(a, b)), [-6, -6, 6, 2, 6])
    np.testing.assert_array_equal(values(backend, xp.bitwise_invert(a)), [6, 0, -1, -4, -13])
    np.testing.assert_array_equal(values(backend, xp.bitwise_left_shift(a, s)), [-7, -2, 0, 24, 192])
    # Right shifts of negative numbers are arithmetic (floor division by 2**s).
    np.testing.assert_array_equal(values(backend, xp.bitwise_right_shift(a, s)), [-7, -1, 0, 0, 0])
    assert backend.dtype_name(xp.bitwise_and(a, b).dtype) == "int32"


def test_bitwise_invert_of_uint8_and_bool(backend):
    xp = backend.xp
    np.testing.assert_array_equal(
        values(backend, xp.bitwise_invert(backend.asarray(np.array([0, 1, 200], dtype=np.uint8)))), [255, 254, 55]
    )
    flags = backend.asarray(np.array([True, False]))
    np.testing.assert_array_equal(values(backend, xp.bitwise_invert(flags)), [False, True])


def test_signbit_sees_the_sign_of_zero(backend):
    x = backend.asarray(np.array([0.0, -0.0, 2.5, -2.5, np.inf, -np.inf]), "float32")
    np.testing.assert_array_equal(values(backend, backend.xp.signbit(x)), [False, True, False, True, False, True])


def test_nextafter_steps_one_ulp(backend):
    for dtype in float_dtypes(backend):
        x1 = backend.asarray(np.array([1.0, 1.0, 0.0]), dtype)
        x2 = backend.asarray(np.array([2.0, 0.0, 1.0]), dtype)
        eps = float(np.finfo(dtype).eps)
        tiny = float(np.finfo(dtype).smallest_subnormal)
        expected = [1.0 + eps, 1.0 - eps / 2, tiny]
        result = values(backend, backend.xp.nextafter(x1, x2)).astype(np.float64)
        # XLA on CPU flushes subnormals to zero: the step from 0 is platform-defined there.
        np.testing.assert_array_equal(result[:2], expected[:2])
        assert result[2] in (tiny, 0.0) and (result[2] == tiny or backend.name == "jax")


# --------------------------------------------------------------- searching and sets
def test_nonzero_count_nonzero_searchsorted(backend):
    xp = backend.xp
    x = backend.asarray(np.array([[0.0, 2.0, 0.0], [-1.0, 0.0, 3.0]]), "float32")
    rows, cols = xp.nonzero(x)
    assert (values(backend, rows).tolist(), values(backend, cols).tolist()) == ([0, 1, 1], [1, 0, 2])
    assert values(backend, xp.count_nonzero(x, axis=1)).tolist() == [1, 2]
    assert values(backend, xp.count_nonzero(x, axis=0, keepdims=True)).tolist() == [[1, 1, 1]]
    assert int(values(backend, xp.count_nonzero(x))) == 3
    sorted_ = backend.asarray(np.array([1.0, 2.0, 2.0, 2.0, 5.0]), "float32")
    probes = backend.asarray(np.array([2.0, 0.0, 9.0, 3.0]), "float32")
    assert values(backend, xp.searchsorted(sorted_, probes)).tolist() == [1, 0, 5, 4]
    assert values(backend, xp.searchsorted(sorted_, probes, side="right")).tolist() == [4, 0, 5, 4]


def test_unique_functions(backend):
    xp = backend.xp
    x = backend.asarray(np.array([[3.0, 1.0, 3.0], [2.0, 1.0, 3.0]]), "float32")
    result = xp.unique_all(x)
    order = np.argsort(values(backend, result.values))  # the standard leaves the order open
    assert values(backend, result.values)[order].tolist() == [1.0, 2.0, 3.0]
    assert values(backend, result.indices)[order].tolist() == [1, 3, 0]  # first occurrences, flattened
    assert values(backend, result.counts)[order].tolist() == [2, 1, 3]
    assert tuple(result.inverse_indices.shape) == (2, 3)
    rebuilt = values(backend, result.values)[values(backend, result.inverse_indices)]
    np.testing.assert_array_equal(rebuilt, values(backend, x))
    counts = xp.unique_counts(x)
    assert sorted(zip(values(backend, counts.values).tolist(), values(backend, counts.counts).tolist())) == [
        (1.0, 2),
        (2.0, 1),
        (3.0, 3),
    ]
    inverse = xp.unique_inverse(x)
    np.testing.assert_array_equal(
        values(backend, inverse.values)[values(backend, inverse.inverse_indices)], values(backend, x)
    )
    assert sorted(values(backend, xp.unique_values(x)).tolist()) == [1.0, 2.0, 3.0]


# -------------------------------------------------------------- structure and creation
def test_cumulative_prod_values_and_initial(backend):
    xp = backend.xp
    x = backend.asarray(np.array([[2.0, 3.0, 0.5], [1.0, -2.0, 4.0]]), "float32")
    np.testing.assert_array_equal(values(backend, xp.cumulative_prod(x, axis=1)), [[2, 6, 3], [1, -2, -8]])
    np.testing.assert_array_equal(
        values(backend, xp.cumulative_prod(x, axis=0, include_initial=True)), [[1, 1, 1], [2, 3, 0.5], [2, -6, 2]]
    )


def test_cumulative_prod_gradient_is_exact_at_a_zero(backend):
    # d/dx sum(cumprod(x)) for x = (2, 0, 3): cumprod = (2, 0, 0); by hand
    # d/dx0 = 1 + x1 + x1 x2 = 1, d/dx1 = x0 + x0 x2 = 8, d/dx2 = x0 x1 = 0.
    xp = backend.xp
    for dtype in float_dtypes(backend):
        grad = backend.grad(lambda x: xp.sum(xp.cumulative_prod(x)))(backend.asarray(np.array([2.0, 0.0, 3.0]), dtype))
        np.testing.assert_array_equal(values(backend, grad), [1.0, 8.0, 0.0])


def test_diff_against_numpy(backend):
    xp = backend.xp
    data = np.array([[1.0, 4.0, 9.0, 16.0], [2.0, -1.0, 0.5, 0.25]])
    x = backend.asarray(data, "float32")
    edge = backend.asarray(np.array([[10.0], [20.0]]), "float32")
    np.testing.assert_array_equal(values(backend, xp.diff(x)), [[3, 5, 7], [-3, 1.5, -0.25]])
    np.testing.assert_array_equal(values(backend, xp.diff(x, n=2)), [[2, 2], [4.5, -1.75]])
    np.testing.assert_array_equal(values(backend, xp.diff(x, axis=0)), [[1, -5, -8.5, -15.75]])
    np.testing.assert_array_equal(
        values(backend, xp.diff(x, prepend=edge, append=edge)),
        np.diff(data, prepend=[[10.0], [20.0]], append=[[10.0], [20.0]]),
    )


def test_meshgrid_returns_a_list_in_both_indexings(backend):
    xp = backend.xp
    u, v = backend.asarray(np.array([1.0, 2.0, 3.0]), "float32"), backend.asarray(np.array([5.0, 6.0]), "float32")
    xy, ij = xp.meshgrid(u, v), xp.meshgrid(u, v, indexing="ij")
    assert isinstance(xy, list) and isinstance(ij, list)
    np.testing.assert_array_equal(values(backend, xy[0]), [[1, 2, 3], [1, 2, 3]])
    np.testing.assert_array_equal(values(backend, ij[1]), [[5, 6], [5, 6], [5, 6]])


def test_expand_dims_takes_a_positional_axis_and_checks_its_range(backend):
    x = backend.asarray(np.ones((2, 3)), "float32")
    assert tuple(backend.xp.expand_dims(x, 1).shape) == (2, 1, 3)
    assert tuple(backend.xp.expand_dims(x, axis=-1).shape) == (2, 3, 1)
    with pytest.raises(IndexError):
        backend.xp.expand_dims(x, axis=3)


def test_devices_is_a_list(backend):
    devices = backend.xp.__array_namespace_info__().devices()
    assert isinstance(devices, list) and devices


# ------------------------------------------------------------------------ dtype rules
@pytest.mark.parametrize(
    "name, default, expected",
    [
        ("int8", "int64", "int64"),
        ("bool", "int64", "int64"),
        ("int64", "int64", None),
        ("uint8", "int64", "uint64"),
        ("uint32", "int32", None),
        ("int16", "int32", "int32"),
        ("uint8", "int32", "uint32"),
        ("float32", "int64", None),
    ],
)
def test_accumulation_dtype_follows_the_standard(name, default, expected):
    assert accumulation_dtype(name, default) == expected


def test_sum_prod_cumulative_sum_widen_small_integers_and_honour_dtype(backend):
    xp = backend.xp
    x = backend.asarray(np.array([100, 100, 100], dtype=np.int8))
    integer = default_integer(backend)
    assert backend.dtype_name(xp.sum(x).dtype) == integer and int(values(backend, xp.sum(x))) == 300
    assert backend.dtype_name(xp.prod(x).dtype) == integer and int(values(backend, xp.prod(x))) == 1_000_000
    assert backend.dtype_name(xp.cumulative_sum(x).dtype) == integer
    assert values(backend, xp.cumulative_sum(x)).tolist() == [100, 200, 300]
    # With dtype= the accumulation is in that dtype: 300 wraps to 44 in int8.
    assert backend.dtype_name(xp.sum(x, dtype=xp.int8).dtype) == "int8"
    assert int(values(backend, xp.sum(x, dtype=xp.int8))) == 300 - 256


def test_vecdot_keeps_the_promoted_dtype_and_checks_the_axis(backend):
    xp = backend.xp
    a = backend.asarray(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    b = backend.asarray(np.array([7, 8, 9], dtype=np.uint8))
    result = xp.vecdot(a, b)
    assert backend.dtype_name(result.dtype) == "uint8"
    assert values(backend, result).tolist() == [50, 122]
    with pytest.raises(ShapeError):
        xp.vecdot(backend.asarray(np.ones((2, 3)), "float32"), backend.asarray(np.ones((2, 1)), "float32"))


def test_finfo_and_iinfo_give_python_numbers_and_the_dtype(backend):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        info = xp.finfo(backend.dtype(dtype))
        assert type(info.eps) is float and info.eps == float(np.finfo(dtype).eps)
        assert type(info.max) is float and info.max == float(np.finfo(dtype).max)
        assert info.dtype == backend.dtype(dtype) and info.bits == np.finfo(dtype).bits
        assert xp.can_cast(backend.dtype(dtype), backend.dtype(dtype))
    info = xp.iinfo(xp.int16)
    assert (type(info.max), info.max, info.min, info.dtype == xp.int16) == (int, 32767, -32768, True)


def test_std_with_a_fractional_correction(backend):
    data = np.array([1.0, 2.0, 4.0, 8.0])
    for dtype in float_dtypes(backend):
        result = backend.xp.std(backend.asarray(data, dtype), correction=0.5)
        expected = math.sqrt(np.sum((data - data.mean()) ** 2) / (4 - 0.5))
        assert_close(values(backend, result), expected, dtype, what="std correction=0.5")


# ---------------------------------------------------------------------- extensions
def test_linalg_against_numpy_float64(backend):
    rng = np.random.default_rng(3)
    m = rng.uniform(-1, 1, (2, 3, 3)) + 3 * np.eye(3)
    b = rng.uniform(-1, 1, (3, 4))
    spd = b @ b.T + 3 * np.eye(3)
    la = backend.xp.linalg
    for dtype in float_dtypes(backend):
        M, S = backend.asarray(m, dtype), backend.asarray(spd, dtype)
        scale = 30.0
        assert_close(values(backend, la.det(M)), np.linalg.det(m), dtype, scale, "det")
        assert_close(values(backend, la.inv(M)), np.linalg.inv(m), dtype, scale, "inv")
        assert_close(values(backend, la.cholesky(S)), np.linalg.cholesky(spd), dtype, scale, "cholesky")
        assert_close(
            values(backend, la.cholesky(S, upper=True)), np.linalg.cholesky(spd).T, dtype, scale, "cholesky upper"
        )
        assert_close(values(backend, la.eigh(S).eigenvalues), np.linalg.eigvalsh(spd), dtype, scale, "eigh")
        assert_close(values(backend, la.svdvals(M)), np.linalg.svd(m, compute_uv=False), dtype, scale, "svdvals")
        sign, logabsdet = la.slogdet(M)
        assert_close(
            values(backend, sign) * np.exp(values(backend, logabsdet)), np.linalg.det(m), dtype, scale, "slogdet"
        )
        assert_close(
            values(backend, la.trace(M, offset=1)), np.trace(m, offset=1, axis1=-2, axis2=-1), dtype, scale, "trace"
        )
        assert_close(
            values(backend, la.diagonal(M, offset=-1)),
            np.diagonal(m, offset=-1, axis1=-2, axis2=-1),
            dtype,
            1,
            "diagonal",
        )
        assert_close(values(backend, la.matrix_power(M, 3)), np.linalg.matrix_power(m, 3), dtype, scale, "matrix_power")
        for order in (2, 1, np.inf, -np.inf, 3):
            assert_close(
                values(backend, la.vector_norm(M, axis=-1, ord=order)),
                np.linalg.norm(m, axis=-1, ord=order),
                dtype,
                scale,
                f"vector_norm {order}",
            )
        for order in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
            assert_close(
                values(backend, la.matrix_norm(M, ord=order)),
                np.linalg.norm(m, axis=(-2, -1), ord=order),
                dtype,
                scale,
                f"matrix_norm {order}",
            )


def test_fft_against_numpy_float64(backend):
    rng = np.random.default_rng(4)
    signal = rng.uniform(-1, 1, (2, 8))
    f = backend.xp.fft
    for dtype in float_dtypes(backend):
        x = backend.asarray(signal, dtype)
        try:
            spectrum = f.rfft(x)
        except DTypeError as error:  # a framework without FFTs in this precision must say so
            assert dtype in str(error), error
            continue
        expected = np.fft.rfft(signal)
        assert_close(np.real(values(backend, spectrum)), expected.real, dtype, 8, "rfft real")
        assert_close(np.imag(values(backend, spectrum)), expected.imag, dtype, 8, "rfft imag")
        assert_close(values(backend, f.irfft(spectrum, n=8)), signal, dtype, 8, "irfft")
        assert_close(
            values(backend, f.fftfreq(8, d=0.5, dtype=backend.dtype(dtype))),
            np.fft.fftfreq(8, d=0.5),
            dtype,
            1,
            "fftfreq",
        )
        assert_close(values(backend, f.fftshift(x, axes=1)), np.fft.fftshift(signal, axes=1), dtype, 1, "fftshift")


def test_linalg_gradients_against_finite_differences(backend):
    rng = np.random.default_rng(5)
    m = rng.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)
    xp = backend.xp

    def loss(a):
        return xp.add(xp.linalg.det(a), xp.sum(xp.square(xp.linalg.diagonal(xp.linalg.inv(a), offset=1))))

    def numpy_loss(a):
        return np.linalg.det(a) + np.sum(np.diagonal(np.linalg.inv(a), offset=1) ** 2)

    if not backend.supports("float64"):
        pytest.skip(f"{backend.name} here has no float64")
    grad = backend.grad(loss)(backend.asarray(m, "float64"))
    np.testing.assert_allclose(values(backend, grad), central_difference(numpy_loss, m), rtol=1e-7, atol=1e-8)


def test_floor_divide_and_remainder_special_cases(backend):
    # The standard's special cases, by hand: infinite operands and signed zeros.
    xp = backend.xp
    x1 = backend.asarray(np.array([np.inf, -np.inf, 1.0, -1.0, 7.0, -7.0, 0.0, -0.0]), "float32")
    x2 = backend.asarray(np.array([2.0, 2.0, -np.inf, np.inf, 2.0, 2.0, -3.0, 3.0]), "float32")
    quotient = values(backend, xp.floor_divide(x1, x2))
    np.testing.assert_array_equal(quotient, [np.inf, -np.inf, -0.0, -0.0, 3.0, -4.0, -0.0, -0.0])
    assert np.signbit(quotient[2:4]).all() and np.signbit(quotient[6:8]).all()
    remainder = values(backend, xp.remainder(x1[4:], x2[4:]))
    np.testing.assert_array_equal(remainder, [1.0, 1.0, -0.0, 0.0])
    assert list(np.signbit(remainder[2:])) == [True, False]  # a zero remainder has the divisor's sign
    ints = backend.asarray(np.array([7, -7]))
    assert values(backend, xp.floor_divide(ints, 2)).tolist() == [3, -4]
    assert values(backend, xp.remainder(ints, 2)).tolist() == [1, 1]


def test_complex_expm1_special_cases(backend):
    xp = backend.xp
    z = np.array(
        [
            complex(-0.0, 0.0),
            complex(np.inf, 0.0),
            complex(-np.inf, np.inf),
            complex(-np.inf, np.nan),
            complex(np.nan, 0.0),
            1e-10 + 2e-10j,
        ],
        dtype=np.complex64,
    )
    try:
        result = values(backend, xp.expm1(xp.asarray(z, dtype=xp.complex64)))
    except (NotImplementedError, TypeError) as error:
        pytest.skip(f"{backend.name} has no complex64 expm1 here: {error}")
    # The standard's special cases by hand; near 0, expm1(z) = z to first order.
    np.testing.assert_array_equal(result.real[:5], [0.0, np.inf, -1.0, -1.0, np.nan])
    np.testing.assert_array_equal(result.imag[:5], [0.0, 0.0, 0.0, 0.0, 0.0])
    assert not np.signbit(result.real[0])
    np.testing.assert_allclose([result.real[5], result.imag[5]], [1e-10, 2e-10], rtol=1e-6)


def test_complex_acos_log1p_tanh_special_cases(backend):
    # The standard's special cases, by hand: acos(+-0 + 0j) = pi/2 - 0j; log1p of an infinite and
    # a NaN part is +inf + NaN j; tanh(+inf + bj) with finite b > 0 is 1 + 0j.
    xp = backend.xp
    try:
        z = xp.asarray(
            np.array(
                [complex(0.0, 0.0), complex(np.inf, np.nan), complex(np.nan, np.inf), complex(np.inf, 1.0)],
                dtype=np.complex64,
            ),
            dtype=xp.complex64,
        )
        acos, log1p, tanh = (values(backend, f(z)) for f in (xp.acos, xp.log1p, xp.tanh))
    except (NotImplementedError, TypeError) as error:
        pytest.skip(f"{backend.name} has no complex64 here: {error}")
    assert acos[0].real == np.float32(np.pi / 2) and acos[0].imag == 0 and np.signbit(acos[0].imag)
    np.testing.assert_array_equal(log1p[1:3].real, [np.inf, np.inf])
    assert np.isnan(log1p[1:3].imag).all()
    assert (tanh[3].real, tanh[3].imag) == (1.0, 0.0) and not np.signbit(tanh[3].imag)
