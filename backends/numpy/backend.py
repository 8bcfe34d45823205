"""The NumPy backend: NumPy arrays, differentiated by HIPS autograd.

It is the reference the conformance suite trusts, so its autodiff shares nothing with any
framework under test. It computes in whatever dtype it is given; the suite runs it in
float64. There is no compiler: :meth:`compile` is the identity.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from autograd import make_vjp
from autograd.tracer import getval, isbox

from portable_dl.backend import Backend
from portable_dl.tree import tree_map

from .._common import dtypes
from . import namespace


class NumPyBackend(Backend):
    name = "numpy"

    @property
    def version(self) -> str:
        return np.__version__

    def devices(self) -> list[str]:
        return ["cpu"]

    @property
    def xp(self) -> Any:
        return namespace.xp

    def _unsupported_dtype_reason(self, name: str) -> str | None:
        if name == "bfloat16" and not hasattr(namespace.xp, "bfloat16"):
            return dtypes.ML_DTYPES_HINT
        return None

    def owns(self, x: Any) -> bool:
        return isinstance(getval(x), (np.ndarray, np.generic))

    def asarray(self, x: Any, dtype: Any = None) -> np.ndarray:
        dtype = None if dtype is None else self.dtype(dtype)
        return np.asarray(getval(x), dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(getval(x))

    def _value_and_grad_of_leaves(self, f: Callable, leaves: list) -> tuple[Any, Any, list]:
        auxiliary = []

        def scalar_of_leaves(leaf_tuple: tuple) -> Any:
            value, aux = f(list(leaf_tuple))
            auxiliary.append(aux)
            return value

        with warnings.catch_warnings():
            # autograd warns when the output does not depend on the inputs; a zero
            # gradient is then the right answer (sign, floor, a constant loss).
            warnings.filterwarnings("ignore", "Output seems independent of input")
            vjp, value = make_vjp(scalar_of_leaves)(tuple(leaves))
            gradients = vjp(np.ones_like(getval(value)))
        # autograd computes some cotangents in float64; hand them back in each leaf's dtype.
        # Inside an outer value_and_grad (a gradient of a gradient) the leaves and cotangents
        # are autograd boxes of the outer trace: astype keeps them traced, where np.asarray
        # would turn them into object arrays and cut the outer derivative.
        gradients = [_in_dtype(g, getval(leaf).dtype) for g, leaf in zip(gradients, leaves)]
        aux = tree_map(getval, auxiliary[0])
        return value, aux, gradients


def _in_dtype(gradient: Any, dtype: np.dtype) -> Any:
    """``gradient`` as an array of ``dtype``, still traced when it is an autograd box."""
    if isbox(gradient):
        return gradient if getval(gradient).dtype == dtype else gradient.astype(dtype)
    return np.asarray(gradient, dtype=dtype)
