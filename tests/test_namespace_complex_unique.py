"""``unique_*`` of complex arrays (PyTorch's ``torch.unique`` has no complex kernel), against
hand-derived sets: the order of the values is the implementation's, so results are compared
after sorting them on the host; +0 and -0 are one value, each NaN is its own."""

from __future__ import annotations

import numpy as np
import pytest

from portable_dl.errors import DTypeError

# 1+2j at flat positions 0, 2, 5; 1+1j at 1; -0-1j and 0-1j (one value) at 3, 4.
VALUES = np.array([[1 + 2j, 1 + 1j, 1 + 2j], [complex(-0.0, -1.0), 0 - 1j, 1 + 2j]])
EXPECTED = {(0.0, -1.0): (3, 2), (1.0, 1.0): (1, 1), (1.0, 2.0): (0, 3)}  # value -> (first index, count)


def _complex(backend, values, dtype):
    xp = backend.xp
    try:
        return xp.asarray(values.astype(dtype), dtype=getattr(xp, dtype))
    except DTypeError as error:  # MLX has no complex128, JAX none without x64: said by the namespace
        pytest.skip(str(error))


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_unique_all_of_complex(backend, dtype):
    xp = backend.xp
    x = _complex(backend, VALUES, dtype)
    values, first, inverse, counts = (np.asarray(backend.to_numpy(part)) for part in xp.unique_all(x))
    found = {(float(v.real), float(v.imag)): (int(i), int(c)) for v, i, c in zip(values, first, counts)}
    assert found == EXPECTED
    assert inverse.shape == VALUES.shape
    np.testing.assert_array_equal(values[inverse], VALUES.astype(dtype))
    counts_only = xp.unique_counts(x)
    counted = zip(np.asarray(backend.to_numpy(counts_only.values)), np.asarray(backend.to_numpy(counts_only.counts)))
    assert {(float(v.real), float(v.imag)): int(c) for v, c in counted} == {k: c for k, (_, c) in EXPECTED.items()}
    inverse_only = xp.unique_inverse(x)
    unique = np.asarray(backend.to_numpy(inverse_only.values))
    inverse = np.asarray(backend.to_numpy(inverse_only.inverse_indices))
    np.testing.assert_array_equal(unique[inverse], VALUES.astype(dtype))
    only = np.asarray(backend.to_numpy(xp.unique_values(x)))
    assert sorted((float(v.real), float(v.imag)) for v in only) == sorted(EXPECTED)


def test_unique_values_of_complex_nans_are_distinct(backend):
    xp = backend.xp
    nan = float("nan")
    x = _complex(backend, np.array([complex(nan, 0.0), complex(nan, 0.0), 2 - 1j]), "complex64")
    values = np.asarray(backend.to_numpy(xp.unique_values(x)))
    assert values.shape == (3,)
    assert int(np.isnan(values.real).sum()) == 2
    counts = np.asarray(backend.to_numpy(xp.unique_counts(x).counts))
    np.testing.assert_array_equal(counts, [1, 1, 1])
