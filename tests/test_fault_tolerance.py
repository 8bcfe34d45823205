"""fit that survives faults: checkpoints, resume=True, Ctrl-C, and a killed process.

Every resumed run is compared with one uninterrupted run of the same problem, and every
interrupted state with the parameters of a plain make_train_step loop over the batches fit
draws (one permutation per epoch from ``numpy.random.default_rng(seed)``). The problem, an
MLP on 96 examples in batches of 10 (the last batch of each epoch holds 6), lives in
fit_child.py, which the kill test also runs as a child process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from fit_child import (
    BATCH_SIZE,
    CHILD_CHECKPOINT_EVERY,
    EXAMPLES,
    SEED,
    STEPS_PER_EPOCH,
    TOTAL_STEPS,
    data,
    fit_problem,
    model,
    optimizer,
)
from helpers import assert_close

import portable_dl
from portable_dl import fit_checkpoints, training
from portable_dl.checkpoint import load
from portable_dl.errors import CheckpointError
from portable_dl.fit_batches import epoch_calls
from portable_dl.losses import cross_entropy
from portable_dl.training import EarlyStopping, TrainingDiverged, make_train_step
from portable_dl.tree import tree_leaves, tree_paths

#: NumPy and PyTorch run their CPU kernels deterministically, and a checkpoint gives back the
#: very bits saved, so on them a resumed run repeats the uninterrupted one bit for bit. JAX
#: and TensorFlow (XLA, Eigen) and MLX do not document deterministic CPU kernels (how a
#: reduction is split over threads may vary), so there the runs must agree to float32 rounding
#: (here they did match bit for bit too).
BIT_EXACT_BACKENDS = ("numpy", "torch")


# -------------------------------------------------------------------------- tools
class DataStream:
    """Stands in for ``portable_dl.training.epoch_calls``: counts the batches fit moves to the
    device, and raises KeyboardInterrupt in place of moving batch number ``interrupt_at``
    (counted from 0 over the whole fit call), as a Ctrl-C during that move would."""

    def __init__(self, interrupt_at: int | None = None):
        self.interrupt_at = interrupt_at
        self.moved = 0

    def __call__(self, *args, **kwargs):
        stream = epoch_calls(*args, **kwargs)
        while True:
            if self.moved == self.interrupt_at:
                raise KeyboardInterrupt
            try:
                batch = next(stream)
            except StopIteration:
                return
            self.moved += 1
            yield batch


class InterruptingApply:
    """The model's apply, raising KeyboardInterrupt at call number ``interrupt_at`` (from 0).
    fit calls it once on one example before training (to check the labels), then, without
    compilation, once per training step and once per validation of fewer than 256 examples."""

    def __init__(self, interrupt_at: int):
        self.interrupt_at = interrupt_at
        self.calls = 0
        self.net = model()

    def __call__(self, params, x):
        self.calls += 1
        if self.calls - 1 == self.interrupt_at:
            raise KeyboardInterrupt
        return self.net.apply(params, x)


def params_after_steps(backend, count: int):
    """The params after ``count`` steps of a plain make_train_step loop over the batches fit
    draws: per epoch one permutation from ``default_rng(SEED)``, cut into batches of 10."""
    x, y = data()
    net = model()
    step = make_train_step(
        lambda p, batch: cross_entropy(net.apply(p, batch[0]), batch[1]), optimizer(), backend, compile=False
    )
    params = net.init(0, backend)
    state = step.init(params)
    generator, done = np.random.default_rng(SEED), 0
    while done < count:
        order = generator.permutation(EXAMPLES)
        for start in range(0, EXAMPLES, BATCH_SIZE):
            if done == count:
                break
            index = order[start : start + BATCH_SIZE]
            params, state, _ = step(params, state, (backend.asarray(x[index]), backend.asarray(y[index])))
            done += 1
    return params


def assert_same_params(actual, expected, backend, exact: bool | None = None) -> None:
    """Bit for bit where ``exact`` (default: on BIT_EXACT_BACKENDS), else to float32 rounding."""
    exact = backend.name in BIT_EXACT_BACKENDS if exact is None else exact
    assert tree_paths(actual) == tree_paths(expected)
    for path, a, e in zip(tree_paths(expected), tree_leaves(actual), tree_leaves(expected)):
        a, e = backend.to_numpy(a), backend.to_numpy(e)
        if exact:
            assert a.dtype == e.dtype and np.array_equal(a, e), f"{path} differs"
        else:
            assert_close(a, e, "float32", scale=10, what=path)


def assert_same_history(actual, expected, exact: bool) -> None:
    assert list(actual) == list(expected)
    for name in expected:
        if exact:
            assert actual[name] == expected[name], name
        else:
            assert_close(actual[name], expected[name], "float32", scale=10, what=name)


def step_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("step-*.safetensors")) if folder.is_dir() else []


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def numpy_backend():
    return portable_dl.backend("numpy")


@pytest.fixture(scope="module")
def uninterrupted(numpy_backend):
    """The problem trained for 3 epochs in one go on NumPy, with validation on fresh data."""
    return fit_problem(numpy_backend, validation_data=data(48, seed=1))


# ------------------------------------------------------------- resume = one run
def test_resume_after_an_interruption_equals_one_uninterrupted_run(backend, tmp_path, monkeypatch):
    exact = backend.name in BIT_EXACT_BACKENDS
    whole = fit_problem(backend)
    # Interrupted while moving batch 13, the 4th of epoch 2: 13 steps done, the last
    # checkpoint_every=4 save at step 12; the interruption saves step 13.
    stream = DataStream(interrupt_at=13)
    monkeypatch.setattr(training, "epoch_calls", stream)
    interrupted = fit_problem(backend, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert interrupted.interrupted and not whole.interrupted
    assert interrupted.checkpoint == tmp_path / "step-000000013.safetensors"
    assert step_files(tmp_path) == [
        "step-000000008.safetensors",
        "step-000000012.safetensors",
        "step-000000013.safetensors",
    ]
    assert_same_params(interrupted.params, params_after_steps(backend, 13), backend)
    assert int(backend.to_numpy(interrupted.opt_state["step"])) == 13
    assert_same_history(interrupted.history, {"loss": whole.history["loss"][:1]}, exact)

    stream = DataStream()
    monkeypatch.setattr(training, "epoch_calls", stream)
    resumed = fit_problem(backend, checkpoint_dir=tmp_path, checkpoint_every=4, resume=True)
    assert stream.moved == TOTAL_STEPS - 13  # the 13 batches done were neither trained on nor moved again
    assert not resumed.interrupted and resumed.checkpoint == tmp_path / f"step-{TOTAL_STEPS:09d}.safetensors"
    assert_same_params(resumed.params, whole.params, backend)
    assert_same_params(resumed.opt_state, whole.opt_state, backend)
    assert_same_history(resumed.history, whole.history, exact)


def test_a_checkpoint_resumes_compiled_on_another_backend(backend, numpy_backend, tmp_path, monkeypatch):
    """Interrupted on NumPy, resumed on ``backend`` with its compiler: the arrays move to the
    new backend, and the run agrees with NumPy's uninterrupted one to float32 rounding (the
    backends' kernels round differently)."""
    whole = fit_problem(numpy_backend)
    monkeypatch.setattr(training, "epoch_calls", DataStream(interrupt_at=17))
    assert fit_problem(numpy_backend, checkpoint_dir=tmp_path).interrupted
    monkeypatch.setattr(training, "epoch_calls", epoch_calls)
    resumed = fit_problem(backend, checkpoint_dir=tmp_path, resume=True, compile=True)
    assert load(resumed.checkpoint, backend).backend_name == backend.name
    for path, a, e in zip(tree_paths(whole.params), tree_leaves(resumed.params), tree_leaves(whole.params)):
        assert_close(backend.to_numpy(a), numpy_backend.to_numpy(e), "float32", scale=10, what=path)
    assert_same_history(resumed.history, whole.history, exact=False)


def test_killed_training_resumes_where_its_last_checkpoint_left_off(numpy_backend, tmp_path, monkeypatch):
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL on this platform")
    folder, errors = tmp_path / "run", tmp_path / "child-stderr.txt"
    with open(errors, "w") as stderr:  # a file, not a pipe: a full pipe would block the child
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("fit_child.py")), str(folder), "0.1"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while len(step_files(folder)) < 2:
            assert child.poll() is None, f"the child ended before its second checkpoint:\n{errors.read_text()}"
            assert time.monotonic() < deadline, "the child wrote no two checkpoints in 120 s"
            time.sleep(0.01)
        assert child.poll() is None, "the child finished training before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    newest = int(step_files(folder)[-1][len("step-") : -len(".safetensors")])
    assert 2 * CHILD_CHECKPOINT_EVERY <= newest < TOTAL_STEPS

    stream = DataStream()
    monkeypatch.setattr(training, "epoch_calls", stream)
    resumed = fit_problem(numpy_backend, checkpoint_dir=folder, checkpoint_every=CHILD_CHECKPOINT_EVERY, resume=True)
    assert stream.moved == TOTAL_STEPS - newest
    whole = fit_problem(numpy_backend)
    assert_same_params(resumed.params, whole.params, numpy_backend, exact=True)
    assert resumed.history == whole.history


# ------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("with_folder", [False, True], ids=["no-checkpoint-dir", "checkpoint-dir"])
@pytest.mark.parametrize("where, completed_steps", [("batch-move", 13), ("step", 13), ("validation", 10)])
def test_ctrl_c_anywhere_returns_the_last_completed_step(
    numpy_backend, uninterrupted, tmp_path, monkeypatch, where, completed_steps, with_folder
):
    """A KeyboardInterrupt while a batch is moved, inside a step (in apply), or in the
    validation after epoch 1 returns the state after the last completed step; with a
    checkpoint_dir it is saved, and resuming gives the uninterrupted run."""
    folder = tmp_path if with_folder else None
    validation = data(48, seed=1)
    apply = None
    if where == "batch-move":
        monkeypatch.setattr(training, "epoch_calls", DataStream(interrupt_at=completed_steps))
    else:
        # apply's calls: fit's look at the model's output width for the labels' range (call 0),
        # the 10 steps of epoch 1 (calls 1-10), its validation (call 11), then epoch 2's steps
        # (call 12 is step 11).
        apply = InterruptingApply(interrupt_at=11 if where == "validation" else completed_steps + 2)
    result = fit_problem(numpy_backend, apply=apply, validation_data=validation, checkpoint_dir=folder)
    assert result.interrupted and not result.stopped_early
    assert_same_params(result.params, params_after_steps(numpy_backend, completed_steps), numpy_backend)
    assert int(numpy_backend.to_numpy(result.opt_state["step"])) == completed_steps
    epochs_done = completed_steps // STEPS_PER_EPOCH if where != "validation" else 0
    assert result.history == {
        name: values[:epochs_done] for name, values in uninterrupted.history.items() if epochs_done or name == "loss"
    }
    if folder is None:
        assert result.checkpoint is None
        return
    assert result.checkpoint == tmp_path / f"step-{completed_steps:09d}.safetensors"
    monkeypatch.setattr(training, "epoch_calls", epoch_calls)
    resumed = fit_problem(numpy_backend, validation_data=validation, checkpoint_dir=folder, resume=True)
    assert_same_params(resumed.params, uninterrupted.params, numpy_backend)
    assert resumed.history == uninterrupted.history


def test_a_second_ctrl_c_during_the_save_aborts_and_leaves_the_last_checkpoint(numpy_backend, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "epoch_calls", DataStream(interrupt_at=13))
    real_save = fit_checkpoints.save_checkpoint

    def save_interrupted_at_step_13(path, *args, **kwargs):
        if Path(path).name == "step-000000013.safetensors":
            raise KeyboardInterrupt  # the user presses Ctrl-C again while the checkpoint is written
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(fit_checkpoints, "save_checkpoint", save_interrupted_at_step_13)
    with pytest.raises(KeyboardInterrupt):
        fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4)
    assert step_files(tmp_path) == [
        "step-000000004.safetensors",
        "step-000000008.safetensors",
        "step-000000012.safetensors",
    ]
    saved = load(tmp_path / "step-000000012.safetensors", numpy_backend)
    assert_same_params(saved.params, params_after_steps(numpy_backend, 12), numpy_backend)


# ---------------------------------------------------------------- the folder
@pytest.mark.parametrize(
    "checkpoint_every, keep, expected_steps", [(4, 2, [28, 30]), (None, 2, [20, 30]), (7, 1, [30])]
)
def test_keep_checkpoints_keeps_the_newest_files_and_no_others_of_fit(
    numpy_backend, tmp_path, checkpoint_every, keep, expected_steps
):
    """checkpoint_every steps, or each epoch without it, and always at the end."""
    others = {
        "notes.txt": b"mine",
        "step-12.safetensors": b"short name",
        "step-000000001.safetensors.bak": b"b",
        "best.safetensors": b"not fit's",
        "model-000000001.safetensors": b"m",
    }
    for name, content in others.items():
        (tmp_path / name).write_bytes(content)
    result = fit_problem(
        numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=checkpoint_every, keep_checkpoints=keep
    )
    expected = [f"step-{step:09d}.safetensors" for step in expected_steps]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(expected + list(others))
    assert all((tmp_path / name).read_bytes() == content for name, content in others.items())
    assert result.checkpoint == tmp_path / expected[-1]
    final = load(result.checkpoint, numpy_backend, like=result.params)
    assert_same_params(final.params, result.params, numpy_backend)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"batch_size": 12}, "batch_size is 10 there, 12 here"),
        ({"seed": SEED + 1}, f"seed is {SEED} there, {SEED + 1} here"),
        ({"hidden": 32}, r"params/layers\.0\.W: the checkpoint has float32 \(8, 16\), expected float32 \(8, 32\)"),
    ],
    ids=["batch_size", "seed", "model"],
)
def test_resume_with_other_settings_raises_and_changes_nothing(numpy_backend, tmp_path, monkeypatch, change, message):
    monkeypatch.setattr(training, "epoch_calls", DataStream(interrupt_at=13))
    fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4)
    before = folder_contents(tmp_path)
    monkeypatch.setattr(training, "epoch_calls", epoch_calls)
    with pytest.raises(CheckpointError, match=message):
        fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4, resume=True, **change)
    assert folder_contents(tmp_path) == before


def test_resume_in_an_empty_or_absent_folder_trains_from_the_start(numpy_backend, tmp_path):
    whole = fit_problem(numpy_backend)
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "absent" / "run"):
        result = fit_problem(numpy_backend, checkpoint_dir=folder, resume=True)
        assert_same_params(result.params, whole.params, numpy_backend)
        assert result.history == whole.history
        assert step_files(folder) == [f"step-{step:09d}.safetensors" for step in (10, 20, 30)]


def test_resuming_a_finished_run_trains_no_more(numpy_backend, tmp_path, monkeypatch):
    whole = fit_problem(numpy_backend, checkpoint_dir=tmp_path)
    before = folder_contents(tmp_path)
    stream = DataStream()
    monkeypatch.setattr(training, "epoch_calls", stream)
    again = fit_problem(numpy_backend, checkpoint_dir=tmp_path, resume=True)
    assert stream.moved == 0 and folder_contents(tmp_path) == before
    assert again.checkpoint == whole.checkpoint == tmp_path / f"step-{TOTAL_STEPS:09d}.safetensors"
    assert_same_params(again.params, whole.params, numpy_backend)
    assert again.history == whole.history


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(numpy_backend, tmp_path, monkeypatch):
    whole = fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4)
    newest = tmp_path / "step-000000030.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])  # as a torn write would leave it
    stream = DataStream()
    monkeypatch.setattr(training, "epoch_calls", stream)
    with pytest.warns(UserWarning, match=r"step-000000030\.safetensors.*truncated"):
        resumed = fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4, resume=True)
    assert stream.moved == 2  # resumed after step 28
    assert_same_params(resumed.params, whole.params, numpy_backend)
    assert resumed.history == whole.history
    assert load(newest, numpy_backend).step == TOTAL_STEPS  # rewritten whole

    for path in tmp_path.glob("step-*"):
        path.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointError, match="no checkpoint in .* can be resumed from"):
            fit_problem(numpy_backend, checkpoint_dir=tmp_path, resume=True)


def test_a_folder_with_checkpoints_needs_resume(numpy_backend, tmp_path):
    fit_problem(numpy_backend, epochs=1, checkpoint_dir=tmp_path)
    before = folder_contents(tmp_path)
    with pytest.raises(CheckpointError, match="resume=True"):
        fit_problem(numpy_backend, epochs=1, checkpoint_dir=tmp_path)
    assert folder_contents(tmp_path) == before


def test_checkpoint_options_are_checked(numpy_backend, tmp_path):
    (tmp_path / "file").write_bytes(b"")
    for options, message in [
        ({"resume": True}, "resume=True needs checkpoint_dir"),
        ({"checkpoint_every": 5}, "checkpoint_every needs checkpoint_dir"),
        ({"checkpoint_dir": tmp_path, "checkpoint_every": 0}, "checkpoint_every"),
        ({"checkpoint_dir": tmp_path, "keep_checkpoints": 0}, "keep_checkpoints"),
        ({"checkpoint_dir": tmp_path, "resume": "yes"}, "resume must be True or False"),
        ({"checkpoint_dir": 3}, "checkpoint_dir must be"),
        ({"checkpoint_dir": tmp_path / "file"}, "is a file, not a folder"),
    ]:
        with pytest.raises(ValueError, match=message):
            fit_problem(numpy_backend, **options)
    assert [path.name for path in tmp_path.iterdir()] == ["file"]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy on the NaN loss
def test_a_diverged_state_is_never_checkpointed(numpy_backend, tmp_path):
    calls = []

    def loss_nan_from_step_5(predictions, targets):
        calls.append(None)  # one call per step without compilation
        loss = cross_entropy(predictions, targets)
        return loss * float("nan") if len(calls) >= 5 else loss

    x, y = data()
    net = model()
    with pytest.raises(TrainingDiverged) as caught:
        training.fit(
            net,
            net.init(0, numpy_backend),
            loss_nan_from_step_5,
            optimizer(),
            numpy_backend,
            x,
            y,
            epochs=1,
            batch_size=BATCH_SIZE,
            compile=False,
            verbose=0,
            checkpoint_dir=tmp_path,
            checkpoint_every=2,
        )
    assert step_files(tmp_path) == ["step-000000002.safetensors", "step-000000004.safetensors"]
    assert caught.value.step == 4  # the checkpoint at step 4 read the losses so far: all finite
    saved = load(tmp_path / "step-000000004.safetensors", numpy_backend)
    assert_same_params(caught.value.params, saved.params, numpy_backend)


# ----------------------------------------------------------- early stopping
def test_early_stopping_with_restore_best_survives_a_resume(numpy_backend, tmp_path, monkeypatch):
    """A third of the validation labels shifted by one class: fitting the training data
    makes the validation loss worse after a while, so the best epoch lies inside the run."""
    x_val, y_val = data(48, seed=1)
    y_val[:16] = (y_val[:16] + 1) % 3
    options = {
        "epochs": 12,
        "validation_data": (x_val, y_val),
        "compile": True,
        "early_stopping": EarlyStopping(monitor="val_loss", patience=2),
    }
    whole = fit_problem(numpy_backend, **options)
    assert whole.stopped_early and 0 < whole.best_epoch < len(whole.history["loss"]) - 1
    # Interrupted in the epoch after the best one: the best is then in best-<step>.safetensors.
    interrupt_at = (whole.best_epoch + 1) * STEPS_PER_EPOCH + 3
    monkeypatch.setattr(training, "epoch_calls", DataStream(interrupt_at=interrupt_at))
    interrupted = fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4, **options)
    assert interrupted.interrupted
    best_file = tmp_path / f"best-{(whole.best_epoch + 1) * STEPS_PER_EPOCH:09d}.safetensors"
    # The best epoch's file, and at most one more per step file kept (they name theirs).
    assert best_file.is_file() and len(list(tmp_path.glob("best-*"))) <= 3
    monkeypatch.setattr(training, "epoch_calls", epoch_calls)
    resumed = fit_problem(numpy_backend, checkpoint_dir=tmp_path, checkpoint_every=4, resume=True, **options)
    assert resumed.stopped_early and resumed.best_epoch == whole.best_epoch
    assert resumed.history == whole.history
    assert_same_params(resumed.params, whole.params, numpy_backend)
    assert_same_params(resumed.opt_state, whole.opt_state, numpy_backend)
