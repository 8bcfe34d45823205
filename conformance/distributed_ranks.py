"""One rank of the ``distributed`` conformance family, run as
``portable-dl launch -n 2 --backend NAME <this file> OUT``.

Each rank computes, through :mod:`portable_dl.distributed` on its backend's own engine: an
exact integer sum, a float mean, a broadcast from rank 1, and two data-parallel training
steps on its half of a batch; it writes them to ``OUT/rank-<rank>.npz``. The inputs are
:func:`inputs`, which the family imports to compute what the ranks must find.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

#: per rank: the integer and float contributions (rank r gives (r + 1) times the base, plus
#: 2**24 * r in the integers, which float32 could not hold exactly)
BASE_INTS = np.array([-3, -2, -1, 0, 1, 2147], dtype=np.int32)
BASE_FLOATS = np.array([[-1.0, -0.4, 0.2], [0.8, 1.4, 1e-3]], dtype=np.float32)
SIZES, STEPS, LEARNING_RATE = (6, 5, 3), 2, 0.05


def inputs():
    """``(x, y)`` of the whole batch of 8 that the two ranks split in halves."""
    rng = np.random.default_rng(2026)
    return rng.normal(size=(8, SIZES[0])), rng.integers(0, SIZES[-1], 8)


def rank_ints(rank: int) -> np.ndarray:
    return BASE_INTS * (rank + 1) + np.int32(2**24) * rank


def rank_floats(rank: int) -> np.ndarray:
    return BASE_FLOATS * np.float32(rank + 1)


def main() -> None:
    import os

    import portable_dl as pdl
    from portable_dl import distributed, losses, nn, optimizers

    out = Path(sys.argv[1])
    world = distributed.init(os.environ["PORTABLE_DL_BACKEND"], timeout=60)
    backend, rank = world.backend, world.rank
    ints, floats = backend.asarray(rank_ints(rank)), backend.asarray(rank_floats(rank))
    summed = world.all_reduce([ints], op="sum")[0]
    mean = world.all_reduce([floats], op="mean")[0]
    sent_floats, sent_ints = world.broadcast((floats, ints), root=1)
    model = nn.MLP(SIZES)
    x, y = inputs()
    half = slice(4 * rank, 4 * rank + 4)
    step = pdl.make_train_step(
        lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
        optimizers.SGD(LEARNING_RATE, momentum=0.9),
        backend,
        world=world,
    )
    params = model.init(0, backend, "float32")
    state, step_losses = step.init(params), []
    batch = (backend.asarray(x[half].astype(np.float32)), backend.asarray(y[half]))
    for _ in range(STEPS):
        params, state, loss = step(params, state, batch)
        step_losses.append(float(backend.to_numpy(loss)))
    flat = np.concatenate([backend.to_numpy(leaf).ravel() for leaf in pdl.tree_leaves(params)])
    world.barrier()
    np.savez(
        out / f"rank-{rank}.npz",
        sum=backend.to_numpy(summed),
        mean=backend.to_numpy(mean),
        broadcast_floats=backend.to_numpy(sent_floats),
        broadcast_ints=backend.to_numpy(sent_ints),
        step_params=flat,
        step_losses=np.asarray(step_losses),
    )
    world.close()


if __name__ == "__main__":
    main()
