"""The same MLP trained on MNIST, from the same initial weights and the same batches, on
every installed backend; their loss curves against the reference's, and their speed.

Every run starts from one set of initial weights (drawn once by ``MLP.init`` in NumPy and
moved with ``asarray``, so the bits are the same everywhere) and takes the same mini-batches
in the same seeded order (``portable_dl.data.batches``), one compiled training step
(``portable_dl.make_train_step``) at a time; the loss of every step is kept. The reference
is the same training on the NumPy backend in float64, the project's reference, from the
same initial weights: a backend's divergence is the largest difference between its loss
curve and the reference's, divided by the reference curve's largest value (norm-wise, as
the conformance suite measures), and is judged against the conformance suite's tolerance
for a training run of that many steps (``portable_dl.conformance.tolerances``).

Timing: the first step (compilation and first-call costs) is left out; the clock is read
after ``Backend.synchronize``, so work queued by an asynchronous or lazy framework (JAX,
MLX, a GPU) is counted. A step's time includes cutting and moving its batch. Batches all
have the same size (a last, smaller batch is dropped) so that no step recompiles.

The table: backend, device, dtype, compiled or not, test accuracy, last loss, milliseconds
per step, steps per second, the largest divergence and its tolerance. The figure: the loss
curves, and each one's divergence from the reference step by step.

    python examples/compare_backends.py                       # every installed backend
    python examples/compare_backends.py --backends numpy,torch --optimizer adam --epochs 2
    python examples/compare_backends.py --device cuda --train-size 60000   # where a GPU is
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _shared
import numpy as np
from portable_dl.conformance.tolerances import value_tolerance

import portable_dl
from portable_dl.data import batches
from portable_dl.losses import cross_entropy
from portable_dl.nn import MLP
from portable_dl.optimizers import SGD, Adagrad, Adam, AdamW, NAdam, RMSprop
from portable_dl.training import make_train_step, predict

#: name -> (optimizer for a learning rate, the default learning rate)
OPTIMIZERS: dict[str, tuple[Callable[[float], Any], float]] = {
    "sgd": (lambda lr: SGD(lr), 0.1),
    "momentum": (lambda lr: SGD(lr, momentum=0.9), 0.02),
    "adam": (lambda lr: Adam(lr), 1e-3),
    "adamw": (lambda lr: AdamW(lr), 1e-3),
    "nadam": (lambda lr: NAdam(lr), 2e-3),
    "rmsprop": (lambda lr: RMSprop(lr), 1e-3),
    "adagrad": (lambda lr: Adagrad(lr), 0.05),
}
# torch.compile warns, once per function, that it traces through array_api_compat's
# lru_cache-wrapped helpers; harmless here (they map a type to its namespace), and a page long.
warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")

SYNC_EVERY = 10  # steps between synchronizations: bounds MLX's lazy graph, keeps others asynchronous
MNIST_TRAIN_SIZE = 60000
REFERENCE = ("numpy", "float64")


def parse_arguments(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_shared.HelpFormatter)
    _shared.add_backend_arguments(parser)
    parser.add_argument(
        "--sizes", default="784,128,10", help="layer sizes of the MLP, from the 784 pixels to the 10 classes"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="examples per step")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training subset")
    parser.add_argument("--train-size", type=int, default=3200, help="training images used (the first N)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd", help="the update rule")
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: " + ", ".join(f"{name} {lr:g}" for name, (_, lr) in OPTIMIZERS.items()) + ")",
    )
    _shared.add_dtype_argument(parser)  # of the compared runs; the reference runs in float64
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and of the batch order")
    parser.add_argument(
        "--no-compile", action="store_true", help="run the step eagerly, without the backend's compiler"
    )
    _shared.add_data_arguments(parser)
    _shared.add_plot_arguments(parser, "compare_backends.png")
    arguments = parser.parse_args(argv)
    try:
        arguments.sizes = [int(size) for size in arguments.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes takes comma-separated integers, got {arguments.sizes!r}")
    if len(arguments.sizes) < 2 or arguments.sizes[0] != 784 or arguments.sizes[-1] != 10 or min(arguments.sizes) < 1:
        parser.error(f"--sizes must run from 784 (the pixels) to 10 (the classes), got {arguments.sizes}")
    if arguments.batch_size < 1 or arguments.epochs < 1:
        parser.error("--batch-size and --epochs must be at least 1")
    if not arguments.batch_size <= arguments.train_size <= MNIST_TRAIN_SIZE:
        parser.error(f"--train-size must lie between --batch-size ({arguments.batch_size}) and {MNIST_TRAIN_SIZE}")
    if arguments.epochs * (arguments.train_size // arguments.batch_size) < 2:
        parser.error("training must take at least two steps (the first, which compiles, is not timed)")
    if arguments.lr is None:
        arguments.lr = OPTIMIZERS[arguments.optimizer][1]
    return arguments, _shared.requested_backend_names(parser, arguments.backends)


@dataclass
class Run:
    """One backend's training: its loss after every step and its speed."""

    backend: portable_dl.Backend
    dtype: str
    compiled: str  # "yes", "no" (eager), or "no compiler" where the backend has none
    losses: np.ndarray  # (steps,) float64, the loss of each step's batch before its update
    seconds_per_step: float  # over the steps after the first
    accuracy: float  # on the MNIST test images

    @property
    def label(self) -> str:
        return f"{self.backend.name} ({self.backend.device}, {self.dtype}{', eager' if self.compiled == 'no' else ''})"


def flatten_and_scale(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float64 rows (N, 784) in [0, 1]; each run casts its batches."""
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def train(
    backend: portable_dl.Backend, dtype: str, initial_params: Any, data: tuple, arguments: argparse.Namespace
) -> Run:
    """Train from ``initial_params`` (NumPy arrays) on ``backend`` in ``dtype``; keep every step's loss."""
    x_train, y_train, x_test, y_test = data
    model = MLP(arguments.sizes)
    params = backend.tree_asarray(initial_params, dtype)

    def loss_fn(params: Any, batch: tuple) -> Any:
        images, labels = batch
        return cross_entropy(model.apply(params, images), labels)

    make_optimizer = OPTIMIZERS[arguments.optimizer][0]
    step = make_train_step(loss_fn, make_optimizer(arguments.lr), backend, compile=not arguments.no_compile)
    opt_state = step.init(params)
    shuffling = np.random.default_rng(arguments.seed)  # one stream over the epochs, as fit draws it
    losses, started = [], None
    for _ in range(arguments.epochs):
        for batch in batches(
            x_train, y_train, arguments.batch_size, backend, seed=shuffling, dtype=dtype, drop_last=True
        ):
            params, opt_state, loss = step(params, opt_state, batch)
            losses.append(loss)  # stays on the device: reading it now would wait for it
            if started is None:  # the first step compiled: start the clock once it is done
                backend.synchronize((params, opt_state, loss))
                started = time.perf_counter()
            elif len(losses) % SYNC_EVERY == 0:
                backend.synchronize((params, opt_state, loss))
    backend.synchronize((params, opt_state, losses))
    seconds_per_step = (time.perf_counter() - started) / (len(losses) - 1)
    logits = predict(model, params, backend, x_test, batch_size=1000, dtype=dtype)
    curve = np.array([float(backend.to_numpy(loss)) for loss in losses])
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    return Run(backend, dtype, compiled_or_not(backend, step.compiled), curve, seconds_per_step, accuracy)


def compiled_or_not(backend: portable_dl.Backend, asked: bool) -> str:
    """What the "compiled" column says: a backend whose ``compile`` is the contract's
    identity (NumPy) has no compiler to run."""
    if type(backend).compile is portable_dl.Backend.compile:
        return "no compiler"
    return "yes" if asked else "no"


def divergence(run: Run, reference: Run) -> np.ndarray:
    """|loss - reference loss| at every step, over the reference curve's largest |value|."""
    return np.abs(run.losses - reference.losses) / np.max(np.abs(reference.losses))


def tolerance(dtype: str, steps: int, arguments: argparse.Namespace) -> float:
    """The conformance suite's tolerance for a training run of ``steps`` steps in ``dtype``:
    the longest reduction is a matmul over the widest input layer or the mean over a batch."""
    longest_sum = max(max(arguments.sizes[:-1]), arguments.batch_size)
    return value_tolerance(dtype, reduction_size=longest_sum, gradient=True, steps=steps)


def print_table(runs: list[Run], reference: Run, arguments: argparse.Namespace) -> None:
    headers = [
        "backend",
        "device",
        "dtype",
        "compiled",
        "test accuracy",
        "last loss",
        "ms / step",
        "steps / s",
        "max divergence",
        "tolerance",
        "within",
    ]
    rows = []
    for run in [reference] + [run for run in runs if run is not reference]:
        largest = float(np.max(divergence(run, reference)))
        allowed = tolerance(run.dtype, len(run.losses), arguments)
        name = f"{run.backend.name} (reference)" if run is reference else run.backend.name
        rows.append(
            [
                name,
                run.backend.device,
                run.dtype,
                run.compiled,
                f"{run.accuracy:.4f}",
                f"{run.losses[-1]:.6f}",
                f"{1e3 * run.seconds_per_step:.4g}",
                f"{1 / run.seconds_per_step:.4g}",
                f"{largest:.2e}",
                f"{allowed:.1e}",
                "yes" if largest <= allowed else "NO",
            ]
        )
    print(_shared.format_table(headers, rows, left_columns=4))


def plot(runs: list[Run], reference: Run, arguments: argparse.Namespace) -> None:
    pyplot = _shared.load_pyplot()
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(13, 4.8))
    steps = np.arange(1, len(reference.losses) + 1)
    for run in runs:
        if run is reference:
            continue
        left.plot(steps, run.losses, label=run.label, alpha=0.7, linewidth=1)
        # An exact match (0) has no place on a log axis: draw it at 1e-12, far below float32 rounding.
        right.plot(steps, np.maximum(divergence(run, reference), 1e-12), label=run.label, alpha=0.8, linewidth=1)
    left.plot(steps, reference.losses, "k--", linewidth=1, label=f"reference: {reference.label}")
    right.plot(
        steps,
        [tolerance(arguments.dtype, int(step), arguments) for step in steps],
        "k--",
        linewidth=1,
        label=f"tolerance after that many steps ({arguments.dtype})",
    )
    left.set(
        xlabel="training step",
        ylabel="cross-entropy loss of the step's batch (nats)",
        title="Loss curves, same weights and batches",
    )
    right.set(
        xlabel="training step",
        ylabel="|loss - reference| / max |reference loss| (relative)",
        yscale="log",
        title="Divergence from the NumPy float64 reference",
    )
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    figure.tight_layout()
    _shared.save_figure(figure, arguments.output)


def main(argv: list[str] | None = None) -> int:
    arguments, names = parse_arguments(argv)
    if not arguments.no_plot:
        _shared.load_pyplot()  # fail now, not after the training, when matplotlib is missing
    x_train, y_train, x_test, y_test = _shared.load_mnist_or_exit(arguments.data_dir, arguments.download)
    data = (
        flatten_and_scale(x_train[: arguments.train_size]),
        y_train[: arguments.train_size].astype(np.int64),
        flatten_and_scale(x_test),
        y_test.astype(np.int64),
    )
    runnable = _shared.computing_in(_shared.create_backends(names, arguments.device), arguments.dtype)
    steps = arguments.epochs * (arguments.train_size // arguments.batch_size)
    print(
        f"MLP {'-'.join(map(str, arguments.sizes))} (relu), softmax cross-entropy, {arguments.optimizer} "
        f"lr {arguments.lr:g}, batch {arguments.batch_size}, {arguments.epochs} epoch(s) of the first "
        f"{arguments.train_size} images: {steps} steps, seed {arguments.seed}",
        flush=True,
    )
    # Drawn once, in the compared dtype: the float64 reference starts from exactly these values.
    initial_params = MLP(arguments.sizes).init(arguments.seed, portable_dl.backend("numpy"), arguments.dtype)

    def train_and_say(backend: portable_dl.Backend, dtype: str) -> Run:
        print(f"  training on {_shared.describe(backend)} in {dtype}...", flush=True)
        return train(backend, dtype, initial_params, data, arguments)

    reference = train_and_say(portable_dl.backend(REFERENCE[0]), REFERENCE[1])
    runs = []
    for backend in runnable:
        is_reference = (backend.name, backend.device, arguments.dtype) == (REFERENCE[0], "cpu", REFERENCE[1])
        runs.append(reference if is_reference else train_and_say(backend, arguments.dtype))
    print()
    print_table(runs, reference, arguments)
    print(
        "divergence: max over steps of |loss - reference| / max |reference loss|; tolerance: the conformance "
        "suite's for a training run of this many steps"
    )
    if not arguments.no_plot:
        plot(runs, reference, arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
