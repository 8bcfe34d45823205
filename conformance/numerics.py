"""The suite's one numerical oracle for gradients: central finite differences in float64,
outputs as float64 NumPy arrays, and the case of a scalar function of named inputs.

Used by the gradients, broadcasting and front-end cases and by ``tests/helpers.py``, so a
change to how finite differences are taken (their step, below) is made once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, Outputs
from .tolerances import FINITE_DIFFERENCE_STEP

__all__ = ["central_differences", "as_float64", "scalar_function_case"]


def central_differences(
    f: Callable[[np.ndarray], float], x: np.ndarray, step: float = FINITE_DIFFERENCE_STEP
) -> np.ndarray:
    """The gradient of the scalar NumPy function ``f`` at ``x`` (any shape), by central
    differences ``(f(x + h e_i) - f(x - h e_i)) / 2h`` in float64, element by element."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = np.zeros_like(x)
        shifted[index] = step
        grad[index] = (f(x + shifted) - f(x - shifted)) / (2 * step)
    return grad


def as_float64(backend: Backend, x: Any) -> np.ndarray:
    """The backend array ``x`` as a float64 NumPy array (bools as 0 and 1)."""
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def scalar_function_case(
    name: str,
    inputs: dict[str, np.ndarray],
    backend_loss: Callable[[Backend, dict[str, Any], str], Any],
    numpy_loss: Callable[[dict[str, np.ndarray]], float] | None,
    reduction_size: int = 1,
    family: str = "gradients",
) -> Case:
    """A case for the value and gradient of a scalar loss of named float64 ``inputs``.

    ``backend_loss(backend, arrays, dtype)`` computes the loss with ``xp`` from a dict of
    backend arrays; ``numpy_loss(arrays)`` computes it in NumPy float64 for finite
    differences (None at kinks, where only the reference and hand-derived values apply).
    Outputs: ``value``, ``grad <input>`` (numeric) and ``grad <input> dtype`` (exact).
    """

    def compute(backend: Backend, dtype: str) -> Outputs:
        arrays = {key: backend.asarray(value, dtype) for key, value in inputs.items()}
        value, grads = backend.value_and_grad(lambda a: backend_loss(backend, a, dtype))(arrays)
        outputs: Outputs = {"value": as_float64(backend, value)}
        for key in inputs:
            outputs[f"grad {key}"] = as_float64(backend, grads[key])
            outputs[f"grad {key} dtype"] = backend.dtype_name(grads[key].dtype)
        return outputs

    finite_differences = None
    if numpy_loss is not None:

        def finite_differences() -> Outputs:
            result = {}
            for key, value in inputs.items():
                result[f"grad {key}"] = central_differences(lambda v, key=key: numpy_loss({**inputs, key: v}), value)
            return result

    return Case(
        family, name, compute, reduction_size=reduction_size, gradient=True, finite_differences=finite_differences
    )
