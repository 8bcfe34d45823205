"""Data parallel on two loopback processes per backend (``portable-dl launch -n 2``).

Each test launches tests/distributed_child.py on two ranks and checks what they wrote
against NumPy float64 references computed here: exact integer sums, float means and
broadcasts, two data-parallel steps against one step of the doubled batch, and a fit of two
ranks against the one-process fit of the doubled batch; then a rank killed mid-run, and the
resumed run against an uninterrupted one, on two processes and on one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import portable_dl as pdl
from portable_dl import losses, optimizers
from tests.helpers import assert_close

sys.path.insert(0, str(Path(__file__).parent))
import distributed_child as child  # noqa: E402

CHILD = Path(__file__).with_name("distributed_child.py")
#: seconds a two-process run may take before the test fails (TensorFlow starts in ~15 s,
#: torch.compile of one step on two shared cores takes ~40 s)
RUN_TIMEOUT = 240
#: the launcher's grace period after a rank fails, and the bound the fault test states
GRACE = 10.0
#: the engine each backend's World reports on this machine's CPUs
ENGINES = {
    "torch": "torch.distributed (gloo)",
    "mlx": "mlx.distributed (ring)",
    "jax": "jax.distributed (gloo)",
    "tensorflow": "TensorFlow collective all-reduce (MultiWorkerMirroredStrategy, ring)",
}


def launch(backend_name: str, mode: str, out: Path, **environment: str) -> tuple[int, str, float]:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **environment)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "portable_dl",
            "launch",
            "-n",
            "2",
            "--backend",
            backend_name,
            "--grace",
            str(GRACE),
            str(CHILD),
            mode,
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def results(out: Path, rank: int) -> tuple[dict, dict]:
    with np.load(out / f"rank-{rank}.npz") as arrays:
        return dict(arrays), json.loads((out / f"rank-{rank}.json").read_text())


def skip_numpy(backend) -> None:
    if backend.name == "numpy":
        pytest.skip("the NumPy reference has a world of one process only (tested in test_distributed.py)")


@pytest.fixture(scope="module")
def numpy_backend():
    return pdl.backend("numpy")


def reference_fit(numpy_backend, epochs=child.EPOCHS, **settings):
    """One process, the global batch of two ranks, float64: what two ranks must follow."""
    model, x, y, x_val, y_val, *_ = child.problem()
    return pdl.fit(
        model,
        model.init(0, numpy_backend, dtype=settings.pop("dtype", "float64")),
        losses.cross_entropy,
        optimizers.Adam(child.LEARNING_RATE),
        numpy_backend,
        x,
        y,
        epochs=epochs,
        batch_size=2 * child.PER_RANK_BATCH,
        validation_data=(x_val, y_val),
        metrics=["accuracy"],
        verbose=0,
        **settings,
    )


def assert_fit_matches(arrays: dict, facts: dict, expected, what: str) -> None:
    for index, leaf in enumerate(pdl.tree_leaves(expected.params)):
        assert_close(arrays[f"fit_param_{index}"], np.asarray(leaf), "float32", scale=10, what=f"{what} param {index}")
    for name, values in expected.history.items():
        assert_close(facts["history"][name], values, "float32", scale=10, what=f"{what} history {name}")


def test_two_ranks_reduce_broadcast_step_and_fit_like_one_process(backend, tmp_path, numpy_backend):
    skip_numpy(backend)
    code, output, _ = launch(backend.name, "all", tmp_path)
    assert code == 0, output
    ranks = [results(tmp_path, rank) for rank in (0, 1)]
    base_ints = np.arange(6, dtype=np.int64) - 3
    base_floats = np.linspace(-1, 1, 6).reshape(2, 3)
    for rank, (arrays, facts) in enumerate(ranks):
        assert (facts["rank"], facts["size"], facts["local_rank"]) == (rank, 2, rank)
        assert facts["engine"] == ENGINES[backend.name]
        # Integers: exact, including a value beyond float32's 24-bit mantissa (1_000_000 + ...).
        assert arrays["sum_ints"].dtype == np.int32
        np.testing.assert_array_equal(arrays["sum_ints"], base_ints * 3 + 1_000_000)
        assert_close(arrays["sum_floats"], base_floats * (1 + 4), "float32", what="sum of floats")
        assert_close(arrays["mean_floats"], base_floats * (1 + 4) / 2, "float32", what="mean of floats")
        np.testing.assert_array_equal(arrays["broadcast_floats"], (base_floats * 4).astype(np.float32))
        np.testing.assert_array_equal(arrays["broadcast_ints"], base_ints * 2 + 1_000_000)
        assert facts["mean_of_ints"].startswith("all_reduce with op='mean' needs floating-point arrays")
        assert (
            facts["shape_error"]
            == "the ranks' parameters differ: at 'W' rank 0 has shape (3, 4), rank 1 has shape (3, 5)"
        )
    # Two ranks on halves == one process on the whole batch (float64 NumPy reference).
    model, *_, step_x, step_y = child.problem()
    params = model.init(0, numpy_backend, dtype="float64")
    step = pdl.make_train_step(
        lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
        optimizers.Adam(child.LEARNING_RATE),
        numpy_backend,
        compile=False,
    )
    state, expected_losses = step.init(params), []
    for _ in range(2):
        params, state, loss = step(params, state, (step_x.astype(np.float64), step_y))
        expected_losses.append(float(loss))
    expected_fit = reference_fit(numpy_backend)
    for rank, (arrays, facts) in enumerate(ranks):
        for index, leaf in enumerate(pdl.tree_leaves(params)):
            assert_close(
                arrays[f"step_param_{index}"], leaf, "float32", scale=4, what=f"rank {rank} step param {index}"
            )
        assert_close(facts["step_losses"], expected_losses, "float32", scale=4, what="step losses")
        # One buffer: the loss, the ranks counted, and the 5*7 + 7 + 7*3 + 3 gradient entries, float32.
        assert facts["bytes_per_step"] == 4 * (2 + 5 * 7 + 7 + 7 * 3 + 3)
        assert_fit_matches(arrays, facts, expected_fit, f"rank {rank} fit")
    # Only rank 0 prints; every rank names the same (last) checkpoint.
    assert "[rank 0] epoch 2/2: loss" in output and "[rank 1] epoch" not in output
    assert ranks[0][1]["checkpoint"] == ranks[1][1]["checkpoint"] == "step-000000008.safetensors"


def test_a_killed_rank_stops_the_other_and_the_resumed_run_ends_as_an_uninterrupted_one(
    backend, tmp_path, numpy_backend
):
    skip_numpy(backend)
    code, output, seconds = launch(backend.name, "fault", tmp_path)
    # SIGKILL: exit status 128 + 9, the failed rank named.
    assert code == 137, output
    assert "portable-dl launch: failed: rank 1 exited with signal SIGKILL" in output
    assert seconds < RUN_TIMEOUT
    assert not (tmp_path / "rank-0.json").exists(), "rank 0 went on without rank 1"
    # Rank 0 stops by itself, naming the lost rank (its collective failed, or, on MLX's ring,
    # returned a partial sum that the rank count in the step turned into a NaN loss).
    assert "DistributedError: rank 0 lost rank 1 (killed by signal 9)" in output, output
    assert "stopping the other ranks" in output
    saved = sorted(path.name for path in (tmp_path / "checkpoints").glob("step-*.safetensors"))
    assert saved and saved[-1] < "step-000000008.safetensors", saved
    one_process = tmp_path / "one-process"
    shutil.copytree(tmp_path / "checkpoints", one_process)
    expected = reference_fit(numpy_backend)

    # Resumed on two processes ...
    code, output, _ = launch(backend.name, "resume", tmp_path)
    assert code == 0, output
    assert "resuming from" in output
    for rank in (0, 1):
        arrays, facts = results(tmp_path, rank)
        assert_fit_matches(arrays, facts, expected, f"rank {rank} resumed")

    # ... and on one: the checkpoints hold the global batch, nothing of the world size.
    model, x, y, x_val, y_val, *_ = child.problem()
    resumed = pdl.fit(
        model,
        model.init(0, backend),
        losses.cross_entropy,
        optimizers.Adam(child.LEARNING_RATE),
        backend,
        x,
        y,
        epochs=child.EPOCHS,
        batch_size=2 * child.PER_RANK_BATCH,
        validation_data=(x_val, y_val),
        metrics=["accuracy"],
        verbose=0,
        compile=False,
        checkpoint_dir=one_process,
        checkpoint_every=1,
        resume=True,
    )
    arrays = {f"fit_param_{i}": backend.to_numpy(leaf) for i, leaf in enumerate(pdl.tree_leaves(resumed.params))}
    assert_fit_matches(arrays, {"history": resumed.history}, expected, "resumed on one process")


def _final_numbers(output: str) -> list[float]:
    import re

    lines = [line for line in output.splitlines() if "final: loss" in line or "parameters: sum" in line]
    assert len(lines) == 2, output
    return [float(v) for v in re.findall(r"-?\d+\.\d+", " ".join(lines))]


def test_the_example_on_two_processes_ends_where_one_process_with_the_doubled_batch_does(backend):
    skip_numpy(backend)
    repository = Path(__file__).resolve().parents[1]
    example = str(repository / "examples" / "data_parallel.py")
    settings = ["--epochs", "1", "--examples", "512", "--no-compile"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    one = subprocess.run(
        [sys.executable, example, "--backend", backend.name, "--batch-size", "64", *settings],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
        cwd=repository,
    )
    assert one.returncode == 0, one.stdout + one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "portable_dl",
            "launch",
            "-n",
            "2",
            "--backend",
            backend.name,
            example,
            "--batch-size",
            "32",
            *settings,
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
        cwd=repository,
    )
    assert two.returncode == 0, two.stdout + two.stderr
    assert "2 process(es)" in two.stdout and "global batch 64" in two.stdout
    # loss, val_accuracy, sum and sum of squares of the parameters, as printed (6 decimals)
    assert_close(_final_numbers(two.stdout), _final_numbers(one.stdout), "float32", scale=10, what="final numbers")


def test_torch_on_two_cuda_gpus_all_reduces_with_nccl(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.device_count() < 2:
        pytest.skip(f"NCCL needs a CUDA GPU per process: two here, found {torch.cuda.device_count()}")
    code, output, _ = launch("torch", "all", tmp_path, PORTABLE_DL_TEST_DEVICE="cuda:{local_rank}")
    assert code == 0, output
    for rank in (0, 1):
        arrays, facts = results(tmp_path, rank)
        assert facts["engine"] == "torch.distributed (nccl)"
        np.testing.assert_array_equal(arrays["sum_ints"], (np.arange(6) - 3) * 3 + 1_000_000)
