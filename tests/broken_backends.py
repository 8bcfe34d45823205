"""Deliberately broken backends: each is the NumPy backend with one fault planted.

The conformance suite is only worth something if it fails when a backend is wrong; the
tests plug these in with ``--backend-module broken_backends:<factory>``.
"""

from __future__ import annotations

import types

import numpy as np
from autograd.extend import defvjp, primitive

from portable_dl.backends.numpy import namespace as numpy_namespace
from portable_dl.backends.numpy.backend import NumPyBackend


def namespace_with(**replacements) -> types.SimpleNamespace:
    """The NumPy backend's namespace with some functions replaced."""
    names = {name: getattr(numpy_namespace, name) for name in dir(numpy_namespace) if not name.startswith("__")}
    names["__array_namespace_info__"] = numpy_namespace.__array_namespace_info__
    names.update(replacements)
    return types.SimpleNamespace(**names)


def broken_backend(backend_name: str, namespace: types.SimpleNamespace):
    class Broken(NumPyBackend):
        name = backend_name

        @property
        def xp(self):
            return namespace

    def create(device=None):
        return Broken(device)

    return create


# 1. tanh with a wrong derivative: 1 - tanh(x) instead of 1 - tanh(x)**2.
@primitive
def tanh_with_wrong_gradient(x):
    return np.tanh(x)


defvjp(tanh_with_wrong_gradient, lambda ans, x: lambda g: g * (1 - ans))

wrong_tanh_gradient = broken_backend("broken-tanh-gradient", namespace_with(tanh=tanh_with_wrong_gradient))


# 2. A broadcasting rule that accepts (m, n) + (m,) by aligning the vector with the rows.
def add_aligning_rows(x1, x2):
    x1_shape, x2_shape = np.shape(x1), np.shape(x2)
    if len(x1_shape) == 2 and len(x2_shape) == 1 and x2_shape[0] == x1_shape[0] != x1_shape[1]:
        x2 = numpy_namespace.reshape(x2, (-1, 1))
    return numpy_namespace.add(x1, x2)


accepts_rows_broadcast = broken_backend("broken-broadcasting", namespace_with(add=add_aligning_rows))


# 3. A sum that accumulates float32 in float64 and returns float64.
def sum_in_float64(x, /, *, axis=None, dtype=None, keepdims=False):
    return numpy_namespace.sum(numpy_namespace.astype(x, np.float64), axis=axis, dtype=dtype, keepdims=keepdims)


sum_in_wrong_dtype = broken_backend("broken-sum-dtype", namespace_with(sum=sum_in_float64))
