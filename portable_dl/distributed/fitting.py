"""What :func:`portable_dl.fit` does differently with a world of several processes.

- :func:`start`: the ranks' parameters are checked to have one structure, shape and dtype
  (else DistributedError naming both shapes, on every rank) and rank 0's are broadcast, so
  every rank starts from the same values.
- :func:`rank_batches`: every rank draws the same permutation from the same seeded
  generator as one process would, cuts it into global batches of ``size x batch_size``
  examples, and takes its contiguous slice of each; each step is weighted by the slice's
  share of its global batch, so N ranks follow the one-process trajectory with the N-times
  batch. When the last global batch has fewer examples than ranks, a rank left without one
  steps on one example with share 0 (it adds nothing, but takes part in the collective).
- :func:`evaluate_sharded`: each rank predicts its slice of the validation set; one
  collective sum assembles all predictions on every rank, which then compute the loss and
  metrics of the whole set exactly as :func:`portable_dl.evaluate` does.
- :class:`RankZeroFolder`: only rank 0 writes checkpoints (atomically); the others wait at a
  barrier. What is written holds the global batch size and nothing of the world size, so a
  run resumes on any number of ranks with the same global batch.

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data import shuffled_order
from ..fit_checkpoints import CheckpointFolder
from ..fit_config import metric_name
from ..fit_data import targets_as_moved
from ..metrics import get_metric
from ..tree import tree_leaves

__all__ = ["start", "rank_batches", "evaluate_sharded", "RankZeroFolder"]


def start(world: Any, params: Any, opt_state: Any) -> tuple[Any, Any]:
    """``(params, opt_state)`` of rank 0 on every rank, after checking that the ranks' trees agree."""
    world.check_same_shapes(params, "parameters")
    params = world.broadcast(params, root=0)
    if opt_state is not None and tree_leaves(opt_state):
        world.check_same_shapes(opt_state, "optimizer states")
        opt_state = world.broadcast(opt_state, root=0)
    return params, opt_state


def rank_slice(count: int, rank: int, size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s part of ``count`` examples cut into ``size``
    contiguous parts as equal as can be (``batch_size`` each for a full global batch)."""
    return rank * count // size, (rank + 1) * count // size


def rank_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    world: Any,
    backend: Any,
    *,
    shuffle: bool,
    generator: np.random.Generator,
    dtype: Any,
    skip: int = 0,
) -> Iterator[tuple[tuple[Any, Any], int, float]]:
    """``((x_part, y_part), examples in the global batch, share)`` for this rank, one per
    global batch of ``batch_size * world.size`` examples, from the ``skip``-th on. The
    permutation is drawn as :func:`portable_dl.data.batches` draws it, from ``generator``."""
    count = x.shape[0]
    global_batch = batch_size * world.size
    order = shuffled_order(count, shuffle, generator)
    dtype_name = None if dtype is None else backend.dtype_name(dtype)
    for begin in range(skip * global_batch, count, global_batch):
        end = min(begin + global_batch, count)
        index = order[begin:end] if order is not None else np.arange(begin, end)
        low, high = rank_slice(end - begin, world.rank, world.size)
        rows, share = index[low:high], (high - low) / (end - begin)
        if high == low:
            rows, share = index[:1], 0.0
        x_part, y_part = x[rows], y[rows]
        if dtype_name is not None:
            x_part = x_part.astype(dtype_name, copy=False)
        yield (backend.asarray(x_part), backend.asarray(y_part)), end - begin, share


def evaluate_sharded(
    world: Any,
    apply: Callable[[Any, Any], Any],
    params: Any,
    loss_fn: Callable[[Any, Any], Any],
    backend: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    metrics: Sequence[Any],
    dtype: str,
) -> dict[str, float]:
    """:func:`portable_dl.evaluate` over all ranks: ``{"loss": ..., "<metric>": ...}`` of the whole set."""
    from ..training import predict

    count = x.shape[0]
    low, high = rank_slice(count, world.rank, world.size)
    # A rank without examples (fewer than ranks) still predicts one, to learn the output's shape.
    mine = x[low:high] if high > low else x[:1]
    part = predict(apply, params, backend, mine, batch_size=batch_size, dtype=dtype)
    full = np.zeros((count, *part.shape[1:]), dtype=part.dtype)
    if high > low:
        full[low:high] = part
    predictions = backend.to_numpy(world.all_reduce(backend.asarray(full), "sum"))
    y = targets_as_moved(np.asarray(y), dtype)
    loss = loss_fn(backend.asarray(predictions), backend.asarray(y))
    scores = {"loss": float(backend.to_numpy(loss))}
    for metric in metrics:
        name, function = metric if isinstance(metric, tuple) else (metric_name(metric), get_metric(metric))
        scores[name] = float(function(predictions, y))
    return scores


class RankZeroFolder(CheckpointFolder):
    """A :class:`~portable_dl.fit_checkpoints.CheckpointFolder` written by rank 0 alone; the
    other ranks wait at a barrier until the file is in place, and get its path."""

    def __init__(self, world: Any, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.world = world

    def save(self, progress: Any, device_sum: Any) -> Path:
        path = super().save(progress, device_sum) if self.world.rank == 0 else None
        self.world.barrier()
        return path if path is not None else self.path / f"step-{progress.step:09d}.safetensors"

    def save_best(self, params: Any, opt_state: Any, epoch: int, step: int) -> str:
        name = super().save_best(params, opt_state, epoch, step) if self.world.rank == 0 else None
        self.world.barrier()
        return name if name is not None else f"best-{step:09d}.safetensors"
