"""Unsigned integers: the standard's accumulation dtypes, wrapping arithmetic, and a clear
DTypeError (never a framework's own error, never a wrong answer) where a framework has no
kernel for a dtype (PyTorch's uint16, uint32 and uint64).

References are NumPy's, with the accumulation dtype passed explicitly (``dtype=np.uint64``),
so they do not depend on any default of the code under test. Values overflow the narrower
dtypes (250 * 7 * 9 * 255 does not fit 16 bits) and, for uint64, pass 2**63 (which a signed
accumulation would show as negative).
"""

from __future__ import annotations

import numpy as np
import pytest

from portable_dl.errors import DTypeError

UNSIGNED = ["uint8", "uint16", "uint32", "uint64"]


def _unsigned(backend, values, dtype):
    """``values`` as a backend array of ``dtype``, or a skip where the namespace says it has none."""
    xp = backend.xp
    try:
        return xp.asarray(np.asarray(values, dtype=dtype), dtype=getattr(xp, dtype))
    except DTypeError as error:  # JAX without x64 has no uint64: said by the namespace
        pytest.skip(str(error))


def _values(dtype):
    high = np.iinfo(dtype).max
    return np.array([[250, 7, high], [9, 255, high - 3]], dtype=dtype)


def _check(backend, result, expected, dtype_name):
    xp = backend.xp
    assert result.dtype == getattr(xp, dtype_name), f"dtype {result.dtype}, the standard says {dtype_name}"
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(result)), expected)


def _accumulation_dtype(backend, dtype):
    """The standard's accumulation dtype of an unsigned ``dtype``: the unsigned integer as wide as
    the namespace's default integer (uint64 beside int64; uint32 beside MLX's and 32-bit JAX's
    int32), or ``dtype`` itself where that is wider."""
    xp = backend.xp
    default = xp.__array_namespace_info__().default_dtypes()["integral"]
    bits = next(int(name[3:]) for name in ("int32", "int64") if default == getattr(xp, name))
    return f"uint{max(bits, np.iinfo(dtype).bits)}"


@pytest.mark.parametrize("dtype", UNSIGNED)
def test_unsigned_sum_and_prod_accumulate_in_the_default_unsigned_modulo(backend, dtype):
    xp = backend.xp
    values = _values(dtype)
    x = _unsigned(backend, values, dtype)
    wide_name = _accumulation_dtype(backend, dtype)
    wide = values.astype(wide_name)
    with np.errstate(over="ignore"):
        _check(backend, xp.sum(x), np.sum(wide, dtype=wide_name), wide_name)
        _check(backend, xp.sum(x, axis=0), np.sum(wide, axis=0, dtype=wide_name), wide_name)
        _check(backend, xp.prod(x, axis=1), np.prod(wide, axis=1, dtype=wide_name), wide_name)
        _check(backend, xp.cumulative_sum(x, axis=1), np.cumsum(wide, axis=1, dtype=wide_name), wide_name)
        _check(backend, xp.cumulative_prod(x, axis=0), np.cumprod(wide, axis=0, dtype=wide_name), wide_name)
        # An explicit narrower dtype wraps modulo 2**8 (250 + 9 = 259 -> 3).
        _check(backend, xp.sum(x, axis=0, dtype=xp.uint8), np.sum(wide, axis=0).astype(np.uint8), "uint8")
        _check(backend, xp.prod(x, dtype=xp.uint8), np.prod(values.astype(np.uint8), dtype=np.uint8), "uint8")


def test_uint64_sum_past_two_to_the_63(backend):
    """2**63 + 2**63 - 1 + 5 wraps to 2**63 + 4 in uint64 (a signed accumulation shown as such
    would be negative, a float one inexact)."""
    xp = backend.xp
    values = np.array([2**63, 2**63 - 1, 5, 0], dtype=np.uint64)
    x = _unsigned(backend, values, "uint64")
    with np.errstate(over="ignore"):
        _check(backend, xp.sum(x), np.sum(values, dtype=np.uint64), "uint64")
        _check(backend, xp.cumulative_sum(x), np.cumsum(values, dtype=np.uint64), "uint64")


#: Functions of one unsigned array, with NumPy's result (the standard's wrapping arithmetic).
UNARY = {
    "negative": np.negative,
    "abs": np.abs,
    "sign": np.sign,
    "square": np.square,
    "bitwise_invert": np.invert,
    "flip": np.flip,
    "max": np.max,
    "min": np.min,
    "argmax": lambda v: np.argmax(v),
    "count_nonzero": np.count_nonzero,
    "sort": lambda v: np.sort(v, axis=-1),
}
#: Functions of two unsigned arrays of one dtype.
BINARY = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "floor_divide": np.floor_divide,
    "remainder": np.remainder,
    "maximum": np.maximum,
    "bitwise_and": np.bitwise_and,
    "equal": np.equal,
    "less": np.less,
}


@pytest.mark.parametrize("dtype", UNSIGNED)
def test_unsigned_functions_are_right_or_raise_dtype_error(backend, dtype):
    """Each function gives NumPy's (wrapping) result, or DTypeError where the framework has no
    kernel for the dtype: never the framework's own exception, never a wrong value."""
    xp = backend.xp
    values = _values(dtype)
    other = np.array([[3, 7, 2], [250, 1, 9]], dtype=dtype)
    x, y = _unsigned(backend, values, dtype), _unsigned(backend, other, dtype)
    refused = []
    with np.errstate(over="ignore"):
        calls = [(name, lambda f=name: getattr(xp, f)(x), reference(values)) for name, reference in UNARY.items()]
        calls += [
            (name, lambda f=name: getattr(xp, f)(x, y), reference(values, other)) for name, reference in BINARY.items()
        ]
    for name, call, expected in calls:
        try:
            result = call()
        except DTypeError as error:
            assert dtype in str(error), f"{name}: {error} does not name {dtype}"
            refused.append(name)
            continue
        got = np.asarray(backend.to_numpy(result))
        np.testing.assert_array_equal(got, np.asarray(expected), err_msg=f"{name} of {dtype}")
    if backend.supports(dtype):
        assert not refused, f"{backend.name} says it computes in {dtype} but refuses {refused}"
