"""Data-parallel training: one program, N processes, each framework's own engine.

    python examples/data_parallel.py --backend torch --batch-size 64          # one process
    portable-dl launch -n 2 --backend torch examples/data_parallel.py --batch-size 32

Both runs train the same MLP on the same seeded synthetic classification problem with the
same global batch of 64 examples: the second splits every batch between two processes
(``torch.distributed`` with gloo here; ``mlx.distributed`` ring, ``jax.distributed`` with
gloo, TensorFlow's collective all-reduce with the other backends), which average their
gradients in one collective per step. So both print the same losses and the same final
parameters, to float32 rounding. Only rank 0 prints.

``--backend`` defaults to ``$PORTABLE_DL_BACKEND`` (which ``portable-dl launch --backend``
sets), else numpy, which runs a world of one process only.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import portable_dl as pdl  # noqa: E402
from portable_dl import distributed, losses, nn, optimizers  # noqa: E402

#: the synthetic problem: inputs, hidden units, classes
FEATURES, HIDDEN, CLASSES = 20, 32, 4


def problem(examples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: Gaussian inputs (float32) and labels by a fixed random linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, FEATURES)).astype(np.float32)
    teacher = rng.normal(size=(FEATURES, CLASSES))
    return x, np.argmax(x @ teacher, axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("PORTABLE_DL_BACKEND", "numpy"))
    parser.add_argument("--batch-size", type=int, default=32, help="examples per process and step (default: 32)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--no-compile", action="store_true", help="run the step eagerly")
    arguments = parser.parse_args(argv)
    if arguments.backend not in pdl.known_backends():
        parser.error(f"unknown backend {arguments.backend}; known backends: {', '.join(pdl.known_backends())}")

    # First: JAX and TensorFlow start their engines before anything else uses them.
    world = distributed.init(arguments.backend)
    backend = world.backend
    x, y = problem(arguments.examples + 256)
    x_train, y_train, x_val, y_val = x[:-256], y[:-256], x[-256:], y[-256:]
    model = nn.MLP((FEATURES, HIDDEN, CLASSES))
    if world.rank == 0:
        engine = world.engine.description if world.engine is not None else "no engine"
        print(
            f"{world.size} process(es) on {backend.name} ({engine}), "
            f"{arguments.batch_size} examples each: global batch {arguments.batch_size * world.size}"
        )
    result = pdl.fit(
        model,
        model.init(0, backend),
        losses.cross_entropy,
        optimizers.Adam(0.01),
        backend,
        x_train,
        y_train,
        epochs=arguments.epochs,
        batch_size=arguments.batch_size,
        validation_data=(x_val, y_val),
        metrics=["accuracy"],
        compile=not arguments.no_compile,
        verbose=1,
        world=world,
    )
    if world.rank == 0:
        leaves = pdl.tree_leaves(result.params)
        weights = np.concatenate([backend.to_numpy(leaf).ravel() for leaf in leaves]).astype(np.float64)
        print(f"final: loss {result.history['loss'][-1]:.6f}, val_accuracy {result.history['val_accuracy'][-1]:.4f}")
        print(f"parameters: sum {weights.sum():.6f}, sum of squares {np.square(weights).sum():.6f}")
    world.close()


if __name__ == "__main__":
    main()
