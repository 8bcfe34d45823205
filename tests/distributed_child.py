"""One rank of the two-process tests (tests/test_distributed_ranks.py), run by
``portable-dl launch -n 2 --backend NAME tests/distributed_child.py MODE OUT``.

Every rank writes what it computed to ``OUT/rank-<rank>.npz`` (arrays) and
``OUT/rank-<rank>.json`` (numbers and messages); the test compares them with NumPy float64
references computed in the test process. The problem (model, data, optimizer) is
:func:`problem`, which the test imports too.

Modes:
- ``all``: collectives, the shape check, two data-parallel training steps, and a fit with
  validation and checkpoints in ``OUT/checkpoints``;
- ``fault``: a fit with a checkpoint after every step, in which rank 1 kills itself with
  SIGKILL in step ``KILL_AT_STEP`` (rank 0 must stop with an error naming rank 1);
- ``resume``: the same fit, resumed from ``OUT/checkpoints``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import portable_dl as pdl
from portable_dl import distributed, losses, nn, optimizers

#: per-rank batch, epochs and learning rate of the fits
PER_RANK_BATCH, EPOCHS, LEARNING_RATE = 3, 2, 0.01
#: the step (counted from 1, on rank 1) in which the fault mode kills rank 1
KILL_AT_STEP = 6


def problem():
    """``(model, x, y, x_val, y_val, step_x, step_y)``: 21 training examples, so that the last
    global batch of 6 holds 3 (rank 0 takes 1, rank 1 takes 2); 7 validation examples."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(21, 5)).astype(np.float32)
    y = rng.integers(0, 3, 21)
    x_val = rng.normal(size=(7, 5)).astype(np.float32)
    y_val = rng.integers(0, 3, 7)
    step_x = rng.normal(size=(12, 5)).astype(np.float32)
    step_y = rng.integers(0, 3, 12)
    return nn.MLP((5, 7, 3)), x, y, x_val, y_val, step_x, step_y


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    name = os.environ["PORTABLE_DL_BACKEND"]
    # PORTABLE_DL_TEST_DEVICE: "cuda:{local_rank}" for the NCCL test (one GPU per process)
    world = distributed.init(name, device=os.environ.get("PORTABLE_DL_TEST_DEVICE"), timeout=30)
    backend = world.backend
    arrays = {}
    facts = {"rank": world.rank, "size": world.size, "local_rank": world.local_rank, "engine": world.engine.description}
    if mode == "all":
        collectives(world, arrays, facts)
        steps(world, arrays, facts)
        result = train(world, out, compile=name != "torch")  # torch's compiled path: steps() above
    elif mode == "fault":
        result = train(world, out, compile=False, checkpoint_every=1, kill_rank_1=True)
    else:
        result = train(world, out, compile=False, checkpoint_every=1, resume=True)
    for index, leaf in enumerate(pdl.tree_leaves(result.params)):
        arrays[f"fit_param_{index}"] = backend.to_numpy(leaf)
    facts["history"] = result.history
    facts["checkpoint"] = None if result.checkpoint is None else result.checkpoint.name
    np.savez(out / f"rank-{world.rank}.npz", **arrays)
    (out / f"rank-{world.rank}.json").write_text(json.dumps(facts))
    world.close()


def collectives(world, arrays: dict, facts: dict) -> None:
    backend, rank = world.backend, world.rank
    ints = backend.asarray((np.arange(6, dtype=np.int32) - 3) * (rank + 1) + 1_000_000 * rank)
    floats = backend.asarray(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3) * (rank + 1) ** 2)
    summed = world.all_reduce({"ints": ints, "floats": floats}, op="sum")
    mean = world.all_reduce([floats], op="mean")[0]
    sent = world.broadcast((floats, ints), root=1)
    world.barrier()
    arrays.update(
        sum_ints=backend.to_numpy(summed["ints"]),
        sum_floats=backend.to_numpy(summed["floats"]),
        mean_floats=backend.to_numpy(mean),
        broadcast_floats=backend.to_numpy(sent[0]),
        broadcast_ints=backend.to_numpy(sent[1]),
    )
    try:
        world.all_reduce([ints], op="mean")
    except pdl.DTypeError as error:
        facts["mean_of_ints"] = str(error)
    try:
        world.check_same_shapes({"W": backend.asarray(np.zeros((3, 4 + rank), np.float32))})
    except pdl.errors.DistributedError as error:
        facts["shape_error"] = str(error)


def steps(world, arrays: dict, facts: dict) -> None:
    """Two compiled data-parallel steps, each rank on its half of a batch of 12."""
    backend = world.backend
    model, *_, step_x, step_y = problem()
    params = model.init(0, backend)
    step = pdl.make_train_step(
        lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
        optimizers.Adam(LEARNING_RATE),
        backend,
        world=world,
    )
    state = step.init(params)
    low, high = 6 * world.rank, 6 * world.rank + 6
    batch = (backend.asarray(step_x[low:high]), backend.asarray(step_y[low:high]))
    step_losses = []
    for _ in range(2):
        params, state, loss = step(params, state, batch)
        step_losses.append(float(backend.to_numpy(loss)))
    facts["step_losses"] = step_losses
    facts["bytes_per_step"] = step.bytes_per_step
    for index, leaf in enumerate(pdl.tree_leaves(params)):
        arrays[f"step_param_{index}"] = backend.to_numpy(leaf)


def train(world, out: Path, compile: bool, checkpoint_every=None, resume=False, kill_rank_1=False):
    backend = world.backend
    model, x, y, x_val, y_val, *_ = problem()
    calls = [0]

    def loss_fn(predictions, targets):
        calls[0] += 1
        if kill_rank_1 and world.rank == 1 and calls[0] == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        return losses.cross_entropy(predictions, targets)

    # Each rank starts from other values: fit must broadcast rank 0's.
    params = model.init(world.rank, backend)
    return pdl.fit(
        model,
        params,
        loss_fn,
        optimizers.Adam(LEARNING_RATE),
        backend,
        x,
        y,
        epochs=EPOCHS,
        batch_size=PER_RANK_BATCH,
        world=world,
        validation_data=(x_val, y_val),
        metrics=["accuracy"],
        compile=compile,
        verbose=1,
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=checkpoint_every,
        resume=resume,
    )


if __name__ == "__main__":
    main()
