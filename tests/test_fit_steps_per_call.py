"""fit(steps_per_call=k) and fit(data_on_device=...): fewer calls and fewer copies, the same run.

23 examples in batches of 4 make 5 full batches and a short one of 3; with k = 3 an epoch is
one call of 3 stacked batches, then single steps for the 2 full batches left and the short one.
The references are the run with k = 1 on the host (another code path: no stacking, no scan,
no gather on the device, itself checked against NumPy float64 in test_training.py), a plain
SGD run by hand in NumPy float64, and call boundaries worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

from portable_dl import fit_batches, training
from portable_dl.data import shuffled_order
from portable_dl.fit_batches import DeviceData, HostData, call_plan, moves_data, placed_data
from portable_dl.losses import cross_entropy
from portable_dl.nn import MLP
from portable_dl.optimizers import SGD, Adam
from portable_dl.registry import backend_of
from portable_dl.training import EarlyStopping, TrainingDiverged, fit, make_train_step
from portable_dl.tree import tree_leaves, tree_paths

MODEL = MLP([5, 7, 4])  # small: MLX matmul on a Linux CPU is slow
COUNT, BATCH = 23, 4


def classification_data(count=COUNT, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, 5)).astype("float32"), rng.integers(0, 4, size=count)


def fit_mlp(backend, x, y, **options):
    options = {"epochs": 2, "batch_size": BATCH, "seed": 5, "verbose": 0, **options}
    return fit(MODEL, MODEL.init(1, backend), cross_entropy, Adam(0.05), backend, x, y, **options)


def mse(predictions, wanted):
    """The mean squared error, written out in the predictions' namespace (a loss that needs no
    labels: the tests below plant huge targets to make a run diverge)."""
    xp = backend_of(predictions).xp
    return xp.mean(xp.square(xp.subtract(predictions, wanted)))


def assert_same_run(backend, actual, expected, exact, what):
    """Same history and parameters: bit for bit when ``exact``, else within float32 rounding."""
    if exact:
        assert actual.history == expected.history, what
    else:
        for name, values in expected.history.items():
            assert_close(actual.history[name], values, "float32", scale=10, what=f"{what} {name}")
    assert tree_paths(actual.params) == tree_paths(expected.params)
    for name, a, e in zip(tree_paths(actual.params), tree_leaves(actual.params), tree_leaves(expected.params)):
        a, e = backend.to_numpy(a), backend.to_numpy(e)
        if exact:
            assert a.tobytes() == e.tobytes(), f"{what} {name}: not bit-identical"
        else:
            assert_close(a, e, "float32", scale=10, what=f"{what} {name}")


# ------------------------------------------------------------------ the calls of an epoch
def test_call_plan_groups_full_batches_and_leaves_the_rest_to_single_steps():
    # (first row, steps, rows per batch): 5 full batches of 4 and a short one of 3.
    assert list(call_plan(23, 4, 3)) == [(0, 3, 4), (12, 1, 4), (16, 1, 4), (20, 1, 3)]
    assert list(call_plan(23, 4, 1)) == [(0, 1, 4), (4, 1, 4), (8, 1, 4), (12, 1, 4), (16, 1, 4), (20, 1, 3)]
    assert list(call_plan(23, 4, 5)) == [(0, 5, 4), (20, 1, 3)]
    assert list(call_plan(23, 4, 6)) == list(call_plan(23, 4, 1))  # never 6 full batches
    assert list(call_plan(24, 4, 3)) == [(0, 3, 4), (12, 3, 4)]  # no remainder
    # Resumed at batch 1 (say, saved by a run with k = 1): grouping starts there.
    assert list(call_plan(23, 4, 3, skip=1)) == [(4, 3, 4), (16, 1, 4), (20, 1, 3)]
    assert list(call_plan(23, 4, 3, skip=6)) == []


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_batches_cut_on_the_device_are_those_cut_on_the_host(backend, shuffle):
    x, y = classification_data()
    order = shuffled_order(COUNT, shuffle, np.random.default_rng(2))
    host, device = HostData(x, y, backend, "float32"), DeviceData(x, y, backend, "float32")
    rows = order if order is not None else np.arange(COUNT)
    for start, steps, size in [(0, 3, 4), (12, 1, 4), (20, 1, 3)]:
        expected_x = x[rows[start : start + steps * size]]
        expected_y = y[rows[start : start + steps * size]]
        if steps > 1:
            expected_x, expected_y = expected_x.reshape(steps, size, 5), expected_y.reshape(steps, size)
        for where, (bx, by) in [
            ("host", host.cut(order, start, steps, size)),
            ("device", device.cut(order, start, steps, size)),
        ]:
            bx, by = backend.to_numpy(bx), backend.to_numpy(by)
            assert bx.dtype == np.float32 and bx.tobytes() == expected_x.tobytes(), where
            assert by.shape == expected_y.shape and np.array_equal(by, expected_y), where


def test_auto_moves_the_data_to_an_accelerator_when_it_fits(backend, monkeypatch):
    # x in float32 is 23 * 5 * 4 = 460 bytes and y (int64) 184: 644 bytes together.
    x, y = classification_data()
    monkeypatch.setattr(fit_batches, "DEVICE_DATA_LIMIT", 644)
    assert moves_data("cuda:0", 644) and moves_data("gpu", 644) and moves_data("mps", 10)
    assert not moves_data("cuda:0", 645)
    assert not moves_data("cpu", 644) and not moves_data("CPU:0", 1)  # the data already is there
    expected = DeviceData if moves_data(str(backend.device), 644) else HostData
    assert isinstance(placed_data(x, y, backend, "float32", "auto"), expected)
    monkeypatch.setattr(fit_batches, "DEVICE_DATA_LIMIT", 643)
    assert isinstance(placed_data(x, y, backend, "float32", "auto"), HostData)
    assert isinstance(placed_data(x, y, backend, "float32", True), DeviceData)
    assert isinstance(placed_data(x, y, backend, "float32", False), HostData)


# ------------------------------------------------------------------ the same run as k = 1
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_k_steps_per_call_give_the_run_of_single_steps(backend, compile):
    x, y = classification_data()
    single = fit_mlp(backend, x, y, compile=compile, steps_per_call=1, data_on_device=False)
    assert len(single.history["loss"]) == 2 and single.history["loss"][1] < single.history["loss"][0]
    exact = backend.name == "numpy"
    for on_device in (False, True):
        stacked = fit_mlp(backend, x, y, compile=compile, steps_per_call=3, data_on_device=on_device)
        assert_same_run(backend, stacked, single, exact, f"k=3, data_on_device={on_device}")


def test_data_on_the_device_gives_the_run_of_data_on_the_host(backend):
    """The rows are copied, not computed: the same batches, so the same run, bit for bit."""
    x, y = classification_data()
    validation = classification_data(9, seed=1)
    options = {"compile": False, "validation_data": validation, "metrics": ["accuracy"]}
    for shuffle in (True, False):
        host = fit_mlp(backend, x, y, shuffle=shuffle, data_on_device=False, **options)
        device = fit_mlp(backend, x, y, shuffle=shuffle, data_on_device=True, **options)
        assert_same_run(backend, device, host, exact=True, what=f"shuffle={shuffle}")
    # Another seed shuffles otherwise: the comparison above can tell batches apart.
    other = fit_mlp(backend, x, y, seed=6, data_on_device=True, **options)
    assert other.history["loss"] != host.history["loss"]


def test_epoch_loss_and_parameters_match_sgd_by_hand(backend):
    """Without shuffling, k = 2 over 20 examples in batches of 8: one call of batches 1-2,
    then the short batch of 4 on the single step; plain SGD in NumPy float64 by hand."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 3)).astype("float32")
    y = (x @ rng.normal(size=(3, 2))).astype("float32")
    W0 = rng.normal(size=(3, 2)).astype("float32")
    b0 = np.array([0.1, -0.2], dtype="float32")

    def apply(params, inputs):
        return backend.xp.add(backend.xp.matmul(inputs, params["W"]), params["b"])

    result = fit(
        apply,
        {"W": backend.asarray(W0), "b": backend.asarray(b0)},
        mse,
        SGD(0.05),
        backend,
        x,
        y,
        epochs=1,
        batch_size=8,
        shuffle=False,
        steps_per_call=2,
        verbose=0,
    )
    W, b, weighted = W0.astype(np.float64), b0.astype(np.float64), 0.0
    for start in (0, 8, 16):
        xb, yb = x[start : start + 8].astype(np.float64), y[start : start + 8].astype(np.float64)
        residual = xb @ W + b - yb
        weighted += np.mean(residual**2) * len(xb)
        gradient = 2 * residual / residual.size
        W, b = W - 0.05 * xb.T @ gradient, b - 0.05 * gradient.sum(axis=0)
    assert_close(result.history["loss"], [weighted / 20], "float32", scale=10, what="epoch loss")
    assert_close(backend.to_numpy(result.params["W"]), W, "float32", scale=10, what="W")
    assert_close(backend.to_numpy(result.params["b"]), b, "float32", scale=10, what="b")


def test_early_stopping_with_k_steps_per_call(backend):
    """Validation targets are shuffled labels, so validation soon stops improving; the run
    stops, and restores its best epoch, exactly where the run with k = 1 does."""
    x, y = classification_data()
    validation = (x, np.random.default_rng(9).permutation(y))
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    options = {"epochs": 8, "compile": False, "validation_data": validation, "early_stopping": stopper}
    single = fit_mlp(backend, x, y, steps_per_call=1, **options)
    assert single.stopped_early and len(single.history["loss"]) < 8
    stacked = fit_mlp(backend, x, y, steps_per_call=3, **options)
    assert stacked.stopped_early and stacked.best_epoch == single.best_epoch
    assert_same_run(backend, stacked, single, backend.name == "numpy", "early stopping")


# ------------------------------------------------------------------ call boundaries
def test_checkpoints_are_written_at_the_first_call_boundary_at_or_after_each_multiple(backend, tmp_path):
    """k = 3, checkpoint_every = 2, 6 steps an epoch (calls end after steps 3, 4, 5, 6, then
    9, 10, 11, 12): the boundaries at or after 2, 4, 6, 8, 10, 12 are 3, 4, 6, 9, 10, 12."""
    x, y = classification_data()
    fit_mlp(
        backend,
        x,
        y,
        compile=False,
        steps_per_call=3,
        checkpoint_dir=tmp_path,
        checkpoint_every=2,
        keep_checkpoints=20,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"step-{s:09d}.safetensors" for s in (3, 4, 6, 9, 10, 12)
    ]


def test_the_progress_bar_advances_by_the_steps_of_each_call(backend, monkeypatch):
    x, y = classification_data()
    updates = []
    bar = type("Bar", (), {"n": 0, "update": lambda self, n: updates.append(n), "close": lambda self: None})()
    monkeypatch.setattr(training, "_progress_bar", lambda *args, **kwargs: bar)
    fit_mlp(backend, x, y, epochs=1, compile=False, steps_per_call=3)
    assert updates == [3, 1, 1, 1]


@pytest.mark.parametrize("data_on_device", [False, True], ids=["host", "device"])
def test_resumed_with_another_k_the_run_is_the_same(backend, tmp_path, data_on_device):
    """Checkpoints of a run with k = 4 (calls end at steps 4, 5, 6, 10, 11, 12): resumed from
    step 5 (mid-epoch) with k = 1, and from step 4 with k = 3, it ends where the uninterrupted
    run ends; and a run saved with k = 1 at step 2 resumes with k = 3 (a call of batches 3-5)."""
    x, y = classification_data()
    exact = backend.name in ("numpy", "torch")  # deterministic kernels; elsewhere within rounding
    options = {"compile": False, "checkpoint_every": 1, "keep_checkpoints": 20, "data_on_device": data_on_device}
    whole = fit_mlp(backend, x, y, steps_per_call=4, checkpoint_dir=tmp_path / "k4", **options)
    steps = sorted(int(path.stem.split("-")[1]) for path in (tmp_path / "k4").iterdir())
    assert steps == [4, 5, 6, 10, 11, 12]
    for resume_at, k in [(5, 1), (4, 3)]:
        folder = tmp_path / f"from{resume_at}"
        folder.mkdir()
        for path in (tmp_path / "k4").iterdir():
            if int(path.stem.split("-")[1]) <= resume_at:
                (folder / path.name).write_bytes(path.read_bytes())
        resumed = fit_mlp(backend, x, y, steps_per_call=k, checkpoint_dir=folder, resume=True, **options)
        assert_same_run(backend, resumed, whole, exact, f"k=4 saved at {resume_at}, resumed with k={k}")
    single = tmp_path / "k1"
    fit_mlp(backend, x, y, epochs=2, steps_per_call=1, checkpoint_dir=single, **options)
    for path in single.iterdir():
        if int(path.stem.split("-")[1]) > 2:
            path.unlink()
    resumed = fit_mlp(backend, x, y, steps_per_call=3, checkpoint_dir=single, resume=True, **options)
    assert_same_run(backend, resumed, whole, exact, "k=1 saved at 2, resumed with k=3")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy on the inf loss
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_divergence_is_read_at_call_boundaries_with_the_last_good_parameters(backend):
    """Without shuffling, a target of 1e30 in row 13 makes step 4's loss overflow to inf
    (rows 12-15). k = 3, check_every = 2: the losses are read after steps 3 (the first call
    boundary at or after 2; finite) and 4 (inf), so the last good state is that after step 3,
    which three single steps by hand reproduce."""
    x, y = classification_data()
    targets = np.eye(4, dtype="float32")[y]
    targets[13, 0] = 1e30

    def apply(params, inputs):
        return MODEL.apply(params, inputs)

    with pytest.raises(TrainingDiverged, match="became (nan|inf)") as caught:
        fit(
            apply,
            MODEL.init(1, backend),
            mse,
            SGD(0.05),
            backend,
            x,
            targets,
            epochs=1,
            batch_size=BATCH,
            shuffle=False,
            compile=False,
            check_every=2,
            steps_per_call=3,
            verbose=0,
        )
    error = caught.value
    assert error.step == 3 and error.epoch == 0 and error.history == {"loss": []}
    step = make_train_step(lambda p, b: mse(apply(p, b[0]), b[1]), SGD(0.05), backend, compile=False)
    params = MODEL.init(1, backend)
    state = step.init(params)
    for start in (0, 4, 8):
        params, state, _ = step(
            params, state, (backend.asarray(x[start : start + 4]), backend.asarray(targets[start : start + 4]))
        )
    for name, got, expected in zip(tree_paths(params), tree_leaves(error.params), tree_leaves(params)):
        got, expected = backend.to_numpy(got), backend.to_numpy(expected)
        assert np.all(np.isfinite(got)), name
        assert_close(got, expected, "float32", scale=10, what=name)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_huge_learning_rate_diverges_at_the_same_read_as_with_single_steps(backend):
    """SGD(1.5) on a squared error diverges in the second epoch (about step 10). With
    check_every = 3 and k = 3 the reads fall after steps 3, 6, 9, 12, ... as with k = 1 (the
    calls end after steps 3, 4, 5, 6, 9, 10, 11, 12): the same error, the same last good state."""
    x, _ = classification_data()
    targets = np.random.default_rng(4).normal(size=(COUNT, 4)).astype("float32")

    errors = []
    for k in (1, 3):
        with pytest.raises(TrainingDiverged, match="became (nan|inf)") as caught:
            fit(
                MODEL,
                MODEL.init(1, backend),
                mse,
                SGD(1.5),
                backend,
                x,
                targets,
                epochs=10,
                batch_size=BATCH,
                seed=5,
                compile=False,
                check_every=3,
                steps_per_call=k,
                verbose=0,
            )
        errors.append(caught.value)
    single, stacked = errors
    assert single.step >= 3 and single.step % 3 == 0
    assert (single.step, single.epoch) == (stacked.step, stacked.epoch)
    exact = backend.name == "numpy"
    if exact:
        assert single.history == stacked.history
    else:
        assert_close(stacked.history["loss"], single.history["loss"], "float32", scale=10, what="history")
    for a, e in zip(tree_leaves(stacked.params), tree_leaves(single.params)):
        a, e = backend.to_numpy(a), backend.to_numpy(e)
        assert np.all(np.isfinite(a))
        if exact:
            assert a.tobytes() == e.tobytes()
        else:
            assert_close(a, e, "float32", scale=10, what="last good params")


# ------------------------------------------------------------------ bad values
@pytest.mark.parametrize("k", [0, -2, 2.0, True, "3", None])
def test_a_bad_steps_per_call_is_refused_before_anything_runs(backend, tmp_path, k):
    x, y = classification_data()
    applied = []

    def apply(params, inputs):
        applied.append(1)
        return MODEL.apply(params, inputs)

    with pytest.raises(ValueError, match=r"steps_per_call must be an int >= 1, got "):
        fit(
            apply,
            MODEL.init(1, backend),
            cross_entropy,
            Adam(0.05),
            backend,
            x,
            y,
            steps_per_call=k,
            checkpoint_dir=tmp_path / "run",
            verbose=0,
        )
    assert applied == [] and not (tmp_path / "run").exists()


def test_the_epoch_loss_of_a_call_is_summed_left_to_right_in_its_dtype(backend):
    """fit adds a k-step call's weighted losses to the epoch's sum one at a time, in float32,
    as k single steps do: 1 + 2^-24 rounds to 1 (ties to even) each time, so the sum stays 1.
    A float64 accumulation (torch's cumsum) or a pairwise one gives 1 + 2^-23."""
    from portable_dl.training import _summed_in_order

    xp = backend.xp
    tiny = 2.0**-24
    terms = backend.asarray(np.array([tiny, tiny, tiny], dtype="float32"))
    total = _summed_in_order(backend.asarray(np.float32(1.0)), terms, xp)
    assert backend.to_numpy(total).dtype == np.float32
    assert float(backend.to_numpy(total)) == 1.0
    first = _summed_in_order(None, backend.asarray(np.array([1.0, tiny, tiny], dtype="float32")), xp)
    assert float(backend.to_numpy(first)) == 1.0
