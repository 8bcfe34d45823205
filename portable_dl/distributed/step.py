"""The training step of one rank in a data-parallel run.

``step(params, opt_state, (x, y), share) -> (params, opt_state, loss)``: this rank's loss and
gradient on its slice of the global batch, each multiplied by ``share`` (the slice's fraction
of the global batch: ``1/size`` when the slices are equal), summed over the ranks in ONE
collective (the gradient and the loss laid end to end in one buffer per dtype, see
:mod:`.buckets`), then the optimizer's update, the same on every rank. The sum of the
weighted per-rank means is the mean over the global batch, so N ranks follow the trajectory
of one process given the whole batch, to rounding.

Where the collective runs, per engine (:attr:`World.traceable`):

- inside the compiled step, when the engine's collective can be traced by the backend's
  compiler: torch (``torch.compile`` holds the functional all-reduce) and MLX
  (``mx.compile`` holds ``mx.distributed.all_sum``): one compiled function per step;
- between two compiled functions otherwise: JAX (``jax.jit`` computes the gradient and packs
  the buffer; the cross-process sum is its own jitted computation over the global device
  mesh; a second ``jax.jit`` unpacks and updates) and TensorFlow (XLA-compiled gradient and
  update around the strategy's collective all-reduce, which XLA cannot hold).

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import PortableDLError
from ..nn import merge, partition
from ..tree import tree_flatten, tree_unflatten
from .buckets import Buckets

__all__ = ["DataParallelStep"]


class DataParallelStep:
    """The step described in the module docstring; made by ``make_train_step(..., world=world)``.

    ``init(params)`` gives the optimizer state; ``step(params, opt_state, batch, share=None)``
    (``share`` defaults to ``1 / world.size``). ``bytes_per_step`` is the size of the buffers
    all-reduced in one step (known after the first step).
    """

    def __init__(
        self,
        loss_fn: Callable[[Any, Any], Any],
        optimizer: Any,
        backend: Any,
        world: Any,
        *,
        compile: bool = True,
        trainable: Any = None,
    ):
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.backend = backend
        self.world = world
        self.trainable = trainable
        self.compiled = bool(compile)
        self.bytes_per_step: int | None = None
        wrap = backend.compile if compile else (lambda f: f)
        if world.traceable:
            self._whole = wrap(self._whole_step)
        else:
            self._whole = None
            self._local = wrap(self._local_part)
            self._apply = wrap(self._apply_part)

    def init(self, params: Any) -> Any:
        return self.optimizer.init(self._split(params)[0])

    def __call__(self, params: Any, opt_state: Any, batch: Any, share: Any = None) -> tuple[Any, Any, Any]:
        share = self._share_array(params, 1.0 / self.world.size if share is None else share)
        if self.bytes_per_step is None:
            buckets = self._buckets(self._split(params)[0])
            self.bytes_per_step = buckets.nbytes({name: np.dtype(name).itemsize for name in buckets.dtypes})
        try:
            if self._whole is not None:
                return self._whole(params, opt_state, batch, share)
            buffers = self._local(params, batch, share)
            summed = self.world.sum_buffers(buffers)
            return self._apply(params, opt_state, summed)
        except PortableDLError:
            raise
        except Exception as error:
            if self.world.lost_ranks(wait=3.0):
                raise self.world.failure(error) from error
            raise

    # ------------------------------------------------------------------ parts
    def _whole_step(self, params: Any, opt_state: Any, batch: Any, share: Any) -> tuple[Any, Any, Any]:
        return self._apply_part(params, opt_state, self.world.sum_buffers(self._local_part(params, batch, share)))

    def _local_part(self, params: Any, batch: Any, share: Any) -> list:
        """This rank's share-weighted loss and gradient, packed into one buffer per dtype."""
        xp = self.backend.xp
        trainable, frozen = self._split(params)
        if frozen is None:
            loss, grads = self.backend.value_and_grad(self.loss_fn)(trainable, batch)
        else:
            loss, grads = self.backend.value_and_grad(lambda part, b: self.loss_fn(merge(part, frozen), b))(
                trainable, batch
            )
        leaves = tree_flatten(grads)[0]
        # The loss rides in the buffer of the gradient's dtype: no second collective for it.
        loss = xp.astype(loss, leaves[0].dtype) if leaves and loss.dtype != leaves[0].dtype else loss
        weighted = [xp.multiply(leaf, xp.astype(share, leaf.dtype)) for leaf in [loss, *leaves]]
        # A 1 from every rank: the sum must count them all (see _apply_part).
        ranks = xp.ones((), dtype=loss.dtype)
        return self._buckets(trainable).pack([weighted[0], ranks, *weighted[1:]], xp)

    def _apply_part(self, params: Any, opt_state: Any, buffers: list) -> tuple[Any, Any, Any]:
        """Unpack the summed loss and gradient; update the parameters."""
        trainable, frozen = self._split(params)
        leaves, treedef = tree_flatten(trainable)
        xp = self.backend.xp
        loss, ranks, *grads = self._buckets(trainable).unpack(buffers, xp)
        # Some engines (MLX's ring) return a partial sum, not an error, when a peer dies
        # mid-collective: then fewer than `size` ranks were counted, and the loss turns NaN,
        # which fit's finiteness check stops at before any checkpoint is written.
        all_counted = xp.equal(ranks, xp.full_like(ranks, float(self.world.size)))
        loss = xp.add(loss, xp.where(all_counted, xp.zeros_like(loss), xp.full_like(loss, float("nan"))))
        trainable, opt_state = self.optimizer.update(tree_unflatten(treedef, grads), opt_state, trainable)
        return (trainable if frozen is None else merge(trainable, frozen)), opt_state, loss

    def _buckets(self, trainable: Any) -> Buckets:
        """The layout of [loss, ranks counted, *gradient leaves]: loss and count first, in the
        first leaf's dtype."""
        leaves = tree_flatten(trainable)[0]
        names = [self.backend.dtype_name(leaf.dtype) for leaf in leaves]
        first = names[0] if names else "float32"
        return Buckets([(), (), *(tuple(leaf.shape) for leaf in leaves)], [first, first, *names])

    def _split(self, params: Any) -> tuple[Any, Any]:
        if self.trainable is None:
            return params, None
        return partition(params, self.trainable)

    def _share_array(self, params: Any, share: Any) -> Any:
        if not isinstance(share, (int, float, np.floating, np.integer)) or isinstance(share, bool):
            return share  # already an array
        if not 0.0 <= float(share) <= 1.0:
            raise ValueError(f"share must be this rank's fraction of the global batch, in [0, 1]; got {share!r}")
        leaves = tree_flatten(self._split(params)[0])[0]
        dtype = self.backend.dtype_name(leaves[0].dtype) if leaves else "float32"
        return self.backend.asarray(np.asarray(share, dtype=dtype))
