"""Losses on every backend: values against NumPy float64 references written here, gradients
(each backend's own autodiff) against the derivatives written here and against central
finite differences, stability for logits of +-1000, shape and label-range errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FINITE_DIFFERENCE_TOLERANCE, assert_matches, central_difference, float_dtypes

import portable_dl
from portable_dl import losses

N, C = 5, 4


def reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


def reduction_weight(reduction, count):
    """d reduce(v) / d v_i for mean (1/count) and sum (1)."""
    return 1.0 / count if reduction == "mean" else 1.0


# ----------------------------------------------------- element-wise losses
def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


DELTA = 0.7

#: name -> (loss under test, per-element reference value, its derivative in the predictions)
ELEMENTWISE = {
    "mse": (losses.mse, lambda p, t: (p - t) ** 2, lambda p, t: 2 * (p - t)),
    "mae": (losses.mae, lambda p, t: np.abs(p - t), lambda p, t: np.sign(p - t)),
    "huber": (
        lambda p, t, reduction: losses.huber(p, t, delta=DELTA, reduction=reduction),
        lambda p, t: np.where(np.abs(p - t) < DELTA, 0.5 * (p - t) ** 2, DELTA * (np.abs(p - t) - 0.5 * DELTA)),
        lambda p, t: np.clip(p - t, -DELTA, DELTA),
    ),
    "binary_cross_entropy": (
        losses.binary_cross_entropy,
        lambda p, t: -(t * np.log(p) + (1 - t) * np.log1p(-p)),
        lambda p, t: (p - t) / (p * (1 - p)),
    ),
    "binary_cross_entropy_with_logits": (
        losses.binary_cross_entropy_with_logits,
        lambda x, t: -(t * _log_sigmoid(x) + (1 - t) * _log_sigmoid(-x)),
        lambda x, t: _sigmoid(x) - t,
    ),
}


def _elementwise_inputs(name, shape=(N, 3)):
    rng = np.random.default_rng(4)
    if name == "binary_cross_entropy":
        return rng.uniform(0.05, 0.95, size=shape), rng.uniform(0, 1, size=shape)
    if name == "binary_cross_entropy_with_logits":
        return rng.normal(scale=3, size=shape), rng.uniform(0, 1, size=shape)
    predictions = rng.normal(size=shape)
    # keep |p - t| away from the kinks (0 and delta), where finite differences are meaningless
    gaps = rng.choice([-1, 1], size=shape) * rng.uniform(0.1, 1.5, size=shape)
    gaps = np.where(np.abs(np.abs(gaps) - DELTA) < 0.05, gaps * 1.2, gaps)
    return predictions, predictions - gaps


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_losses(backend, name, reduction):
    loss, reference, derivative = ELEMENTWISE[name]
    p, t = _elementwise_inputs(name)
    xp = backend.xp
    weights = np.random.default_rng(5).uniform(0.5, 1.5, size=p.shape) if reduction == "none" else np.ones(())
    objective = lambda p_: np.sum(weights * reduce(reference(p_, t), reduction))  # noqa: E731
    finite_difference = central_difference(objective, p)
    expected_grad = weights * reduction_weight(reduction, p.size) * derivative(p, t)
    np.testing.assert_allclose(finite_difference, expected_grad, atol=FINITE_DIFFERENCE_TOLERANCE)
    for dtype in float_dtypes(backend):
        p_, t_ = p.astype(dtype).astype(np.float64), t.astype(dtype).astype(np.float64)
        target = backend.asarray(t, dtype)
        w = backend.asarray(weights, dtype)
        value = loss(backend.asarray(p, dtype), target, reduction=reduction)
        assert backend.dtype_name(value.dtype) == dtype
        assert tuple(value.shape) == (p.shape if reduction == "none" else ())
        assert_matches(
            backend.to_numpy(value), reduce(reference(p_, t_), reduction), dtype, what=f"{name} {reduction} ({dtype})"
        )
        _, grad = backend.value_and_grad(lambda q: xp.sum(xp.multiply(loss(q, target, reduction=reduction), w)))(
            backend.asarray(p, dtype)
        )
        expected = weights.astype(dtype) * reduction_weight(reduction, p.size) * derivative(p_, t_)
        assert_matches(backend.to_numpy(grad), expected, dtype, what=f"{name} {reduction} gradient ({dtype})")
        if dtype == "float64":
            np.testing.assert_allclose(backend.to_numpy(grad), finite_difference, atol=FINITE_DIFFERENCE_TOLERANCE)


def test_binary_cross_entropy_with_logits_extremes(backend):
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    expected = np.array([1000.0, 0.0, np.log(2.0), 0.0, 1000.0])  # softplus(x) - x t by hand
    for dtype in float_dtypes(backend):
        target = backend.asarray(t, dtype)
        value = losses.binary_cross_entropy_with_logits(backend.asarray(x, dtype), target, reduction="none")
        assert_matches(backend.to_numpy(value), expected, dtype)
        _, grad = backend.value_and_grad(lambda v: losses.binary_cross_entropy_with_logits(v, target, reduction="sum"))(
            backend.asarray(x, dtype)
        )
        assert_matches(backend.to_numpy(grad), [-1.0, 0.0, 0.0, 0.0, 1.0], dtype)


def test_binary_cross_entropy_clamps_log_at_minus_100(backend):
    """Probabilities of exactly 0 and 1: each log clamped at -100 (PyTorch's rule), finite gradients."""
    p = np.array([0.0, 1.0, 0.0, 1.0])
    t = np.array([1.0, 0.0, 0.0, 1.0])
    for dtype in float_dtypes(backend):
        target = backend.asarray(t, dtype)
        value = losses.binary_cross_entropy(backend.asarray(p, dtype), target, reduction="none")
        assert_matches(backend.to_numpy(value), [100.0, 100.0, 0.0, 0.0], dtype)
        _, grad = backend.value_and_grad(lambda q: losses.binary_cross_entropy(q, target))(backend.asarray(p, dtype))
        assert np.all(np.isfinite(backend.to_numpy(grad)))


# ---------------------------------------------------------- classification
def _log_softmax(z):
    return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


def _target_distribution(targets, smoothing):
    q = np.eye(C)[targets] if targets.ndim == 1 else targets
    return (1 - smoothing) * q + smoothing / C


def reference_cross_entropy(logits, targets, smoothing):
    return -np.sum(_target_distribution(targets, smoothing) * _log_softmax(logits), axis=1)


def reference_cross_entropy_gradient(logits, targets, smoothing):
    """d/d logits of the per-sample cross-entropy: softmax - q (q sums to 1 per row)."""
    return np.exp(_log_softmax(logits)) - _target_distribution(targets, smoothing)


def _classification_inputs():
    rng = np.random.default_rng(6)
    logits = rng.normal(scale=2, size=(N, C))
    labels = np.array([0, 3, 1, 1, 2])
    probabilities = rng.dirichlet(np.ones(C), size=N)
    return logits, labels, probabilities


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(backend, target_kind, smoothing, reduction):
    logits, labels, probabilities = _classification_inputs()
    targets = labels if target_kind == "labels" else probabilities
    xp = backend.xp
    weights = np.random.default_rng(7).uniform(0.5, 1.5, size=N) if reduction == "none" else np.ones(())
    objective = lambda z: np.sum(weights * reduce(reference_cross_entropy(z, targets, smoothing), reduction))  # noqa: E731
    finite_difference = central_difference(objective, logits)
    scale = reduction_weight(reduction, N) * np.reshape(weights, (-1, 1) if reduction == "none" else ())
    np.testing.assert_allclose(
        finite_difference,
        scale * reference_cross_entropy_gradient(logits, targets, smoothing),
        atol=FINITE_DIFFERENCE_TOLERANCE,
    )
    for dtype in float_dtypes(backend):
        z = logits.astype(dtype).astype(np.float64)
        q = targets if target_kind == "labels" else targets.astype(dtype).astype(np.float64)
        t = backend.asarray(labels) if target_kind == "labels" else backend.asarray(probabilities, dtype)
        w = backend.asarray(weights, dtype)
        value = losses.cross_entropy(backend.asarray(logits, dtype), t, label_smoothing=smoothing, reduction=reduction)
        assert backend.dtype_name(value.dtype) == dtype
        assert_matches(backend.to_numpy(value), reduce(reference_cross_entropy(z, q, smoothing), reduction), dtype)

        def weighted(v):
            return xp.sum(xp.multiply(losses.cross_entropy(v, t, label_smoothing=smoothing, reduction=reduction), w))

        _, grad = backend.value_and_grad(weighted)(backend.asarray(logits, dtype))
        expected = scale * reference_cross_entropy_gradient(z, q, smoothing)
        assert_matches(backend.to_numpy(grad), expected, dtype, what=f"cross_entropy gradient ({dtype})")
        if dtype == "float64":
            np.testing.assert_allclose(backend.to_numpy(grad), finite_difference, atol=FINITE_DIFFERENCE_TOLERANCE)


def test_cross_entropy_extreme_logits(backend):
    logits = np.array([[1000.0, -1000.0, 0.0, 0.0], [-1000.0, 1000.0, 1000.0, -1000.0]])
    labels = np.array([1, 2])
    expected = np.array([2000.0, np.log(2.0)])  # logsumexp - picked logit, by hand
    for dtype in float_dtypes(backend):
        y = backend.asarray(labels)
        value = losses.cross_entropy(backend.asarray(logits, dtype), y, reduction="none")
        assert_matches(backend.to_numpy(value), expected, dtype)
        _, grad = backend.value_and_grad(lambda v: losses.cross_entropy(v, y, reduction="sum"))(
            backend.asarray(logits, dtype)
        )
        assert_matches(backend.to_numpy(grad), [[1, -1, 0, 0], [0, 0.5, -0.5, 0]], dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll(backend, reduction):
    logits, labels, _ = _classification_inputs()
    log_probs = _log_softmax(logits)
    xp = backend.xp
    expected = -log_probs[np.arange(N), labels]
    for dtype in float_dtypes(backend):
        y = backend.asarray(labels)
        value = losses.nll(backend.asarray(log_probs, dtype), y, reduction=reduction)
        assert_matches(
            backend.to_numpy(value),
            reduce(-log_probs.astype(dtype).astype(np.float64)[np.arange(N), labels], reduction),
            dtype,
        )
        _, grad = backend.value_and_grad(lambda v: xp.sum(losses.nll(v, y, reduction=reduction)))(
            backend.asarray(log_probs, dtype)
        )
        assert_matches(backend.to_numpy(grad), -reduction_weight(reduction, N) * np.eye(C)[labels], dtype)
    assert expected.shape == (N,)


def test_nll_ignores_minus_infinity_elsewhere(backend):
    """A log-probability of -inf in a class that is not the label changes nothing (no 0 * inf)."""
    log_probs = np.array([[np.log(0.5), np.log(0.5), -np.inf], [-np.inf, np.log(0.25), np.log(0.75)]])
    y = backend.asarray(np.array([1, 2]))
    for dtype in float_dtypes(backend):
        value = losses.nll(backend.asarray(log_probs, dtype), y, reduction="none")
        assert_matches(backend.to_numpy(value), [np.log(2.0), -np.log(0.75)], dtype)


# --------------------------------------------------------------- errors
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_column_against_vector_is_a_shape_error(backend, name):
    """Predictions (N, 1) with targets (N,) must not broadcast to (N, N)."""
    loss = ELEMENTWISE[name][0]
    p = backend.asarray(np.full((N, 1), 0.5), "float32")
    t = backend.asarray(np.full((N,), 0.5), "float32")
    with pytest.raises(portable_dl.ShapeError, match=r"\(5, 1\).*\(5,\)"):
        loss(p, t, reduction="mean")


def test_classification_shape_errors(backend):
    logits = backend.asarray(np.zeros((N, C)), "float32")
    with pytest.raises(portable_dl.ShapeError, match=r"\(5, 1\).*\(5, 4\)"):
        losses.cross_entropy(logits, backend.asarray(np.zeros((N, 1), dtype="int32")))
    with pytest.raises(portable_dl.ShapeError, match=r"\(5, 5\).*\(5, 4\)"):
        losses.cross_entropy(logits, backend.asarray(np.zeros((N, N)), "float32"))
    with pytest.raises(portable_dl.ShapeError, match=r"\(4,\)"):
        losses.cross_entropy(backend.asarray(np.zeros(C), "float32"), backend.asarray(np.zeros(1, dtype="int32")))
    with pytest.raises(portable_dl.ShapeError, match=r"\(3,\).*\(5, 4\)"):
        losses.nll(logits, backend.asarray(np.zeros(3, dtype="int32")))
    with pytest.raises(portable_dl.DTypeError):
        losses.nll(logits, backend.asarray(np.zeros(N), "float32"))


@pytest.mark.parametrize("bad_label", [-1, C])
@pytest.mark.parametrize("loss", [losses.cross_entropy, losses.nll], ids=["cross_entropy", "nll"])
def test_labels_out_of_range(backend, loss, bad_label):
    logits = backend.asarray(np.zeros((N, C)), "float32")
    labels = backend.asarray(np.array([0, 1, bad_label, 2, 3], dtype="int32"))
    with pytest.raises(ValueError, match=rf"\[0, {C}\).*{bad_label}"):
        loss(logits, labels)


def test_labels_out_of_range_when_compiled(backend):
    """Compiled, the labels may be symbolic: then the loss is NaN instead of an error."""
    logits = backend.asarray(np.zeros((N, C)), "float32")
    labels = backend.asarray(np.array([0, 1, C, 2, 3], dtype="int32"))
    compiled = backend.compile(lambda z, y: losses.cross_entropy(z, y))
    try:
        value = backend.to_numpy(compiled(logits, labels))
    except ValueError as error:
        assert f"[0, {C})" in str(error)
    else:
        assert np.isnan(value)


def test_invalid_arguments(backend):
    p = backend.asarray(np.zeros((2, 2)), "float32")
    with pytest.raises(ValueError, match="reduction"):
        losses.mse(p, p, reduction="average")
    with pytest.raises(ValueError, match="delta"):
        losses.huber(p, p, delta=0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.cross_entropy(p, p, label_smoothing=1.5)


def test_l2_penalty(backend):
    rng = np.random.default_rng(8)
    tree = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,)), "frozen": None}
    lam = 0.3
    for dtype in float_dtypes(backend):
        params = {"W": backend.asarray(tree["W"], dtype), "b": backend.asarray(tree["b"], dtype), "frozen": None}
        value, grads = backend.value_and_grad(lambda q: losses.l2_penalty(q, lam))(params)
        as_dtype = {k: v.astype(dtype).astype(np.float64) for k, v in tree.items() if v is not None}
        assert_matches(backend.to_numpy(value), lam * sum(np.sum(v**2) for v in as_dtype.values()), dtype)
        assert grads["frozen"] is None
        for key in ("W", "b"):
            assert_matches(backend.to_numpy(grads[key]), 2 * lam * as_dtype[key], dtype)


def test_losses_compile(backend):
    """The losses and their gradients trace under the backend's compiler and match eager."""
    logits, labels, _ = _classification_inputs()
    z = backend.asarray(logits, "float32")
    y = backend.asarray(labels)
    t = backend.asarray(np.eye(C)[labels], "float32")

    def objective(v, y_, t_):
        return backend.xp.add(
            losses.cross_entropy(v, y_, label_smoothing=0.1), losses.binary_cross_entropy_with_logits(v, t_)
        )

    step = backend.value_and_grad(objective)
    (value, grad), (eager_value, eager_grad) = backend.compile(step)(z, y, t), step(z, y, t)
    assert_matches(backend.to_numpy(value), backend.to_numpy(eager_value), "float32", count=8)
    assert_matches(backend.to_numpy(grad), backend.to_numpy(eager_grad), "float32", count=8)
