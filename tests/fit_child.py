"""The training problem of tests/test_fault_tolerance.py, and a child process to kill.

Run as a script::

    python fit_child.py FOLDER SECONDS_PER_STEP

it trains the problem with :func:`portable_dl.training.fit` on the NumPy backend,
checkpointing every 3 steps into FOLDER, and sleeps SECONDS_PER_STEP in every step, so that
the test can kill it with SIGKILL between two checkpoints. The test imports the problem
from here, so that the child and the test train the same model on the same data.
"""

from __future__ import annotations

import sys
import time

import numpy as np

EXAMPLES, FEATURES, CLASSES = 96, 8, 3
BATCH_SIZE, EPOCHS, SEED = 10, 3, 5  # 10 steps per epoch, the last one of 6 examples
STEPS_PER_EPOCH = -(-EXAMPLES // BATCH_SIZE)
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH
LEARNING_RATE = 1e-2
CHILD_CHECKPOINT_EVERY = 3


def data(examples: int = EXAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``x`` float32 (examples, FEATURES) and labels ``y`` int64 (examples,) that depend on x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, FEATURES)).astype(np.float32)
    y = np.argmax(x[:, :CLASSES] + 0.5 * rng.normal(size=(examples, CLASSES)), axis=1).astype(np.int64)
    return x, y


def model(hidden: int = 16):
    from portable_dl.nn import MLP

    return MLP([FEATURES, hidden, CLASSES])


def optimizer():
    from portable_dl.optimizers import Adam

    return Adam(LEARNING_RATE)


def fit_problem(backend, *, apply=None, hidden: int = 16, **options):
    """``fit`` of the problem on ``backend`` from the model's seed-0 parameters; ``apply``
    replaces the model's apply; ``options`` go to fit (defaults: 3 epochs of batches of 10,
    seed SEED, no compilation, silent)."""
    from portable_dl.losses import cross_entropy
    from portable_dl.training import fit

    net = model(hidden)
    x, y = data()
    options = {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "seed": SEED, "compile": False, "verbose": 0, **options}
    return fit(apply or net.apply, net.init(0, backend), cross_entropy, optimizer(), backend, x, y, **options)


def main(folder: str, seconds_per_step: float) -> None:
    import portable_dl

    net = model()

    def slow_apply(params, x):
        time.sleep(seconds_per_step)
        return net.apply(params, x)

    fit_problem(
        portable_dl.backend("numpy"), apply=slow_apply, checkpoint_dir=folder, checkpoint_every=CHILD_CHECKPOINT_EVERY
    )
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
