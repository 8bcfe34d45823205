"""Bad data never corrupts a model: fit refuses non-finite data and out-of-range labels
before training, stops on a non-finite update that the loss does not show, and trains on
float64 targets in the model's dtype; the same on every backend, eager and compiled."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

from portable_dl.errors import DTypeError
from portable_dl.losses import cross_entropy, mse
from portable_dl.nn import MLP
from portable_dl.optimizers import SGD
from portable_dl.training import TrainingDiverged, evaluate, fit

COMPILE = pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])


def classification_data(n=24, features=5, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = rng.integers(0, classes, size=n).astype(np.int64)
    return x, y


def fit_mlp(backend, x, y, compile=False, **options):
    """An MLP[5, 6, 4] with relu, SGD(0.1), batches of 8, from seed-0 weights."""
    net = MLP([5, 6, 4])
    params = net.init(0, backend)
    return params, fit(
        net,
        params,
        cross_entropy,
        SGD(0.1),
        backend,
        x,
        y,
        epochs=1,
        batch_size=8,
        seed=0,
        compile=compile,
        verbose=0,
        **options,
    )


# ------------------------------------------------------------- non-finite data
@pytest.mark.parametrize(
    "what, row, value",
    [("x", 13, np.nan), ("x", 0, -np.inf), ("validation x", 5, np.inf), ("y", 21, np.nan), ("validation y", 2, np.nan)],
)
def test_non_finite_data_is_refused_before_training_naming_array_and_row(backend, what, row, value):
    """The issue's case first: a NaN in x through relu (where(x > 0, x, 0) maps it to 0)
    gives a finite loss and a NaN first layer; fit must refuse the data instead."""
    x, labels = classification_data()
    x_val, labels_val = classification_data(n=12, seed=1)
    arrays = {
        "x": x.copy(),
        "validation x": x_val.copy(),
        "y": np.eye(4)[labels],
        "validation y": np.eye(4)[labels_val],
    }
    arrays[what][row, 1] = value
    arrays[what][row + 1, 0] = value  # a second bad row: the message names the first
    net = MLP([5, 6, 4])
    params = net.init(0, backend)
    before = [backend.to_numpy(layer["W"]).copy() for layer in params["layers"]]
    message = (
        f"fit: {what} holds NaN or infinite values in 2 of {len(arrays[what])} rows, the first in row {row} "
        f"({value}); remove or repair those rows before training"
    )
    with pytest.raises(ValueError) as caught:
        fit(
            net,
            params,
            cross_entropy,
            SGD(0.1),
            backend,
            arrays["x"],
            arrays["y"],
            epochs=1,
            batch_size=8,
            validation_data=(arrays["validation x"], arrays["validation y"]),
            compile=False,
            verbose=0,
        )
    assert str(caught.value) == message
    for layer, W in zip(params["layers"], before):
        assert np.array_equal(backend.to_numpy(layer["W"]), W)


# ------------------------------------------- divergence seen in the parameters
def linear_apply(params, x):
    from portable_dl import backend_of

    xp = backend_of(x).xp
    return xp.add(xp.matmul(x, params["W"]), params["b"])


def log_features_apply(params, x):
    """``relu(log(x) W1 + b1) W2 + b2``: a model that makes a NaN from finite data (the log of
    a negative value). relu (``where(z > 0, z, 0)``) maps that row's NaN to 0, so the output
    and the loss stay finite while ``dW1 = log(x)^T dz`` is NaN: the issue's case, from inside
    the model, where no check of the data can see it."""
    from portable_dl import backend_of

    xp = backend_of(x).xp
    z = xp.add(xp.matmul(xp.log(x), params["W1"]), params["b1"])
    hidden = xp.where(xp.greater(z, 0), z, xp.zeros_like(z))
    return xp.add(xp.matmul(hidden, params["W2"]), params["b2"])


def log_features_sgd_by_hand(params, x, y, lr, steps, batch_size):
    """The same model under plain SGD on mse, in NumPy float64, without shuffling."""
    params = {name: value.astype(np.float64) for name, value in params.items()}
    for start in range(0, steps * batch_size, batch_size):
        features, targets = np.log(x[start : start + batch_size]), y[start : start + batch_size]
        z = features @ params["W1"] + params["b1"]
        hidden = np.where(z > 0, z, 0.0)
        d_output = 2 * (hidden @ params["W2"] + params["b2"] - targets) / targets.size
        d_z = (d_output @ params["W2"].T) * (z > 0)
        grads = {"W1": features.T @ d_z, "b1": d_z.sum(0), "W2": hidden.T @ d_output, "b2": d_output.sum(0)}
        params = {name: params[name] - lr * grads[name] for name in params}
    return params


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy's log(-1) and NaN gradient
@pytest.mark.parametrize("check_every", [None, 1], ids=["per-epoch", "every-step"])
@COMPILE
def test_a_nan_gradient_under_a_finite_loss_raises_with_the_last_good_parameters(backend, compile, check_every):
    """Three batches of 8 without shuffling; the last holds the negative input. Before,
    fit returned a NaN W1 with a finite history: the loss never showed it."""
    rng = np.random.default_rng(4)
    x = (np.abs(rng.normal(size=(24, 3))) + 0.5).astype(np.float32)
    x[19, 1] = -1.0
    y = rng.normal(size=(24, 2)).astype(np.float32)
    params0 = {
        "W1": rng.normal(size=(3, 4)),
        "b1": rng.normal(size=(4,)),
        "W2": rng.normal(size=(4, 2)),
        "b2": rng.normal(size=(2,)),
    }
    params0 = {name: value.astype(np.float32) for name, value in params0.items()}
    params = {name: backend.asarray(value) for name, value in params0.items()}
    with pytest.raises(TrainingDiverged, match="updated parameter became nan") as caught:
        fit(
            log_features_apply,
            params,
            mse,
            SGD(0.05),
            backend,
            x,
            y,
            epochs=1,
            batch_size=8,
            shuffle=False,
            compile=compile,
            check_every=check_every,
            verbose=0,
        )
    error = caught.value
    good_steps = 0 if check_every is None else 2
    assert error.step == good_steps and error.epoch == 0 and error.history == {"loss": []}
    expected = log_features_sgd_by_hand(params0, x, y, 0.05, good_steps, 8)
    for name in expected:
        assert_close(backend.to_numpy(error.params[name]), expected[name], "float32", scale=10, what=name)


class Overflowing:
    """An optimizer whose update overflows float32: ``p - (g * 1e30) * 1e30`` is +-inf."""

    def init(self, params):
        return {}

    def update(self, grads, state, params):
        from portable_dl import backend_of

        xp = backend_of(grads["W"]).xp
        return {
            name: xp.subtract(params[name], xp.multiply(xp.multiply(grads[name], 1e30), 1e30)) for name in params
        }, state


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy on the overflowing update
@COMPILE
def test_an_update_that_overflows_under_a_finite_loss_raises(backend, compile):
    """One step whose loss is finite (it is computed before the update) and whose update is
    +-inf: fit raised nothing before and returned infinite parameters."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)
    params0 = {"W": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=(2,)).astype(np.float32)}
    params = {name: backend.asarray(value) for name, value in params0.items()}
    with pytest.raises(TrainingDiverged, match="updated parameter became nan") as caught:
        fit(linear_apply, params, mse, Overflowing(), backend, x, y, epochs=1, batch_size=8, compile=compile, verbose=0)
    assert caught.value.step == 0
    for name, value in params0.items():
        assert np.array_equal(backend.to_numpy(caught.value.params[name]), value)
    # The same run with a finite update returns finite parameters: the check passes them.
    result = fit(
        linear_apply, params, mse, SGD(0.05), backend, x, y, epochs=1, batch_size=8, compile=compile, verbose=0
    )
    assert all(np.all(np.isfinite(backend.to_numpy(result.params[name]))) for name in params0)


# ----------------------------------------------------------- labels out of range
@pytest.mark.parametrize("where, bad", [("y", 4), ("y", -1), ("validation y", 4)])
@COMPILE
def test_labels_outside_the_model_outputs_are_refused_alike_eager_and_compiled(backend, compile, where, bad):
    """Label 4 with 4 classes, or -1: the same ValueError on every backend, before any step
    (compiled, the losses cannot check labels; before, four backends trained on)."""
    x, y = classification_data()
    x_val, y_val = classification_data(n=12, seed=1)
    labels = {"y": y.copy(), "validation y": y_val.copy()}
    labels[where][[9, 17 if where == "y" else 10]] = bad
    expected = (
        f"fit: {where} holds class labels outside [0, 4) for a model with 4 outputs: 2 of "
        f"{len(labels[where])}, the first in row 9 ({bad})"
    )
    with pytest.raises(ValueError) as caught:
        fit_mlp(backend, x, labels["y"], compile=compile, validation_data=(x_val, labels["validation y"]))
    assert str(caught.value) == expected


def test_labels_on_the_edges_train(backend):
    """Labels 0 and C - 1 are classes: fit trains on them (an off-by-one check would refuse 3)."""
    x, y = classification_data()
    y[:12], y[12:] = 0, 3
    _, result = fit_mlp(backend, x, y)
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])


# ---------------------------------------------------------------- target dtype
@COMPILE
def test_float64_targets_train_a_float32_model_in_float32(backend, compile):
    """NumPy's default float64 targets: cast to the model's float32 on every backend (JAX,
    without x64, raised DTypeError before; the others computed in float64). The run equals
    the run on float32 targets bit for bit, and a by-hand float64 run to float32 rounding."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y64 = rng.normal(size=(16, 2))  # float64
    params0 = {"W": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=(2,)).astype(np.float32)}

    def run(targets):
        params = {name: backend.asarray(value) for name, value in params0.items()}
        return fit(
            linear_apply,
            params,
            mse,
            SGD(0.05),
            backend,
            x,
            targets,
            epochs=1,
            batch_size=8,
            shuffle=False,
            compile=compile,
            verbose=0,
            validation_data=(x, targets),
        )

    result64, result32 = run(y64), run(y64.astype(np.float32))
    for name in params0:
        assert backend.dtype_name(result64.params[name].dtype) == "float32"
        assert np.array_equal(backend.to_numpy(result64.params[name]), backend.to_numpy(result32.params[name]))
    assert result64.history == result32.history
    W, b = params0["W"].astype(np.float64), params0["b"].astype(np.float64)
    target = y64.astype(np.float32).astype(np.float64)
    total = 0.0
    for start in (0, 8):
        residual = x[start : start + 8] @ W + b - target[start : start + 8]
        total += np.mean(residual**2) * 8
        scale = 0.05 * 2 / residual.size
        W, b = W - scale * x[start : start + 8].T @ residual, b - scale * residual.sum(0)
    assert_close(result64.history["loss"], [total / 16], "float32", scale=10, what="epoch loss")
    assert_close(backend.to_numpy(result64.params["W"]), W, "float32", scale=10, what="W")
    scores = evaluate(linear_apply, result64.params, mse, backend, x, y64)
    assert_close(scores["loss"], np.mean((x @ W + b - target) ** 2), "float32", scale=10, what="evaluate")
    assert scores == evaluate(linear_apply, result64.params, mse, backend, x, y64.astype(np.float32))


@pytest.mark.parametrize(
    "loss", ["mse", "mae", "huber", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy"]
)
def test_losses_refuse_targets_of_another_floating_dtype(backend, loss):
    """The same DTypeError on every backend that has float64 (JAX without x64 has none)."""
    from portable_dl import losses

    other = "float64"
    if not backend.supports(other):
        pytest.skip(f"{backend.name} has no {other} here")
    predictions = backend.asarray(np.full((3, 2), 0.25, np.float32))
    targets = backend.asarray(np.full((3, 2), 0.5, other))
    expected = (
        f"{loss}: targets of dtype {other} for predictions of dtype float32; a loss computes in one floating "
        "dtype: cast the targets to float32 (fit and evaluate do)"
    )
    with pytest.raises(DTypeError) as caught:
        getattr(losses, loss)(predictions, targets)
    assert str(caught.value) == expected
    same = getattr(losses, loss)(predictions, backend.asarray(np.full((3, 2), 0.5, np.float32)))
    assert backend.dtype_name(same.dtype) == "float32"
