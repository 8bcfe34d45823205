"""The reference of a half-precision run: NumPy in float64 on inputs rounded to the half dtype.

A backend running a case in float16 or bfloat16 first rounds every input to that dtype
(``backend.asarray(x, "bfloat16")``): 0.1 becomes 0.0999755859375 in float16 and
0.10009765625 in bfloat16, 1.3 becomes 1.2998046875 and 1.296875. Judged against float64 on the
unrounded inputs, a result would carry that rounding magnified by the function's condition
(``exp(30)`` moves by 30 units of roundoff when 30 moves by one), which says nothing about
the backend. So the float64 reference sees exactly the inputs the backend saw: the NumPy
reference backend, with an ``asarray`` that rounds host data (NumPy arrays, lists, Python
numbers) to the half dtype before it makes the float64 array. Arrays the case computes
along the way are not rounded: the reference computes in float64 from there, and the
tolerance (:mod:`.tolerances`) is the half dtype's for the roundings the backend does.

A result beyond the half dtype's largest number is infinite on the backend (a product of
sixty numbers up to 4 exceeds float16's 65504): the reference's values that round to
infinity in the half dtype are infinite too (:func:`overflowed`), so that the comparison
asks for the infinity, with its sign, where a correct backend gives it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from portable_dl.backend import Backend

#: Host data that ``asarray`` receives from a case (rather than an array the case computed).
_HOST_DATA = (np.ndarray, np.generic, list, tuple, float, int)


def numpy_half_dtype(dtype: str) -> np.dtype:
    """NumPy's dtype for a half-precision dtype name: float16, or ml_dtypes' bfloat16."""
    if dtype == "bfloat16":
        import ml_dtypes  # NumPy has no bfloat16; JAX and TensorFlow depend on ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def round_to(values: Any, dtype: str) -> np.ndarray:
    """``values`` rounded to the nearest ``dtype`` number (ties to even), back in float64;
    beyond the dtype's range, infinite (as on a backend)."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(numpy_half_dtype(dtype)).astype(np.float64)


@functools.cache
def _rounding_class(base: type) -> type:
    class RoundedInputs(base):
        """The reference backend, whose ``asarray`` rounds host floats to ``rounded_to`` first."""

        rounded_to = "float16"

        def asarray(self, x: Any, dtype: Any = None) -> Any:
            array = super().asarray(x, dtype)
            if isinstance(x, _HOST_DATA) and np.issubdtype(np.dtype(array.dtype), np.floating):
                return super().asarray(round_to(x, self.rounded_to), array.dtype)
            return array

    return RoundedInputs


def rounding_backend(reference: Backend, dtype: str) -> Backend:
    """A reference backend like ``reference`` (the NumPy backend) whose ``asarray`` rounds
    host floating-point inputs to ``dtype`` and keeps computing in the requested dtype."""
    backend = _rounding_class(type(reference))(reference.device)
    backend.rounded_to = dtype
    return backend


def overflowed(outputs: dict[str, Any], dtype: str) -> dict[str, Any]:
    """``outputs`` with every numeric value that rounds to an infinity in ``dtype`` made
    that infinity; other values, and exact outputs (shapes, dtype names), unchanged."""
    result = {}
    for name, value in outputs.items():
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            rounded = round_to(value, dtype)
            value = np.where(np.isinf(rounded) & np.isfinite(value), rounded, value)
        result[name] = value
    return result
