"""The benchmarks in bench/ run with tiny settings and write JSON of the documented shape.

No timing is asserted (timings belong to the benchmarks themselves): the tests check that
every number a benchmark reports is finite and positive, that its ratios are the ratios of
its medians, and that each side of a comparison computes the documented experiment, by
the losses it reports against a NumPy float64 reference.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_mnist

from portable_dl.data import load_mnist
from portable_dl.registry import installed_backend_names

BENCH = Path(__file__).resolve().parents[1] / "bench"

#: float32 forward passes and a few float32 steps against float64: far below the 1e-2
#: a wrong model, loss or learning rate would give.
LOSS_RTOL = 1e-4

#: What ``mnist_epoch.py --threads`` sets in its own process's environment.
PINNED_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "XLA_FLAGS",
)


@pytest.fixture
def bench(monkeypatch):
    """``bench(name)``: the script bench/<name>.py loaded as a module (bench/ on sys.path,
    as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(BENCH))
    # mnist_epoch.py pins thread pools through the environment: restored after the test
    for name in PINNED_VARIABLES:
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load


def run(module, arguments: list[str], output: Path) -> dict:
    """Run a benchmark's main with ``arguments``; return the JSON it wrote."""
    assert module.main([*arguments, "--output", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["schema"] == f"portable-dl/bench/{document['benchmark']}/1"
    assert document["machine"]["cpu_count"] >= 1
    assert "portable-dl" in document["versions"] and "numpy" in document["versions"]
    return document


def assert_positive(*values: float) -> None:
    for value in values:
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, value


def assert_timing(timing: dict, blocks: int) -> None:
    """A measured side: its median and its blocks, wall-clock and CPU, of the documented shape."""
    assert timing["status"] == "ok", timing
    assert len(timing["blocks"]) == len(timing["cpu_blocks"]) == blocks
    assert_positive(timing["median"], *timing["blocks"], timing["steps_per_block"])
    assert all(value >= 0 and math.isfinite(value) for value in [timing["cpu_median"], *timing["cpu_blocks"]])
    assert timing["median"] == pytest.approx(float(np.median(timing["blocks"])))


# ----------------------------------------------------------------- NumPy references
def mlp_loss(weights, x, y) -> float:
    """Mean softmax cross-entropy of the relu MLP ``weights`` [(W, b), ...] in float64."""
    h = np.asarray(x, dtype=np.float64)
    for index, (W, b) in enumerate(weights):
        h = h @ np.asarray(W, np.float64) + np.asarray(b, np.float64)
        if index < len(weights) - 1:
            h = np.maximum(h, 0.0)
    shifted = h - h.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def sgd_epoch_loss(weights, x, y, order, batch_size: int, lr: float) -> float:
    """The mean over examples of each batch's loss before its SGD step, over one epoch in
    ``order``: what fit reports as an epoch's loss. Gradients by hand, in float64."""
    weights = [(np.array(W, np.float64), np.array(b, np.float64)) for W, b in weights]
    total = 0.0
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        inputs, labels = np.asarray(x[index], np.float64), y[index]
        total += mlp_loss(weights, inputs, labels) * len(index)
        activations, h = [inputs], inputs
        for layer, (W, b) in enumerate(weights):
            h = h @ W + b
            if layer < len(weights) - 1:
                h = np.maximum(h, 0.0)
            activations.append(h)
        probabilities = np.exp(h - h.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        delta = probabilities
        delta[np.arange(len(labels)), labels] -= 1.0
        delta /= len(labels)
        for layer in range(len(weights) - 1, -1, -1):
            W, b = weights[layer]
            gradient_W, gradient_b = activations[layer].T @ delta, delta.sum(axis=0)
            if layer > 0:
                delta = (delta @ W.T) * (activations[layer] > 0)
            weights[layer] = (W - lr * gradient_W, b - lr * gradient_b)
    return total / len(order)


# --------------------------------------------------------------------- train_step.py
def test_train_step_writes_both_sides_of_every_mode(bench, backend, tmp_path):
    """Eager and compiled: both sides measured (a native compiled step may be unavailable,
    with its reason), the ratio is the ratio of the medians, and both sides' first loss is
    the float64 loss of the shared starting point."""
    train_step = bench("train_step")
    document = run(
        train_step,
        [
            "--backends",
            backend.name,
            "--layers",
            "6,5,3",
            "--batch-size",
            "4",
            "--blocks",
            "2",
            "--steps",
            "2",
            "--warmup",
            "1",
        ],
        tmp_path / "train_step.json",
    )
    assert document["settings"]["layers"] == [6, 5, 3] and document["settings"]["optimizer"] == "Adam"
    (result,) = document["results"]
    assert result["backend"] == backend.name and result["device"] == backend.device
    modes = {row["mode"]: row for row in result["modes"]}
    assert set(modes) == ({"eager"} if backend.name == "numpy" else {"eager", "compiled"})
    problem = train_step.make_problem((6, 5, 3), 4, 0)
    expected_loss = mlp_loss(problem.weights, problem.x, problem.y)
    for mode, row in modes.items():
        assert_timing(row["portable"], blocks=2)
        assert row["portable"]["first_loss"] == pytest.approx(expected_loss, rel=LOSS_RTOL)
        if row["native"]["status"] != "ok":
            assert mode == "compiled" and row["native"]["status"] == "unavailable" and row["native"]["reason"]
            assert row["ratio"] is None
            continue
        assert_timing(row["native"], blocks=2)
        assert row["native"]["first_loss"] == pytest.approx(expected_loss, rel=LOSS_RTOL)
        assert row["ratio"] == pytest.approx(row["portable"]["median"] / row["native"]["median"])
    if "compiled" in modes and modes["eager"]["native"]["status"] == "ok":
        assert result["portable_compiled_over_native_eager"] == pytest.approx(
            modes["compiled"]["portable"]["median"] / modes["eager"]["native"]["median"]
        )


def test_train_step_steps_per_call_and_precision(bench, backend, tmp_path):
    """``--steps-per-call 3``: compiled rows at k=1 and k=3 (none on NumPy, which has no
    compiler); the k=3 call's first loss is the float64 loss of the start, both sides'; its
    ratios are of the medians, the native k=1 step's included. ``--precision float32,
    mixed_bfloat16``: the float32 rows keep their native side, the bfloat16 ones are portable
    only, with a first loss within bfloat16's rounding of the float64 one."""
    train_step = bench("train_step")
    precisions = "float32" if backend.name == "numpy" else "float32,mixed_bfloat16"
    arguments = ["--backends", backend.name, "--layers", "6,5,3", "--batch-size", "4", "--blocks", "2"]
    arguments += ["--steps", "2", "--warmup", "1", "--steps-per-call", "3", "--precision", precisions]
    document = run(train_step, arguments, tmp_path / "k.json")
    assert document["settings"]["steps_per_call"] == [1, 3]
    (result,) = document["results"]
    rows = {(row["mode"], row["steps_per_call"], row["precision"]): row for row in result["modes"]}
    expected_rows = {("eager", 1, "float32")}
    if backend.name != "numpy":
        expected_rows |= {
            (mode, k, p)
            for mode, k in [("eager", 1), ("compiled", 1), ("compiled", 3)]
            for p in ("float32", "mixed_bfloat16")
        }
    assert set(rows) == expected_rows
    problem = train_step.make_problem((6, 5, 3), 4, 0)
    expected_loss = mlp_loss(problem.weights, problem.x, problem.y)
    for (mode, k, precision), row in rows.items():
        assert_timing(row["portable"], blocks=2)
        assert row["portable"]["steps_per_call"] == k
        rtol = LOSS_RTOL if precision == "float32" else 2e-2  # bfloat16 keeps 8 bits of mantissa
        assert row["portable"]["first_loss"] == pytest.approx(expected_loss, rel=rtol)
        if precision != "float32":
            assert row["native"]["status"] == "none" and row["ratio"] is None
            continue
        if row["native"]["status"] != "ok":
            assert mode == "compiled" and row["native"]["status"] == "unavailable" and row["native"]["reason"]
            continue
        assert_timing(row["native"], blocks=2)
        assert row["native"]["steps_per_call"] == k
        assert row["native"]["first_loss"] == pytest.approx(expected_loss, rel=LOSS_RTOL)
        assert row["ratio"] == pytest.approx(row["portable"]["median"] / row["native"]["median"])
        single = rows[(mode, 1, "float32")]["native"]
        if single["status"] == "ok":
            assert row["ratio_to_native_one_step_per_call"] == pytest.approx(
                row["portable"]["median"] / single["median"]
            )


def test_train_step_precision_needs_the_keyword(bench, tmp_path, monkeypatch):
    """Where make_train_step has no precision= keyword, --precision is a usage error."""
    train_step = bench("train_step")
    real = train_step.pdl.make_train_step
    monkeypatch.setattr(train_step.pdl, "make_train_step", lambda loss_fn, optimizer, backend, compile=True: real)
    with pytest.raises(SystemExit) as stopped:
        train_step.main(["--backends", "numpy", "--precision", "mixed_bfloat16", "--output", str(tmp_path / "p.json")])
    assert stopped.value.code == 2 and not (tmp_path / "p.json").exists()


def test_compare_reports_time_per_step_of_a_multi_step_call(bench, monkeypatch):
    """A call of k steps taking 1 s on a fake clock is 1/k s per step; every block is kept."""
    bench("train_step")
    import _timing

    class Clock:
        now = 0.0

        @classmethod
        def perf_counter(cls) -> float:
            return cls.now

        process_time = perf_counter

    def call() -> None:
        Clock.now += 1.0  # each call "takes" one second

    monkeypatch.setattr(_timing, "time", Clock)
    timings = _timing.compare(
        {"one": _timing.Runner(call), "four": _timing.Runner(call, steps_per_call=4)}, blocks=3, steps=2, warmup=1
    )
    assert timings["one"].seconds_per_step == [1.0, 1.0, 1.0]
    assert timings["four"].seconds_per_step == [0.25, 0.25, 0.25]
    assert timings["four"].cpu_seconds_per_step == [0.25, 0.25, 0.25]
    content = timings["four"].as_json(unit=1e3)
    assert content["blocks"] == [250.0, 250.0, 250.0] and content["steps_per_call"] == 4
    assert content["steps_per_block"] == 2 and content["first_step"] == 1000.0


def test_train_step_reports_a_missing_backend_as_skipped(bench, tmp_path, monkeypatch):
    train_step = bench("train_step")
    import portable_dl

    real_backend = portable_dl.backend

    def without_mlx(name=None, device=None):
        if name == "mlx":
            raise portable_dl.BackendUnavailable("mlx is not installed here")
        return real_backend(name, device)

    monkeypatch.setattr(train_step.pdl, "backend", without_mlx)
    document = run(train_step, ["--backends", "mlx", "--layers", "4,2", "--batch-size", "2"], tmp_path / "skip.json")
    assert document["results"] == [{"backend": "mlx", "skipped": "BackendUnavailable: mlx is not installed here"}]


# ----------------------------------------------------------------------- overhead.py
def test_overhead_reports_every_case(bench, backend, tmp_path):
    overhead = bench("overhead")
    document = run(
        overhead,
        ["--backends", backend.name, "--blocks", "2", "--block-seconds", "0.002", "--warmup", "1"],
        tmp_path / "overhead.json",
    )
    (result,) = document["results"]
    assert result["backend"] == backend.name
    assert [case["case"] for case in result["cases"]] == list(overhead.CASES)
    for case in result["cases"]:
        if "skipped" in case:  # NumPy has no pytree module to compare with
            assert backend.name == "numpy" and case["case"].startswith("tree_"), case
            continue
        assert case["unit"] == "us per call"
        assert_timing(case["portable"], blocks=2)
        assert_timing(case["native"], blocks=2)
        assert case["ratio"] == pytest.approx(case["portable"]["median"] / case["native"]["median"])


# -------------------------------------------------------------------- mnist_epoch.py
@pytest.fixture
def mnist_dir():
    """MNIST from $PORTABLE_DL_DATA or the cache folder; the test is skipped without it."""
    return require_mnist()


def test_mnist_epoch_portable_fit_trains_the_textbook_model(bench, backend, mnist_dir, tmp_path):
    """40 images (4 steps of 10), eager, 2 rounds of E = 2 warm epochs: each round's seconds
    extrapolated to 60,000 images and marked so, the result the median of the rounds with
    their spread, every round kept; the reported loss is that of one SGD(0.01) epoch of the
    relu MLP[784, 16, 16, 10]."""
    mnist_epoch = bench("mnist_epoch")
    document = run(
        mnist_epoch,
        [
            "--backends",
            backend.name,
            "--natives",
            "none",
            "--examples",
            "40",
            "--repeats",
            "2",
            "--no-compile",
            "--data-dir",
            str(mnist_dir),
        ],
        tmp_path / "mnist.json",
    )
    settings = document["settings"]
    assert settings["extrapolated"] is True and settings["examples"] == 40
    assert settings["repeats"] == 2 and settings["warm_epochs"] == 2 and settings["threads"] == 1
    result = document["results"][f"portable {backend.name}"]
    assert result["status"] == "ok" and len(result["rounds"]) == 2
    for measured in result["rounds"]:
        raw = measured["raw_seconds"]
        assert set(raw) == {"one_epoch", "warm_one_epoch", "warm_3_epochs"}
        assert_positive(measured["first_epoch_seconds"], *raw.values())
        warm = (raw["warm_3_epochs"] - raw["warm_one_epoch"]) / 2
        if warm > 0:  # the warm epoch scaled to 60,000 images; the first adds the cold run's fixed part
            assert measured["seconds_per_epoch"] == pytest.approx(warm * 60000 / 40)
            assert measured["first_epoch_seconds"] == pytest.approx(max(raw["one_epoch"] - warm, 0) + warm * 1500)
            assert measured["ms_per_step"] == pytest.approx(warm / 4 * 1e3)
        else:
            assert measured["seconds_per_epoch"] is None
            assert measured["first_epoch_seconds"] == pytest.approx(raw["one_epoch"] * 60000 / 40)
        cpu = measured["raw_cpu_seconds"]
        assert set(cpu) == set(raw) and all(value >= 0 for value in cpu.values())
        cpu_warm = (cpu["warm_3_epochs"] - cpu["warm_one_epoch"]) / 2
        expected_cpu = cpu_warm * 1500 if cpu_warm > 0 else None
        assert measured["cpu_seconds_per_epoch"] == pytest.approx(expected_cpu)
    firsts = [measured["first_epoch_seconds"] for measured in result["rounds"]]
    assert result["first_epoch_seconds"] == pytest.approx(float(np.median(firsts)))
    assert result["first_epoch_spread"] == pytest.approx([min(firsts), max(firsts)])
    warms = [m["seconds_per_epoch"] for m in result["rounds"] if m["seconds_per_epoch"] is not None]
    if warms:
        assert result["seconds_per_epoch"] == pytest.approx(float(np.median(warms)))
        assert result["seconds_per_epoch_spread"] == pytest.approx([min(warms), max(warms)])
    x_train, y_train, _, _ = load_mnist(mnist_dir, download=False)
    x = x_train[:40].reshape(40, -1).astype(np.float32) / 255.0
    order = np.random.default_rng(0).permutation(40)  # fit's shuffling: default_rng(seed), seed 0
    expected = sgd_epoch_loss(mnist_epoch.initial_weights(0), x, y_train[:40].astype(np.int64), order, 10, 0.01)
    assert result["loss_after_first_epoch"] == pytest.approx(expected, rel=LOSS_RTOL)


def test_mnist_epoch_steps_per_call_keeps_the_loss(bench, mnist_dir, tmp_path):
    """``--steps-per-call 2`` goes to fit: 40 images in 2 calls of 2 steps, the same first
    epoch's loss as single steps (the float64 reference)."""
    mnist_epoch = bench("mnist_epoch")
    arguments = ["--backends", "numpy", "--natives", "none", "--examples", "40", "--repeats", "1"]
    arguments += ["--warm-epochs", "1", "--steps-per-call", "2", "--data-dir", str(mnist_dir)]
    document = run(mnist_epoch, arguments, tmp_path / "k.json")
    assert document["settings"]["steps_per_call"] == 2
    result = document["results"]["portable numpy"]
    assert set(result["rounds"][0]["raw_seconds"]) == {"one_epoch", "warm_one_epoch", "warm_2_epochs"}
    x_train, y_train, _, _ = load_mnist(mnist_dir, download=False)
    x = x_train[:40].reshape(40, -1).astype(np.float32) / 255.0
    order = np.random.default_rng(0).permutation(40)
    expected = sgd_epoch_loss(mnist_epoch.initial_weights(0), x, y_train[:40].astype(np.int64), order, 10, 0.01)
    assert result["loss_after_first_epoch"] == pytest.approx(expected, rel=LOSS_RTOL)


def test_mnist_epoch_native_loops(bench, mnist_dir, tmp_path):
    """Keras' model.fit and the PyTorch loop, where installed: finite positive times and a
    finite loss; a portable contender's ratio to each is the median of the same round's
    ratios, with their spread."""
    natives = [
        name
        for name, framework in (("keras", "tensorflow"), ("torch", "torch"))
        if framework in installed_backend_names()
    ]
    if not natives:
        pytest.skip("neither TensorFlow (Keras) nor PyTorch is installed")
    mnist_epoch = bench("mnist_epoch")
    document = run(
        mnist_epoch,
        [
            "--backends",
            "numpy",
            "--natives",
            ",".join(natives),
            "--examples",
            "40",
            "--repeats",
            "2",
            "--no-compile",
            "--in-process",
            "--data-dir",
            str(mnist_dir),
        ],
        tmp_path / "mnist.json",
    )
    portable = document["results"]["portable numpy"]
    for name in natives:
        label = mnist_epoch.NATIVE_LABELS[name]
        result = document["results"][label]
        assert result["status"] == "ok", result
        assert len(result["rounds"]) == 2
        for measured in result["rounds"]:
            assert_positive(measured["first_epoch_seconds"], *measured["raw_seconds"].values())
        assert math.isfinite(result["loss_after_first_epoch"])
        key = "ratio_to_keras" if name == "keras" else "ratio_to_torch_loop"
        ratios = [
            mine["seconds_per_epoch"] / theirs["seconds_per_epoch"]
            for mine, theirs in zip(portable["rounds"], result["rounds"])
            if mine["seconds_per_epoch"] and theirs["seconds_per_epoch"]
        ]
        if ratios:
            assert portable[key] == pytest.approx(float(np.median(ratios)))
            assert portable[key + "_spread"] == pytest.approx([min(ratios), max(ratios)])
        else:
            assert key not in portable
        cpu_ratios = [
            mine["cpu_seconds_per_epoch"] / theirs["cpu_seconds_per_epoch"]
            for mine, theirs in zip(portable["rounds"], result["rounds"])
            if mine["cpu_seconds_per_epoch"] and theirs["cpu_seconds_per_epoch"]
        ]
        if cpu_ratios:
            assert portable[key + "_cpu"] == pytest.approx(float(np.median(cpu_ratios)))
            assert portable[key + "_cpu_spread"] == pytest.approx([min(cpu_ratios), max(cpu_ratios)])


def test_thread_environment_pins_every_pool(bench):
    """--threads 1 sets OpenMP/MKL/OpenBLAS, both TensorFlow pools and XLA's; 0 sets nothing."""
    mnist_epoch = bench("mnist_epoch")
    pinned = mnist_epoch.thread_environment(1)
    assert {pinned[name] for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")} == {"1"}
    assert "intra_op_parallelism_threads=1" in pinned["XLA_FLAGS"]
    assert mnist_epoch.thread_environment(0) == {}


# ---------------------------------------------------------------------- profile_step.py
def test_profile_step_times_every_part(bench, capsys):
    """Every part of the JAX step gets a finite positive time per step; the GEMM work is
    2 * batch * (2 * sum of in*out + sum of in*out past the first layer) flops."""
    if "jax" not in installed_backend_names():
        pytest.skip("JAX is not installed")
    profile = bench("profile_step")
    assert profile.main(["--layers", "6,5,3", "--batch-size", "4", "--steps-per-call", "2"] + ["--steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines[2:-1])}
    assert len(rows) == 9 and "portable steps_per_call=2" in rows
    for values in rows.values():
        assert_positive(*(float(value) for value in values))
    assert lines[-1].startswith(f"GEMM work of one step: {2 * 4 * (2 * (30 + 15) + 15) / 1e9:.3g} GFLOP")


# ---------------------------------------------------------------- profile_eager_torch.py
def test_profile_eager_torch_times_every_part(bench, capsys):
    """Every part of the eager torch step gets a finite positive wall and CPU time per call."""
    if "torch" not in installed_backend_names():
        pytest.skip("PyTorch is not installed")
    profile = bench("profile_eager_torch")
    assert profile.main(["--layers", "6,5,3", "--batch-size", "4", "--steps", "2", "--blocks", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines[2:-1])}
    assert len(rows) == 9 and "Adam update, portable fused" in rows and "forward + backward, native" in rows
    for values in rows.values():
        assert_positive(*(float(value) for value in values))
