"""make_train_step and fit on every backend, against steps computed by hand in NumPy float64,
and a real training run on MNIST."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_mnist
from helpers import assert_close

from portable_dl import PortableDLError
from portable_dl.data import load_mnist
from portable_dl.training import EarlyStopping, TrainingDiverged, evaluate, fit, make_train_step, predict

LEARNING_RATE, MOMENTUM = 0.1, 0.9


# ------------------------------------------------------- a tiny linear model, by hand
def linear_apply(params, x):
    """x (N, 3) @ W (3, 2) + b (2,)."""
    xp = _xp_of(x)
    return xp.add(xp.matmul(x, params["W"]), params["b"])


def mean_squared_error(predictions, targets):
    xp = _xp_of(predictions)
    difference = xp.subtract(predictions, targets)
    return xp.mean(xp.multiply(difference, difference))


def linear_loss(params, batch):
    x, y = batch
    return mean_squared_error(linear_apply(params, x), y)


def _xp_of(x):
    import portable_dl

    return portable_dl.backend_of(x).xp


def linear_problem(seed=0, n=8):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))}
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    return params, x, y


def numpy_gradients(params, x, y):
    """d/dW and d/db of mean((x W + b - y)^2) over N * 2 entries, in float64."""
    residual = x @ params["W"] + params["b"] - y
    scale = 2.0 / residual.size
    return {"W": scale * x.T @ residual, "b": scale * residual.sum(axis=0)}


def numpy_sgd_momentum_steps(params, x, y, steps, frozen=()):
    """torch.optim.SGD(lr, momentum): buf = g at the first step, then mu buf + g; p -= lr buf."""
    params = {k: v.copy() for k, v in params.items()}
    buffers, losses = {}, []
    for _ in range(steps):
        losses.append(np.mean((x @ params["W"] + params["b"] - y) ** 2))
        grads = numpy_gradients(params, x, y)
        for name in params:
            if name in frozen:
                continue
            buffers[name] = grads[name] if name not in buffers else MOMENTUM * buffers[name] + grads[name]
            params[name] = params[name] - LEARNING_RATE * buffers[name]
    return params, losses


def to_backend(backend, tree, dtype="float32"):
    return {k: backend.asarray(np.asarray(v).astype(dtype)) for k, v in tree.items()}


# ------------------------------------------------------------------ make_train_step
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_train_step_matches_sgd_momentum_by_hand(backend, compile):
    from portable_dl.optimizers import SGD

    params0, x, y = linear_problem()
    expected, expected_losses = numpy_sgd_momentum_steps(params0, x, y, steps=3)
    step = make_train_step(linear_loss, SGD(LEARNING_RATE, momentum=MOMENTUM), backend, compile=compile)
    params = to_backend(backend, params0)
    state = step.init(params)
    batch = (backend.asarray(x.astype("float32")), backend.asarray(y.astype("float32")))
    losses = []
    for _ in range(3):
        params, state, loss = step(params, state, batch)
        losses.append(float(backend.to_numpy(loss)))
    assert_close(losses, expected_losses, "float32", scale=10, what="losses")
    for name in expected:
        assert_close(backend.to_numpy(params[name]), expected[name], "float32", scale=10, what=name)


def test_frozen_parameters_stay_bit_identical(backend):
    from portable_dl.nn import trainable_mask
    from portable_dl.optimizers import SGD

    params0, x, y = linear_problem(seed=1)
    expected, _ = numpy_sgd_momentum_steps(params0, x, y, steps=2, frozen=("b",))
    params = to_backend(backend, params0)
    frozen_bias = backend.to_numpy(params["b"]).copy()
    mask = trainable_mask(params, frozen=["b"])
    step = make_train_step(linear_loss, SGD(LEARNING_RATE, momentum=MOMENTUM), backend, trainable=mask)
    state = step.init(params)
    batch = (backend.asarray(x.astype("float32")), backend.asarray(y.astype("float32")))
    for _ in range(2):
        params, state, _ = step(params, state, batch)
    assert backend.to_numpy(params["b"]).tobytes() == frozen_bias.tobytes()
    assert_close(backend.to_numpy(params["W"]), expected["W"], "float32", scale=10, what="W")


def test_failed_step_leaves_state_unchanged(backend):
    from portable_dl.optimizers import SGD

    params0, x, y = linear_problem()
    step = make_train_step(linear_loss, SGD(LEARNING_RATE, momentum=MOMENTUM), backend, compile=False)
    params = to_backend(backend, params0)
    state = step.init(params)
    before = {k: backend.to_numpy(v).copy() for k, v in params.items()}
    bad_batch = (backend.asarray(np.ones((8, 4), "float32")), backend.asarray(y.astype("float32")))
    with pytest.raises(ValueError, match=r"\(8, 4\)"):
        step(params, state, bad_batch)
    for name in before:
        assert np.array_equal(backend.to_numpy(params[name]), before[name])
    assert int(backend.to_numpy(state["step"])) == 0


# ------------------------------------------------------------------------------- fit
def regression_data(n=48, seed=3):
    rng = np.random.default_rng(seed)
    true_W = rng.normal(size=(3, 2))
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ true_W).astype("float32"), true_W


def fit_linear(backend, x, y, epochs, **options):
    """Plain SGD(0.05) on the linear model from linear_problem's parameters, batches of 8."""
    from portable_dl.optimizers import SGD

    params0, _, _ = linear_problem()
    options = {"compile": False, "seed": 11, **options}
    return fit(
        linear_apply,
        to_backend(backend, params0),
        mean_squared_error,
        SGD(0.05),
        backend,
        x,
        y,
        epochs=epochs,
        batch_size=8,
        verbose=0,
        **options,
    )


def test_fit_with_the_same_seed_gives_the_same_history(backend):
    x, y, _ = regression_data()
    first = fit_linear(backend, x, y, epochs=3, validation_data=(x[:16], y[:16]))
    second = fit_linear(backend, x, y, epochs=3, validation_data=(x[:16], y[:16]))
    assert first.history == second.history
    assert len(first.history["loss"]) == len(first.history["val_loss"]) == 3
    assert first.history["loss"][-1] < first.history["loss"][0]
    for name in first.params:
        assert np.array_equal(backend.to_numpy(first.params[name]), backend.to_numpy(second.params[name]))
    # Another seed visits the batches in another order, so the trajectory differs.
    other = fit_linear(backend, x, y, epochs=3, validation_data=(x[:16], y[:16]), seed=12)
    assert other.history["loss"] != first.history["loss"]


def test_fit_epoch_loss_is_the_mean_over_examples_of_a_by_hand_run(backend):
    """Without shuffling, one epoch of plain SGD in NumPy float64 gives the same history."""
    x, y, _ = regression_data(n=20)
    result = fit_linear(backend, x, y, epochs=1, shuffle=False, validation_data=(x, y))
    params, _, _ = linear_problem()
    params = {k: v.astype(np.float64) for k, v in params.items()}
    weighted = 0.0
    for start in range(0, 20, 8):  # batches of 8, 8 and 4
        xb, yb = x[start : start + 8].astype(np.float64), y[start : start + 8].astype(np.float64)
        weighted += np.mean((xb @ params["W"] + params["b"] - yb) ** 2) * len(xb)
        grads = numpy_gradients(params, xb, yb)
        params = {k: params[k] - 0.05 * grads[k] for k in params}
    assert_close(result.history["loss"], [weighted / 20], "float32", scale=10, what="epoch loss")
    validation = np.mean((x @ params["W"] + params["b"] - y) ** 2)
    assert_close(result.history["val_loss"], [validation], "float32", scale=10, what="val loss")
    assert_close(
        predict(linear_apply, result.params, backend, x),
        x @ params["W"] + params["b"],
        "float32",
        scale=10,
        what="predict",
    )


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy on the inf loss
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("check_every", [None, 1], ids=["per-epoch", "every-step"])
def test_nan_loss_raises_training_diverged_with_the_last_good_parameters(backend, check_every):
    from portable_dl.optimizers import SGD

    x, y, _ = regression_data(n=32)
    y = y.copy()
    # In the third batch of 8 (steps 1, 2 are finite): (p - 1e30)^2 overflows float32 to inf.
    # (A NaN in the data itself is refused before training: see test_fit_safety.py.)
    y[17] = 1e30
    with pytest.raises(TrainingDiverged, match="became (nan|inf)") as caught:
        fit_linear(backend, x, y, epochs=2, shuffle=False, check_every=check_every)
    error = caught.value
    assert isinstance(error, PortableDLError)
    good_steps = 0 if check_every is None else 2
    assert error.step == good_steps and error.epoch == 0 and error.history == {"loss": []}
    step = make_train_step(
        lambda p, b: mean_squared_error(linear_apply(p, b[0]), b[1]), SGD(0.05), backend, compile=False
    )
    params0, _, _ = linear_problem()
    params = to_backend(backend, params0)
    state = step.init(params)
    for start in range(0, 8 * good_steps, 8):
        batch = (backend.asarray(x[start : start + 8]), backend.asarray(y[start : start + 8]))
        params, state, _ = step(params, state, batch)
    for name in params:
        expected = backend.to_numpy(params[name])
        assert np.all(np.isfinite(backend.to_numpy(error.params[name])))
        assert np.array_equal(backend.to_numpy(error.params[name]), expected)


def test_early_stopping_restores_the_best_epoch(backend):
    """Validation targets are the negated training targets: every epoch that fits the
    training data better fits the validation data worse, so the first epoch is the best."""
    x, y, _ = regression_data()
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    result = fit_linear(backend, x, y, epochs=10, validation_data=(x, -y), early_stopping=stopper)
    assert result.stopped_early and result.best_epoch == 0
    assert len(result.history["val_loss"]) == 3  # the best epoch, then `patience` worse ones
    assert result.history["val_loss"][0] < result.history["val_loss"][1] < result.history["val_loss"][2]
    one_epoch = fit_linear(backend, x, y, epochs=1)
    for name in result.params:
        assert np.array_equal(backend.to_numpy(result.params[name]), backend.to_numpy(one_epoch.params[name]))


def test_fit_rejects_bad_arguments(backend):
    x, y, _ = regression_data(n=8)
    with pytest.raises(ValueError, match="batch_size"):
        fit(linear_apply, {}, mean_squared_error, None, backend, x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"\(8, 3\) and \(7, 2\)"):
        fit_linear(backend, x, y[:7], epochs=1)
    with pytest.raises(ValueError, match="val_loss"):
        fit_linear(backend, x, y, epochs=1, early_stopping=EarlyStopping())
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="largest")


# ----------------------------------------------------------------------------- MNIST
@pytest.fixture(scope="module")
def small_mnist():
    """2000 training and 1000 test images scaled to [0, 1], flattened; skipped without the files."""
    x_train, y_train, x_test, y_test = load_mnist(require_mnist(), download=False)
    flatten = lambda images: images.reshape(len(images), -1).astype(np.float32) / 255.0
    return flatten(x_train[:2000]), y_train[:2000], flatten(x_test[:1000]), y_test[:1000]


def test_mlp_learns_mnist(backend, small_mnist):
    from portable_dl.losses import cross_entropy
    from portable_dl.nn import MLP
    from portable_dl.optimizers import Adam

    x_train, y_train, x_test, y_test = small_mnist
    model = MLP([784, 128, 10])
    params = model.init(seed=0, backend=backend)
    before = evaluate(model, params, cross_entropy, backend, x_test, y_test, metrics=["accuracy"])
    result = fit(
        model,
        params,
        cross_entropy,
        Adam(1e-3),
        backend,
        x_train,
        y_train,
        epochs=2,
        batch_size=32,
        validation_data=(x_test, y_test),
        metrics=["accuracy"],
        verbose=0,
    )
    logits = predict(model, result.params, backend, x_test)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))  # independent of portable_dl.metrics
    assert accuracy > 0.8, f"test accuracy {accuracy:.3f} after two epochs on 2000 images"
    assert result.history["val_accuracy"][-1] == pytest.approx(accuracy)
    assert before["accuracy"] < 0.3 and result.history["val_loss"][-1] < before["loss"] / 2
