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

How an epoch is timed. A round of one contender trains from fresh weights for one epoch
(time T1, the first epoch as a user meets it, tracing and compiling included), then, warm,
for one epoch (W1) and for 1 + E epochs (WE, E = ``--warm-epochs``, 2). (WE - W1) / E is a
warm epoch: both warm runs pay the same fixed costs (a new step to trace, weights and data
to the device), which cancel. (T2 - T1 would not be: a framework keeps what it compiled for
the next run.) With ``--examples N`` below 60,000 the epoch uses the first N images, the
warm epoch is scaled by 60000 / N and the first epoch is its fixed part T1 - warm plus that
warm epoch (marked "extrapolated").

Stability. ``--repeats`` rounds (3), each a fresh process per contender, the contenders in
alternating order (A B C, C B A, ...), so that a change of the machine's load between
contenders falls on all of them; a contender's result is the median over its rounds, with
the spread (min, max), and a ratio is the median of the ratios of the same round (measured
minutes apart at most, not a run apart). Every round's raw times are kept in the JSON.
Threads are pinned alike for every contender (``--threads``, 1 by default: OpenMP, MKL,
TensorFlow's intra- and inter-op pools, XLA's Eigen pool). Besides the wall clock, each round
records this process's CPU time, which leaves out the time other processes held the cores:
on a shared machine its ratios are the steadier. Why TensorFlow's ratio to Keras moved
between 0.6 and 3.4 with the old method (one run of each, W2 - W1): bench/README.md,
"mnist_epoch.py stability".

    python bench/mnist_epoch.py                                  # full epochs, all installed
    python bench/mnist_epoch.py --examples 6000 --backends jax,torch
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
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


def portable_trainer(backend: pdl.Backend, seed: int, compile: bool, steps_per_call: int = 1) -> Trainer:
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
            **({"steps_per_call": steps_per_call} if steps_per_call > 1 else {}),
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


def time_contender(train: Trainer, x: np.ndarray, y: np.ndarray, warm_epochs: int = 2) -> dict:
    """One round: the first epoch as a user meets it, and a warm epoch; see the module docstring.

    Three runs, each from fresh weights: one epoch cold (T1, tracing and compiling
    included), then one epoch (W1) and ``1 + warm_epochs`` epochs (WE) warm. A framework
    keeps what it compiled for the next run (torch.compile's and XLA's caches), so only
    (WE - W1) / warm_epochs is a warm epoch: the fixed costs of a warm run (a new step to
    trace, weights and batches to the device) cancel in it. The first epoch is T1's fixed
    part, T1 - warm, plus one warm epoch at full size."""

    cpu: list[float] = []  # this process's CPU time of each run, all threads

    def timed(epochs: int) -> tuple[float, float]:
        cpu_start, start = time.process_time(), time.perf_counter()
        loss = train(x, y, epochs)
        cpu.append(time.process_time() - cpu_start)
        return time.perf_counter() - start, loss

    one_epoch, loss = timed(1)
    warm_one, _ = timed(1)
    warm_more, _ = timed(1 + warm_epochs)
    cpu_warm = (cpu[2] - cpu[1]) / warm_epochs
    scale = FULL_EPOCH / len(x)
    steps = math.ceil(len(x) / BATCH_SIZE)
    warm = (warm_more - warm_one) / warm_epochs
    measured = {
        "status": "ok",
        "first_epoch_seconds": max(one_epoch - warm, 0.0) + warm * scale if warm > 0 else one_epoch * scale,
        "seconds_per_epoch": warm * scale if warm > 0 else None,
        "ms_per_step": warm / steps * 1e3 if warm > 0 else None,
        "raw_seconds": {
            "one_epoch": one_epoch,
            "warm_one_epoch": warm_one,
            f"warm_{1 + warm_epochs}_epochs": warm_more,
        },
        # CPU time leaves out the time other processes held the cores: steadier on a shared machine
        "cpu_seconds_per_epoch": cpu_warm * scale if cpu_warm > 0 else None,
        "raw_cpu_seconds": dict(zip(("one_epoch", "warm_one_epoch", f"warm_{1 + warm_epochs}_epochs"), cpu)),
        "loss_after_first_epoch": loss,
    }
    if warm <= 0:
        measured["note"] = "WE - W1 was not positive (fixed costs varied more than epochs cost): use more --examples"
    return measured


def summarize(rounds: list[dict]) -> dict:
    """A contender's result from its rounds (each :func:`time_contender`'s dict): the medians
    of its first and warm epochs over rounds, their spread (min, max), and every round."""
    measured = [result for result in rounds if result["status"] == "ok"]
    if not measured:
        return rounds[0]

    def stats(key: str) -> tuple[float | None, list[float] | None]:
        values = [result[key] for result in measured if result[key] is not None]
        return (statistics.median(values), [min(values), max(values)]) if values else (None, None)

    first, first_spread = stats("first_epoch_seconds")
    warm, warm_spread = stats("seconds_per_epoch")
    steps_ms, _ = stats("ms_per_step")
    cpu_warm, cpu_spread = stats("cpu_seconds_per_epoch")
    summary = {
        "status": "ok",
        "first_epoch_seconds": first,
        "first_epoch_spread": first_spread,
        "seconds_per_epoch": warm,
        "seconds_per_epoch_spread": warm_spread,
        "ms_per_step": steps_ms,
        "cpu_seconds_per_epoch": cpu_warm,
        "cpu_seconds_per_epoch_spread": cpu_spread,
        "loss_after_first_epoch": measured[0]["loss_after_first_epoch"],
        "rounds": rounds,
    }
    notes = sorted({result["note"] for result in measured if "note" in result})
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def round_ratios(results: dict[str, dict], native: str) -> None:
    """Add ``ratio_to_keras`` / ``ratio_to_torch_loop`` to each portable contender: the median
    over rounds of its warm epoch over the native one of the same round, with the spread."""
    key = "ratio_to_keras" if native == "keras" else "ratio_to_torch_loop"
    reference = results.get(native, {})
    for name, result in results.items():
        if not name.startswith("portable") or result["status"] != "ok" or reference.get("status") != "ok":
            continue
        for measure, suffix in (("seconds_per_epoch", ""), ("cpu_seconds_per_epoch", "_cpu")):
            ratios = [
                mine[measure] / theirs[measure]
                for mine, theirs in zip(result["rounds"], reference["rounds"])
                if mine.get(measure) and theirs.get(measure)
            ]
            if ratios:
                result[key + suffix] = statistics.median(ratios)
                result[key + suffix + "_spread"] = [min(ratios), max(ratios)]


def contenders(arguments: argparse.Namespace) -> dict[str, Callable[[], Trainer]]:
    """Builders of every contender asked for, by name (built lazily: each imports its framework)."""
    built: dict[str, Callable[[], Trainer]] = {}
    for name in arguments.backends:
        built[f"portable {name}"] = lambda name=name: portable_trainer(
            pdl.backend(name), arguments.seed, not arguments.no_compile, arguments.steps_per_call
        )
    if "keras" in arguments.natives:
        built[NATIVE_LABELS["keras"]] = lambda: keras_trainer(initial_weights(arguments.seed), arguments.seed)
    if "torch" in arguments.natives:
        built[NATIVE_LABELS["torch"]] = lambda: torch_trainer(initial_weights(arguments.seed), arguments.seed)
    return built


def measure_in_this_process(arguments: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """Time every contender asked for in this process: ``--repeats`` rounds, the contenders
    in alternating order (each built once: only its first round's T1 is cold)."""
    trainers: dict[str, Trainer] = {}
    rounds: dict[str, list[dict]] = {}
    for name, build in contenders(arguments).items():
        try:
            trainers[name] = build()
        except (pdl.BackendUnavailable, ImportError, RuntimeError) as error:
            rounds[name] = [{"status": "skipped", "reason": describe_error(error)}]
            continue
        rounds[name] = []
    names = list(trainers)
    for repeat in range(arguments.repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            rounds[name].append(time_contender(trainers[name], x, y, arguments.warm_epochs))
            print(f"  {name}: round {repeat + 1} done", file=sys.stderr, flush=True)
    return {name: summarize(rounds[name]) for name in rounds}


def _spread(value: float | None, spread: list[float] | None) -> str:
    """``"1.23 (1.1-1.4)"``: a median and its spread over rounds."""
    if value is None:
        return "-"
    if not spread or len(set(spread)) == 1:
        return format_number(value)
    return f"{format_number(value)} ({format_number(spread[0])}-{format_number(spread[1])})"


def print_results(results: dict[str, dict]) -> None:
    rows = []
    for name, result in results.items():
        if result["status"] != "ok":
            rows.append([name, "-", "-", "-", "-", "-", "-", "-", "-", "-", f"{result['status']}: {result['reason']}"])
            continue
        rows.append(
            [
                name,
                _spread(result["first_epoch_seconds"], result.get("first_epoch_spread")),
                _spread(result["seconds_per_epoch"], result.get("seconds_per_epoch_spread")),
                format_number(result["ms_per_step"]),
                _spread(result.get("cpu_seconds_per_epoch"), result.get("cpu_seconds_per_epoch_spread")),
                _spread(result.get("ratio_to_keras"), result.get("ratio_to_keras_spread")),
                _spread(result.get("ratio_to_keras_cpu"), result.get("ratio_to_keras_cpu_spread")),
                _spread(result.get("ratio_to_torch_loop"), result.get("ratio_to_torch_loop_spread")),
                _spread(result.get("ratio_to_torch_loop_cpu"), result.get("ratio_to_torch_loop_cpu_spread")),
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
                "cpu s / epoch",
                "/ keras",
                "cpu / keras",
                "/ torch loop",
                "cpu / torch loop",
                "loss (epoch 1)",
                "note",
            ],
            rows,
        )
    )
    print("medians over rounds, (min-max) over rounds; ratios: the median of the same round's ratios;")
    print("cpu: this process's CPU time (all threads), which leaves out the time other processes held the cores")


def thread_environment(threads: int) -> dict[str, str]:
    """The variables that give OpenMP/MKL/OpenBLAS (PyTorch, NumPy), TensorFlow's intra- and
    inter-op pools and XLA's Eigen pool (JAX) ``threads`` threads each; {} for 0 (the
    frameworks' own defaults). Read when a framework is imported, so set before that."""
    if threads <= 0:
        return {}
    count = str(threads)
    environment = {
        name: count
        for name in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS",
        )
    }
    if threads == 1:  # added to the user's XLA flags, not replacing them
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        environment["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    return environment


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
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds per contender, each a fresh process, in alternating order"
    )
    parser.add_argument(
        "--warm-epochs", type=int, default=2, help="E: a warm epoch is (time of 1 + E epochs - time of 1) / E"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads of every framework's pools, the same for every contender (0: the frameworks' defaults)",
    )
    parser.add_argument(
        "--steps-per-call", type=int, default=1, help="fit(..., steps_per_call=k) for the portable contenders"
    )
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
    for name in ("repeats", "warm_epochs", "steps_per_call"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if arguments.threads < 0:
        parser.error("--threads must be at least 0")
    return arguments


def measure_in_own_processes(argv: list[str], selections: dict[str, list[str]], repeats: int) -> dict[str, dict]:
    """``repeats`` rounds of a fresh process per contender, in alternating order; each
    process runs one round (``--repeats 1``). A contender's rounds are then summarized."""
    rounds: dict[str, list[dict]] = {label: [] for label in selections}
    labels = list(selections)
    for repeat in range(repeats):
        order = labels if repeat % 2 == 0 else labels[::-1]
        documents = run_in_own_processes(
            __file__, argv, {label: [*selections[label], "--repeats", "1"] for label in order}
        )
        for label in order:
            if "results" in documents[label]:
                rounds[label].extend(
                    documents[label]["results"][label].get("rounds", [documents[label]["results"][label]])
                )
            else:
                rounds[label].append({"status": "failed", "reason": documents[label]["failed"]})
    return {label: summarize(rounds[label]) for label in labels}


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
        "repeats": arguments.repeats,
        "warm_epochs": arguments.warm_epochs,
        "threads": arguments.threads,
        "steps_per_call": arguments.steps_per_call,
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
    # Pinned before any framework is imported, here and (inherited) in every contender's process.
    os.environ.update(thread_environment(arguments.threads))
    selections = {
        **{f"portable {name}": ["--backends", name, "--natives", "none"] for name in arguments.backends},
        **{NATIVE_LABELS[name]: ["--backends", "none", "--natives", name] for name in arguments.natives},
    }
    if len(selections) > 1 and not arguments.in_process:
        results = measure_in_own_processes(argv, selections, arguments.repeats)
    else:
        results = measure_in_this_process(arguments, x, y)
    for native in ("keras", "torch loop"):
        round_ratios(results, native)
    print_results(results)
    path = write_json(arguments.output, document("mnist_epoch", settings, results=results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
