"""The training family: a short MLP training run on MNIST, from the same seed, on every
backend, through the compiled training step.

The reference is the same run on the NumPy backend in float64. In float32 the loss curves
drift apart as steps accumulate rounding differences (and ReLUs near zero flip), so the
tolerance grows with the number of steps; the largest divergence of the loss curve and of
the final weights is what each row reports.

MNIST is read with :func:`portable_dl.data.load_mnist` without downloading: from
``--data-dir``, ``$PORTABLE_DL_DATA`` or the cache folder. Where it is absent the same runs
train on a small seeded synthetic data set of MNIST's shapes (their names say so), so that
the compiled training step is checked on every machine; a broken MNIST file is an error
(:class:`portable_dl.data.DataError`), which the command line reports before any case runs.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from portable_dl.backend import Backend

from .cases import Case, Outputs

FAMILY = "training"
SIZES = (784, 32, 10)
BATCH_SIZE = 32
STEPS = 40
QUICK_STEPS = 5
LEARNING_RATE = 0.1

#: Where ``portable-dl conformance --data-dir`` points; None: the library's own search.
data_dir: str | None = None


#: Where MNIST is absent: this many examples of MNIST's shapes, drawn from this seed.
SYNTHETIC_COUNT = BATCH_SIZE * STEPS
SYNTHETIC_SEED = 1234


def data_root() -> str | None:
    return data_dir or os.environ.get("PORTABLE_DL_DATA")


@lru_cache(maxsize=4)
def training_data(root: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """``(source, x, y)``: MNIST's first training images scaled to [0, 1] (float64, rows of
    784) and their labels, or, where MNIST is absent, a synthetic set of the same shapes.

    The synthetic set: pixels uniform in [0, 1] with 80% of them zero (MNIST's images are
    mostly background), labels by a fixed random linear teacher, so that there is something
    to learn and the loss falls. Raises :class:`portable_dl.data.DataError` for a broken file.
    """
    from portable_dl.data import DatasetNotFound, load_mnist

    try:
        images, labels = load_mnist(root, download=False)[:2]
    except DatasetNotFound:
        rng = np.random.default_rng(SYNTHETIC_SEED)
        x = rng.uniform(0.0, 1.0, (SYNTHETIC_COUNT, SIZES[0])) * (rng.uniform(size=(SYNTHETIC_COUNT, SIZES[0])) < 0.2)
        teacher = rng.normal(size=(SIZES[0], SIZES[-1]))
        return "synthetic data (MNIST absent)", x, np.argmax(x @ teacher, axis=1).astype(np.int64)
    count = min(SYNTHETIC_COUNT, len(images))
    x = np.asarray(images[:count]).reshape(count, -1).astype(np.float64) / 255.0
    return "MNIST", x, np.asarray(labels[:count]).astype(np.int64)


def training_case(optimizer_name: str, steps: int, seed: int, compile: bool = True) -> Case:
    source = training_data(data_root())[0]

    def compute(backend: Backend, dtype: str) -> Outputs:
        from portable_dl import losses, nn, optimizers
        from portable_dl.training import make_train_step

        _, x, y = training_data(data_root())
        model = nn.MLP(list(SIZES))
        params = model.init(seed, backend, dtype)
        optimizer = (
            optimizers.SGD(lr=LEARNING_RATE, momentum=0.9)
            if optimizer_name == "SGD momentum"
            else optimizers.Adam(lr=0.003)
        )
        step = make_train_step(
            lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
            optimizer,
            backend,
            compile=compile,
        )
        state = step.init(params)
        losses_seen = []
        for index in range(steps):
            rows = slice(index * BATCH_SIZE, (index + 1) * BATCH_SIZE)
            batch = (backend.asarray(x[rows], dtype), backend.asarray(y[rows]))
            params, state, loss = step(params, state, batch)
            losses_seen.append(loss)
        backend.synchronize(params)
        return {
            "loss curve": np.array([float(backend.to_numpy(loss)) for loss in losses_seen]),
            "final W of layer 0": np.asarray(backend.to_numpy(params["layers"][0]["W"]), np.float64),
            "final W of layer 1": np.asarray(backend.to_numpy(params["layers"][1]["W"]), np.float64),
        }

    kind = "compiled" if compile else "eager"
    return Case(
        FAMILY,
        f"MLP{list(SIZES)} on {source}, {optimizer_name}, {steps} {kind} steps",
        compute,
        reduction_size=SIZES[0],
        gradient=True,
        steps=steps,
    )


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Two runs of 40 compiled steps; ``quick``: one run of 5 eager steps (compiling, with
    torch.compile above all, would take most of a quick run's time)."""
    if quick:
        return [training_case("SGD momentum", QUICK_STEPS, seed, compile=False)]
    return [training_case("SGD momentum", STEPS, seed), training_case("Adam", STEPS, seed)]
