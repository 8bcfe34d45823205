"""Activations on every backend: values against NumPy float64 references written here,
gradients (by each backend's own autodiff) against the derivatives written here and
against central finite differences of the references, stability at +-1000, and the
conventions at 0 (relu'(0) = 0)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FINITE_DIFFERENCE_TOLERANCE, assert_matches, central_difference, float_dtypes, ulps

from portable_dl import activations


# ------------------------------------------------------- references (NumPy float64)
def _phi(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _normal_cdf(x):
    return np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in np.ravel(x)]).reshape(np.shape(x))


def _logistic(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # an overflow-free identity for 1 / (1 + exp(-x))


_C = math.sqrt(2 / math.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x**3)))


def _gelu_tanh_derivative(x):
    t = np.tanh(_C * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _C * (1 + 3 * 0.044715 * x * x)


#: name -> (function under test, reference value, reference derivative), element-wise.
ELEMENTWISE = {
    "relu": (activations.relu, lambda x: x * (x > 0), lambda x: (x > 0).astype(float)),
    "leaky_relu": (
        lambda x: activations.leaky_relu(x, negative_slope=0.1),
        lambda x: np.where(x > 0, x, 0.1 * x),
        lambda x: np.where(x > 0, 1.0, 0.1),
    ),
    "sigmoid": (activations.sigmoid, _logistic, lambda x: _logistic(x) * _logistic(-x)),
    "tanh": (activations.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "gelu": (activations.gelu, lambda x: x * _normal_cdf(x), lambda x: _normal_cdf(x) + x * _phi(x)),
    "gelu_tanh": (lambda x: activations.gelu(x, approximate="tanh"), _gelu_tanh, _gelu_tanh_derivative),
    "softplus": (activations.softplus, lambda x: np.logaddexp(0.0, x), _logistic),
    "softplus_beta": (
        lambda x: activations.softplus(x, beta=2.0, threshold=5.0),
        lambda x: np.where(2 * x > 5, x, np.logaddexp(0.0, 2 * x) / 2),
        lambda x: np.where(2 * x > 5, 1.0, _logistic(2 * x)),
    ),
}

# Points away from the kinks at 0 (finite differences there are meaningless), covering
# both branches of every stable form and both sides of the exact gelu's split at |x| = 2 sqrt(2).
POINTS = np.array([-7.5, -3.1, -2.9, -1.3, -0.4, -0.02, 0.03, 0.6, 1.7, 2.7, 2.9, 4.2, 9.0])


def _backend_gradient(backend, function, x, weights, dtype):
    """Value and gradient of ``sum(weights * function(x))`` by the backend's autodiff."""
    xp = backend.xp
    w = backend.asarray(weights, dtype)

    def objective(x_):
        return xp.sum(xp.multiply(function(x_), w))

    out = function(backend.asarray(x, dtype))
    _, grad = backend.value_and_grad(objective)(backend.asarray(x, dtype))
    return out, grad


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_values_and_gradients(backend, name):
    function, reference, derivative = ELEMENTWISE[name]
    weights = np.random.default_rng(0).uniform(0.5, 1.5, size=POINTS.shape)
    expected_grad = weights * derivative(POINTS)
    finite_difference = central_difference(lambda v: np.sum(weights * reference(v)), POINTS)
    # the reference derivative itself, checked against the reference values
    np.testing.assert_allclose(finite_difference, expected_grad, atol=FINITE_DIFFERENCE_TOLERANCE)
    for dtype in float_dtypes(backend):
        x = POINTS.astype(dtype)  # the points as the backend sees them
        out, grad = _backend_gradient(backend, function, x, weights, dtype)
        assert backend.dtype_name(out.dtype) == dtype and tuple(out.shape) == POINTS.shape
        assert backend.dtype_name(grad.dtype) == dtype
        x64 = x.astype(np.float64)
        assert_matches(backend.to_numpy(out), reference(x64), dtype, what=f"{name} value ({dtype})")
        grad = backend.to_numpy(grad)
        assert_matches(
            grad, weights.astype(dtype).astype(np.float64) * derivative(x64), dtype, what=f"{name} gradient ({dtype})"
        )
        if dtype == "float64":
            np.testing.assert_allclose(grad, finite_difference, atol=FINITE_DIFFERENCE_TOLERANCE, err_msg=name)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_stable_at_extremes(backend, name):
    """+-1000 (and +-88.8, where float32 exp overflows) give the right finite values and
    finite, right gradients."""
    function, reference, derivative = ELEMENTWISE[name]
    x = np.array([-1000.0, -100.0, -88.8, 88.8, 100.0, 1000.0])
    for dtype in float_dtypes(backend):
        out, grad = _backend_gradient(backend, function, x, np.ones_like(x), dtype)
        assert_matches(backend.to_numpy(out), reference(x), dtype, what=f"{name} at extremes ({dtype})")
        assert_matches(backend.to_numpy(grad), derivative(x), dtype, what=f"{name} gradient at extremes ({dtype})")


@pytest.mark.parametrize(
    "function, expected",
    [
        (activations.relu, 0.0),  # the convention: relu'(0) = 0
        (lambda x: activations.leaky_relu(x, 0.2), 0.2),
        (activations.sigmoid, 0.25),
        (activations.softplus, 0.5),
        (activations.gelu, 0.5),
        (lambda x: activations.gelu(x, approximate="tanh"), 0.5),
        (activations.tanh, 1.0),
    ],
    ids=["relu", "leaky_relu", "sigmoid", "softplus", "gelu", "gelu_tanh", "tanh"],
)
def test_derivative_at_zero(backend, function, expected):
    xp = backend.xp
    for dtype in float_dtypes(backend):
        zero = backend.asarray(np.zeros(3, dtype=dtype))
        _, grad = backend.value_and_grad(lambda x: xp.sum(function(x)))(zero)
        np.testing.assert_array_equal(backend.to_numpy(grad), np.full(3, expected, dtype=dtype))


# ------------------------------------------------------------ softmax and friends
def _reference_logsumexp(x, axis):
    return np.logaddexp.reduce(x, axis=axis)


def _reference_log_softmax(x, axis):
    return x - np.expand_dims(_reference_logsumexp(x, axis), axis)


AXIS_FUNCTIONS = {
    "softmax": (activations.softmax, lambda x, axis: np.exp(_reference_log_softmax(x, axis))),
    "log_softmax": (activations.log_softmax, _reference_log_softmax),
    "logsumexp": (activations.logsumexp, _reference_logsumexp),
}


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_axis_functions_values_and_gradients(backend, name, axis):
    function, reference = AXIS_FUNCTIONS[name]
    rng = np.random.default_rng(1)
    x = rng.normal(scale=2.0, size=(3, 4))
    weights = rng.uniform(0.5, 1.5, size=reference(x, axis).shape)
    expected_grad = central_difference(lambda v: np.sum(weights * reference(v, axis)), x)
    for dtype in float_dtypes(backend):
        xp = backend.xp
        w = backend.asarray(weights, dtype)
        value = function(backend.asarray(x, dtype), axis=axis)
        _, grad = backend.value_and_grad(lambda v: xp.sum(xp.multiply(function(v, axis=axis), w)))(
            backend.asarray(x, dtype)
        )
        assert_matches(
            backend.to_numpy(value),
            reference(x.astype(dtype).astype(np.float64), axis),
            dtype,
            what=f"{name} ({dtype})",
        )
        tolerance = FINITE_DIFFERENCE_TOLERANCE if dtype == "float64" else ulps(dtype, 64) * 10
        np.testing.assert_allclose(
            backend.to_numpy(grad), expected_grad, atol=tolerance, err_msg=f"{name} gradient ({dtype})"
        )


def test_logsumexp_axis_none_and_keepdims(backend):
    x = np.random.default_rng(2).normal(size=(2, 3))
    for dtype in float_dtypes(backend):
        xx = backend.asarray(x, dtype)
        total = activations.logsumexp(xx)
        assert tuple(total.shape) == ()
        assert_matches(backend.to_numpy(total), np.logaddexp.reduce(x.astype(dtype).ravel().astype(np.float64)), dtype)
        kept = activations.logsumexp(xx, axis=1, keepdims=True)
        assert tuple(kept.shape) == (2, 1)
        assert_matches(
            backend.to_numpy(kept)[:, 0], np.logaddexp.reduce(x.astype(dtype).astype(np.float64), axis=1), dtype
        )


def test_softmax_family_stable_at_extremes(backend):
    """Logits of +-1000 in float32: exact probabilities, finite log-probabilities, and the
    softmax gradient of logsumexp; tied maxima share the gradient evenly."""
    x = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
    xp = backend.xp
    for dtype in float_dtypes(backend):
        xx = backend.asarray(x, dtype)
        assert_matches(backend.to_numpy(activations.softmax(xx)), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3] * 3], dtype)
        assert_matches(backend.to_numpy(activations.log_softmax(xx)), _reference_log_softmax(x, -1), dtype)
        assert_matches(backend.to_numpy(activations.logsumexp(xx, axis=-1)), _reference_logsumexp(x, -1), dtype)
        _, grad = backend.value_and_grad(lambda v: xp.sum(activations.logsumexp(v, axis=-1)))(xx)
        assert_matches(backend.to_numpy(grad), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3] * 3], dtype)


def test_softmax_rows_sum_to_one(backend):
    x = np.random.default_rng(3).normal(scale=10.0, size=(4, 6))
    for dtype in float_dtypes(backend):
        probabilities = backend.to_numpy(activations.softmax(backend.asarray(x, dtype), axis=1)).astype(np.float64)
        np.testing.assert_allclose(probabilities.sum(axis=1), np.ones(4), atol=ulps(dtype, 8))


# ------------------------------------------------------------------ lookups
def test_get_activation():
    assert activations.get_activation("relu") is activations.relu
    assert activations.get_activation("ReLU") is activations.relu
    assert activations.get_activation(None) is activations.identity
    custom = lambda x: x  # noqa: E731
    assert activations.get_activation(custom) is custom
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        activations.get_activation("relux")


def test_invalid_arguments(backend):
    x = backend.asarray(np.zeros(2, dtype="float32"))
    with pytest.raises(ValueError, match="approximate"):
        activations.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="beta"):
        activations.softplus(x, beta=0.0)


def test_activations_compile(backend):
    """The activations trace under the backend's compiler and give the eager values."""
    xp = backend.xp
    x = backend.asarray(np.linspace(-5, 5, 8).reshape(2, 4), "float32")

    def everything(v):
        return xp.add(xp.add(activations.gelu(v), activations.softplus(v)), activations.log_softmax(v))

    compiled = backend.compile(everything)
    assert_matches(backend.to_numpy(compiled(x)), backend.to_numpy(everything(x)), "float32", count=4)
