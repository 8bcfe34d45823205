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


@pytest.fixture
def bench(monkeypatch):
    """``bench(name)``: the script bench/<name>.py loaded as a module (bench/ on sys.path,
    as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(BENCH))

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
    """40 images (4 steps of 10), eager: seconds extrapolated to 60,000 images and marked so;
    the reported loss is that of one SGD(0.01) epoch of the relu MLP[784, 16, 16, 10]."""
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
            "--no-compile",
            "--data-dir",
            str(mnist_dir),
        ],
        tmp_path / "mnist.json",
    )
    assert document["settings"]["extrapolated"] is True and document["settings"]["examples"] == 40
    result = document["results"][f"portable {backend.name}"]
    assert result["status"] == "ok"
    assert_positive(result["first_epoch_seconds"], *result["raw_seconds"].values())
    raw = result["raw_seconds"]
    warm = raw["warm_two_epochs"] - raw["warm_one_epoch"]
    if warm > 0:  # the warm epoch scaled to 60,000 images; the first adds the cold run's fixed part
        assert result["seconds_per_epoch"] == pytest.approx(warm * 60000 / 40)
        assert result["first_epoch_seconds"] == pytest.approx(max(raw["one_epoch"] - warm, 0) + warm * 60000 / 40)
    else:
        assert result["seconds_per_epoch"] is None
        assert result["first_epoch_seconds"] == pytest.approx(raw["one_epoch"] * 60000 / 40)
    x_train, y_train, _, _ = load_mnist(mnist_dir, download=False)
    x = x_train[:40].reshape(40, -1).astype(np.float32) / 255.0
    order = np.random.default_rng(0).permutation(40)  # fit's shuffling: default_rng(seed), seed 0
    expected = sgd_epoch_loss(mnist_epoch.initial_weights(0), x, y_train[:40].astype(np.int64), order, 10, 0.01)
    assert result["loss_after_first_epoch"] == pytest.approx(expected, rel=LOSS_RTOL)


def test_mnist_epoch_native_loops(bench, mnist_dir, tmp_path):
    """Keras' model.fit and the PyTorch loop, where installed: finite positive times and a
    finite loss; ratios of a portable contender to each."""
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
        assert_positive(result["first_epoch_seconds"], *result["raw_seconds"].values())
        assert math.isfinite(result["loss_after_first_epoch"])
        key = "ratio_to_keras" if name == "keras" else "ratio_to_torch_loop"
        if result["seconds_per_epoch"] and portable["seconds_per_epoch"]:
            assert portable[key] == pytest.approx(portable["seconds_per_epoch"] / result["seconds_per_epoch"])
