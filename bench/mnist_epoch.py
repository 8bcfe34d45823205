"""Seconds per epoch of the textbook MNIST experiment: ``portable_dl.fit`` on each backend
beside Keras ``model.fit`` and a plain PyTorch loop.

The experiment (as ``examples/mnist_textbook.py``): MLP([784, 16, 16, 10]) with relu,
softmax cross-entropy on integer labels, SGD with learning rate 0.01, batches of 10, the
60,000 training images scaled to [0, 1] in float32; every contender starts from the same
weights (portable_dl's He-normal initializer, seed 0). At batch 10 an epoch is 6,000
steps, so the fixed cost of a step is what is measured.

========================  ================================================================
contender                 what runs
========================  ================================================================
``portable <backend>``    ``portable_dl.fit(model, params, cross_entropy, SGD(0.01), backend,
                          x, y, epochs, batch_size=10, verbose=0)``: the step compiled by
                          the backend's compiler (``--no-compile``: eager)
``keras``                 ``model.fit(x, y, batch_size=10, epochs, verbose=0)`` of a Keras
                          ``Sequential`` of ``Dense`` layers, compiled with ``SGD(0.01)`` and
                          ``SparseCategoricalCrossentropy(from_logits=True)`` (Keras' defaults
                          otherwise)
``torch loop``            ``nn.Sequential`` + ``torch.optim.SGD``: a shuffled index tensor per
                          epoch, then per batch ``zero_grad``, ``backward``, ``step``
                          (no DataLoader); losses summed on the device, read once per epoch
========================  ================================================================

How an epoch is timed. Each contender trains from fresh weights for one epoch (time T1,
the first epoch as a user meets it, tracing and compiling included), then, warm, for one
epoch (W1) and for two (W2). W2 - W1 is a warm epoch: both warm runs pay the same fixed
costs. (T2 - T1 would not be: a framework keeps what it compiled for the next run.) With
``--examples N`` below 60,000 the epoch uses the first N images, the warm epoch is scaled
by 60000 / N and the first epoch is its fixed part T1 - (W2 - W1) plus that warm epoch
(marked "extrapolated").

    python bench/mnist_epoch.py                                  # full epochs, all installed
    python bench/mnist_epoch.py --examples 6000 --backends jax,torch
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _timing import (
    describe_error,
    document,
    format_number,
    run_in_own_processes,
    split_names,
    table,
    write_json,
)

import portable_dl as pdl
from portable_dl import losses, nn, optimizers
from portable_dl.data import DatasetNotFound, load_mnist

BENCH = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH / "results" / "mnist_epoch.json"
BACKENDS = ("numpy", "torch", "tensorflow", "mlx", "jax")
NATIVES = ("keras", "torch")
NATIVE_LABELS = {"keras": "keras", "torch": "torch loop"}
LAYERS = (784, 16, 16, 10)
LEARNING_RATE = 0.01
BATCH_SIZE = 10
FULL_EPOCH = 60000

#: ``train(x, y, epochs) -> final loss``: trains from fresh weights on NumPy ``x`` (N, 784)
#: float32 and ``y`` (N,) int64.
Trainer = Callable[[np.ndarray, np.ndarray, int], float]


def initial_weights(seed: int, backend: pdl.Backend | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(W (in, out), b (out,)), ...]`` as float32 NumPy arrays, drawn by portable_dl's
    initializer, the same through every backend (default NumPy). A portable contender
    draws them through its own backend, so that its process creates no other backend
    (each one created adds a little to every ``backend_of`` lookup of the front end)."""
    backend = backend if backend is not None else pdl.backend("numpy")
    params = nn.MLP(LAYERS).init(seed, backend=backend, dtype="float32")
    return [(backend.to_numpy(layer["W"]), backend.to_numpy(layer["b"])) for layer in params["layers"]]


def portable_trainer(backend: pdl.Backend, seed: int, compile: bool) -> Trainer:
    model = nn.MLP(LAYERS, activation="relu")
    weights = initial_weights(seed, backend)

    def train(x: np.ndarray, y: np.ndarray, epochs: int) -> float:
        params = {"layers": [{"W": backend.asarray(W), "b": backend.asarray(b)} for W, b in weights]}
        result = pdl.fit(
            model,
            params,
            losses.cross_entropy,
            optimizers.SGD(LEARNING_RATE),
            backend,
            x,
            y,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            seed=seed,
            compile=compile,
            verbose=0,
        )
        return result.history["loss"][-1]

    return train


def keras_trainer(weights: list, seed: int) -> Trainer:
    """Keras' own loop: ``model.fit`` of a compiled ``Sequential``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"Keras runs on {keras.backend.backend()!r} here (KERAS_BACKEND), not TensorFlow")

    def train(x: np.ndarray, y: np.ndarray, epochs: int) -> float:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((LAYERS[0],))]
            + [
                keras.layers.Dense(W.shape[1], activation="relu" if index < len(weights) - 1 else None)
                for index, (W, _) in enumerate(weights)
            ]
        )
        model.set_weights([array for pair in weights for array in pair])
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
        return float(history.history["loss"][-1])

    return train


def torch_trainer(weights: list, seed: int) -> Trainer:
    """The PyTorch loop a tutorial writes, with index tensors instead of a DataLoader."""
    import torch
    import torch.nn.functional as F

    def train(x: np.ndarray, y: np.ndarray, epochs: int) -> float:
        layers: list[Any] = []
        for index, (W, b) in enumerate(weights):
            linear = torch.nn.Linear(*W.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W.T.copy()))
                linear.bias.copy_(torch.from_numpy(b))
            layers += [linear] if index == len(weights) - 1 else [linear, torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
        generator = torch.Generator().manual_seed(seed)
        count = len(inputs)
        mean_loss = math.nan
        for _ in range(epochs):
            order = torch.randperm(count, generator=generator)
            total = torch.zeros(())
            for start in range(0, count, BATCH_SIZE):
                index = order[start : start + BATCH_SIZE]
                optimizer.zero_grad()
                loss = F.cross_entropy(model(inputs[index]), labels[index])
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(index)
            mean_loss = float(total) / count
        return mean_loss

    return train


def time_contender(train: Trainer, x: np.ndarray, y: np.ndarray) -> dict:
    """The first epoch as a user meets it, and a warm epoch; see the module docstring.

    Three runs, each from fresh weights: one epoch cold (T1, tracing and compiling
    included), then one epoch (W1) and two epochs (W2) warm. A framework keeps what it
    compiled for the next run (torch.compile's and XLA's caches), so only W2 - W1 is a warm
    epoch: the fixed costs of a warm run (weights, batches to the device) cancel in it. The
    first epoch is T1's fixed part, T1 - (W2 - W1), plus one warm epoch at full size."""

    def timed(epochs: int) -> tuple[float, float]:
        start = time.perf_counter()
        loss = train(x, y, epochs)
        return time.perf_counter() - start, loss

    one_epoch, loss = timed(1)
    warm_one, _ = timed(1)
    warm_two, _ = timed(2)
    scale = FULL_EPOCH / len(x)
    steps = math.ceil(len(x) / BATCH_SIZE)
    warm = warm_two - warm_one
    measured = {
        "status": "ok",
        "first_epoch_seconds": max(one_epoch - warm, 0.0) + warm * scale if warm > 0 else one_epoch * scale,
        "seconds_per_epoch": warm * scale if warm > 0 else None,
        "ms_per_step": warm / steps * 1e3 if warm > 0 else None,
        "raw_seconds": {"one_epoch": one_epoch, "warm_one_epoch": warm_one, "warm_two_epochs": warm_two},
        "loss_after_first_epoch": loss,
    }
    if warm <= 0:
        measured["note"] = "W2 - W1 was not positive (fixed costs varied more than an epoch costs): use more --examples"
    return measured


def contenders(arguments: argparse.Namespace) -> dict[str, Callable[[], Trainer]]:
    """Builders of every contender asked for, by name (built lazily: each imports its framework)."""
    built: dict[str, Callable[[], Trainer]] = {}
    for name in arguments.backends:
        built[f"portable {name}"] = lambda name=name: portable_trainer(
            pdl.backend(name), arguments.seed, not arguments.no_compile
        )
    if "keras" in arguments.natives:
        built[NATIVE_LABELS["keras"]] = lambda: keras_trainer(initial_weights(arguments.seed), arguments.seed)
    if "torch" in arguments.natives:
        built[NATIVE_LABELS["torch"]] = lambda: torch_trainer(initial_weights(arguments.seed), arguments.seed)
    return built


def measure_in_this_process(arguments: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """Time every contender asked for, one after the other, in this process."""
    results: dict[str, dict] = {}
    for name, build in contenders(arguments).items():
        try:
            trainer = build()
        except (pdl.BackendUnavailable, ImportError, RuntimeError) as error:
            results[name] = {"status": "skipped", "reason": describe_error(error)}
            continue
        results[name] = time_contender(trainer, x, y)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return results


def print_results(results: dict[str, dict]) -> None:
    rows = []
    for name, result in results.items():
        if result["status"] != "ok":
            rows.append([name, "-", "-", "-", "-", "-", "-", f"{result['status']}: {result['reason']}"])
            continue
        rows.append(
            [
                name,
                format_number(result["first_epoch_seconds"]),
                format_number(result["seconds_per_epoch"]),
                format_number(result["ms_per_step"]),
                format_number(result.get("ratio_to_keras")),
                format_number(result.get("ratio_to_torch_loop")),
                f"{result['loss_after_first_epoch']:.4f}",
                result.get("note", ""),
            ]
        )
    print(
        table(
            [
                "contender",
                "first epoch s",
                "s / epoch",
                "ms / step",
                "/ keras",
                "/ torch loop",
                "loss (epoch 1)",
                "note",
            ],
            rows,
        )
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--backends", default=None, help="portable backends, comma-separated, or all (default)")
    parser.add_argument("--natives", default="keras,torch", help="native loops: keras, torch, both, or none")
    parser.add_argument(
        "--examples",
        type=int,
        default=FULL_EPOCH,
        help="training images per epoch (the first N); below 60000 the seconds are extrapolated",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder of the MNIST IDX files (default: $PORTABLE_DL_DATA, then the cache folder "
        "that `portable-dl data mnist` fills)",
    )
    parser.add_argument("--no-compile", action="store_true", help="portable steps eager instead of compiled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="the JSON file written")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every contender in this process (default: a fresh process per contender)",
    )
    arguments = parser.parse_args(argv)
    arguments.backends = split_names(arguments.backends, BACKENDS)
    arguments.natives = split_names(arguments.natives, NATIVES)
    if not 1 <= arguments.examples <= FULL_EPOCH:
        parser.error(f"--examples must lie in [1, {FULL_EPOCH}]")
    return arguments


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = parse_arguments(argv)
    settings = {
        "layers": list(LAYERS),
        "activation": "relu",
        "loss": "cross_entropy",
        "optimizer": "SGD",
        "lr": LEARNING_RATE,
        "batch_size": BATCH_SIZE,
        "dtype": "float32",
        "examples": arguments.examples,
        "extrapolated": arguments.examples < FULL_EPOCH,
        "compile": not arguments.no_compile,
        "seed": arguments.seed,
        # The data set, not the folder it was read from: a path names one machine's layout,
        # and load_mnist checks every file's SHA-256, so "MNIST" is the same data everywhere.
        "data": "MNIST (SHA-256 checked)",
    }
    try:
        x_train, y_train, _, _ = load_mnist(arguments.data_dir, download=False)
    except DatasetNotFound as error:
        print(f"MNIST not found, nothing measured: {describe_error(error)}")
        write_json(arguments.output, document("mnist_epoch", settings, skipped=describe_error(error), results={}))
        return 0
    x = x_train[: arguments.examples].reshape(arguments.examples, -1).astype(np.float32) / 255.0
    y = y_train[: arguments.examples].astype(np.int64)
    extrapolated = f", seconds extrapolated from {arguments.examples} images" if settings["extrapolated"] else ""
    print(
        f"MNIST epoch: MLP{list(LAYERS)} relu, SGD {LEARNING_RATE}, batch {BATCH_SIZE}, {len(x)} images per "
        f"epoch{extrapolated}",
        flush=True,
    )
    selections = {
        **{f"portable {name}": ["--backends", name, "--natives", "none"] for name in arguments.backends},
        **{NATIVE_LABELS[name]: ["--backends", "none", "--natives", name] for name in arguments.natives},
    }
    if len(selections) > 1 and not arguments.in_process:
        documents = run_in_own_processes(__file__, argv, selections)
        results = {
            label: documents[label]["results"][label]
            if "results" in documents[label]
            else {"status": "failed", "reason": documents[label]["failed"]}
            for label in selections
        }
    else:
        results = measure_in_this_process(arguments, x, y)
    for name, result in results.items():
        if name.startswith("portable") and result["status"] == "ok":
            for native, key in (("keras", "ratio_to_keras"), ("torch loop", "ratio_to_torch_loop")):
                reference = results.get(native, {}).get("seconds_per_epoch")
                if reference and result["seconds_per_epoch"]:
                    result[key] = result["seconds_per_epoch"] / reference
    print_results(results)
    path = write_json(arguments.output, document("mnist_epoch", settings, results=results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
