"""The textbook MNIST experiment, written once and run on every installed backend.

A multilayer perceptron 784 -> 16 -> 16 -> 10 with ReLU, softmax cross-entropy, plain SGD
with learning rate 0.01, mini-batches of 10, five epochs over the 60,000 training images
(pixels scaled to [0, 1]); then the accuracy on the 10,000 test images. The same seed gives
the same initial weights and the same batches on every backend, so the backends differ only
in how their frameworks compute.

At batch size 10 an epoch is 6,000 steps, so the fixed cost of a step is the run time: the
step is compiled by the backend's own compiler, the losses are summed on the device and
read back once per epoch, and arrays are only synchronized every few steps (MLX, which is
lazy, would otherwise build one graph for the whole epoch).

    python examples/mnist_textbook.py                      # every installed backend
    python examples/mnist_textbook.py --backends numpy,torch --epochs 1
    python examples/mnist_textbook.py --precision mixed_bfloat16   # bfloat16 compute, float32 weights

``--precision`` picks a policy of :mod:`portable_dl.precision`: ``float32`` (the default,
the parameters' own dtype), ``mixed_bfloat16`` or ``mixed_float16`` (float32 master weights,
the forward and backward passes in the half-precision dtype, the loss in float32; float16
with dynamic loss scaling). A backend without the dtype is left out with the reason. The test
accuracy is measured with the float32 weights.

MNIST comes from ``--data-dir``, ``$PORTABLE_DL_DATA`` or the cache folder
(``portable-dl data mnist`` fills it; ``--download`` fetches it here when absent).
"""

from __future__ import annotations

import argparse
import sys
import time

import _shared
import numpy as np

import portable_dl
from portable_dl.data import batches
from portable_dl.losses import cross_entropy
from portable_dl.nn import MLP
from portable_dl.optimizers import SGD
from portable_dl.precision import POLICIES
from portable_dl.training import make_train_step, predict

SYNC_EVERY = 10  # steps between synchronizations: bounds MLX's lazy graph, keeps others asynchronous


def parse_arguments(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_shared.HelpFormatter)
    _shared.add_backend_arguments(parser)
    _shared.add_dtype_argument(parser)
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=10, help="examples per SGD step")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    parser.add_argument("--train-size", type=int, default=60000, help="training images used (the first N)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling")
    _shared.add_data_arguments(parser)
    parser.add_argument("--no-compile", action="store_true", help="run the step eagerly")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=sorted(POLICIES),
        help="precision policy of the training step (see portable_dl.precision)",
    )
    arguments = parser.parse_args(argv)
    return arguments, _shared.requested_backend_names(parser, arguments.backends)


def flatten_and_scale(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 rows (N, 784) in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def train_on(backend: portable_dl.Backend, data: tuple, arguments: argparse.Namespace) -> dict:
    """Train the textbook MLP on one backend in ``--dtype``; return its test accuracy, last loss and timings."""
    x_train, y_train, x_test, y_test = data
    xp, dtype = backend.xp, arguments.dtype
    model = MLP([784, 16, 16, 10], activation="relu")
    params = model.init(seed=arguments.seed, backend=backend, dtype=dtype)

    def loss_fn(params, batch):
        images, labels = batch
        return cross_entropy(model.apply(params, images), labels)

    step = make_train_step(
        loss_fn, SGD(arguments.lr), backend, compile=not arguments.no_compile, precision=arguments.precision
    )
    opt_state = step.init(params)
    shuffling = np.random.default_rng(arguments.seed)
    epoch_seconds, epoch_losses = [], []
    for epoch in range(arguments.epochs):
        started = time.perf_counter()
        loss_sum, steps = None, 0
        for batch in batches(x_train, y_train, arguments.batch_size, backend, seed=shuffling, dtype=dtype):
            params, opt_state, loss = step(params, opt_state, batch)
            loss_sum = loss if loss_sum is None else xp.add(loss_sum, loss)  # stays on the device
            steps += 1
            if steps % SYNC_EVERY == 0:
                backend.synchronize((params, opt_state, loss_sum))
        mean_loss = float(backend.to_numpy(loss_sum)) / steps  # the one read of the epoch
        epoch_seconds.append(time.perf_counter() - started)
        epoch_losses.append(mean_loss)
        print(
            f"  {backend.name:<10} epoch {epoch + 1}/{arguments.epochs}: mean loss {mean_loss:.4f}, "
            f"{epoch_seconds[-1]:.1f} s",
            flush=True,
        )
    logits = predict(model, params, backend, x_test, batch_size=1000, dtype=dtype)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    trained_dtype = backend.to_numpy(portable_dl.tree_leaves(params)[0]).dtype  # what was computed in, as stored
    return {
        "accuracy": accuracy,
        "loss": epoch_losses[-1],
        "seconds_per_epoch": float(np.mean(epoch_seconds)),
        "version": backend.version,
        "dtype": str(trained_dtype),
    }


def main(argv: list[str] | None = None) -> int:
    arguments, names = parse_arguments(argv)
    x_train, y_train, x_test, y_test = _shared.load_mnist_or_exit(arguments.data_dir, arguments.download)
    backends = _shared.computing_in(_shared.create_backends(names, arguments.device), arguments.dtype)
    compute = POLICIES[arguments.precision].compute_dtype
    if compute is not None:
        backends = _shared.computing_in(backends, compute)
    if not backends:
        print("no backend to run", file=sys.stderr)
        return 1
    data = (
        flatten_and_scale(x_train[: arguments.train_size]),
        y_train[: arguments.train_size].astype(np.int64),
        flatten_and_scale(x_test),
        y_test.astype(np.int64),
    )
    print(
        f"MLP 784-16-16-10, relu, softmax cross-entropy, SGD lr {arguments.lr}, batch {arguments.batch_size}, "
        f"{arguments.epochs} epochs on {len(data[0])} images, {arguments.dtype}, precision {arguments.precision}",
        flush=True,
    )
    results = {f"{backend.name} ({backend.device})": train_on(backend, data, arguments) for backend in backends}
    print(f"\n{'backend':<18}{'version':<18}{'dtype':<9}{'test accuracy':>14}{'final loss':>12}{'s / epoch':>11}")
    for label, result in results.items():
        print(
            f"{label:<18}{result['version']:<18}{result['dtype']:<9}{result['accuracy']:>14.4f}"
            f"{result['loss']:>12.4f}{result['seconds_per_epoch']:>11.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
