"""Gradients of gradients through the namespace's linear selections, on every backend.

Each operation ``L`` below is linear in its array argument (a selection, a copy, a
broadcast). For ``f(x) = sum(w * L(x)^3)`` with ``A`` the matrix of ``L``:

    grad f(x)                 = A^T (3 w (A x)^2)
    d/dx <v, grad f(x)>       = A^T (6 w (A x) (A v))

The reference builds ``A`` column by column by applying the NumPy form of ``L`` to the unit
vectors, in float64; the backend differentiates in float32 twice with nested ``value_and_grad``. Each
gradient rule of an operation must itself be differentiable for the second one to exist
(the NumPy backend writes several of them by hand).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from helpers import assert_close

SHAPE = (3, 4)  # asymmetric, so that a transposed rule shows


def _operations(xp) -> dict[str, tuple[Callable, Callable]]:
    """name -> (the backend form of L, its NumPy float64 form)."""
    repeated = [2, 0, 2, 1]  # a repeated index: its gradients add up
    along = np.array([[3, 3, 0], [1, 2, 1], [0, 0, 0]])
    condition = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
    return {
        "where": (
            lambda x: xp.where(xp.asarray(condition), x, xp.multiply(x, -2.0)),
            lambda x: np.where(condition, x, -2.0 * x),
        ),
        "where broadcast": (  # x of shape (4,) against a (3, 4) condition
            lambda x: xp.where(xp.asarray(condition), x[0, :], 0.0),
            lambda x: np.where(condition, x[0, :], 0.0),
        ),
        "take": (
            lambda x: xp.take(x, xp.asarray(repeated), axis=0),
            lambda x: np.take(x, repeated, axis=0),
        ),
        "take_along_axis": (
            lambda x: xp.take_along_axis(x, xp.asarray(along), axis=1),
            lambda x: np.take_along_axis(x, along, axis=1),
        ),
        "flip": (lambda x: xp.flip(x, axis=1), lambda x: np.flip(x, axis=1)),
        "broadcast_to": (
            lambda x: xp.broadcast_to(x[:, :1], (2, 3, 4)),
            lambda x: np.broadcast_to(x[:, :1], (2, 3, 4)),
        ),
        "diagonal": (
            lambda x: xp.linalg.diagonal(x, offset=1),
            lambda x: np.diagonal(x, offset=1),
        ),
    }


def _matrix(numpy_form: Callable) -> np.ndarray:
    """The matrix of the linear map ``numpy_form`` from arrays of SHAPE, in float64."""
    size = int(np.prod(SHAPE))
    columns = [np.ravel(numpy_form(np.eye(size)[i].reshape(SHAPE))) for i in range(size)]
    return np.stack(columns, axis=1)


@pytest.mark.parametrize(
    "name", ["where", "where broadcast", "take", "take_along_axis", "flip", "broadcast_to", "diagonal"]
)
def test_gradient_of_a_gradient_through_a_linear_selection(backend, name):
    xp = backend.xp
    backend_form, numpy_form = _operations(xp)[name]
    rng = np.random.default_rng(7)
    x = rng.uniform(-2.0, 2.0, SHAPE)
    v = rng.uniform(-1.0, 1.0, SHAPE)
    A = _matrix(numpy_form)
    w = rng.uniform(0.5, 1.5, A.shape[0])
    out_shape = np.shape(numpy_form(x))

    weights, direction = backend.asarray(w.reshape(out_shape), "float32"), backend.asarray(v, "float32")

    def f(x_):
        y = backend_form(x_)
        return xp.sum(xp.multiply(weights, xp.multiply(xp.multiply(y, y), y)))

    inner = backend.grad(f)

    def directional(x_):
        gradient = inner(x_)
        return xp.sum(xp.multiply(gradient, direction)), gradient

    (_, gradient), second = backend.value_and_grad(directional, has_aux=True)(backend.asarray(x, "float32"))
    Ax, Av = A @ x.ravel(), A @ v.ravel()
    assert_close(backend.to_numpy(gradient), (A.T @ (3 * w * Ax**2)).reshape(SHAPE), "float32", what="gradient")
    assert_close(backend.to_numpy(second), (A.T @ (6 * w * Ax * Av)).reshape(SHAPE), "float32", what="second")
