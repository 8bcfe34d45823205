"""Data-parallel training through each framework's own multi-process engine.

:func:`init` gives this process's :class:`World` (``rank``, ``size``, ``local_rank``) as its
launcher set it up (``portable-dl launch -n N script.py``, ``torchrun``, ``mlx.launch``,
``TF_CONFIG``), with ``all_reduce(tree, op)``, ``broadcast(tree, root)`` and ``barrier()``.
``make_train_step(..., world=world)`` averages gradients over the ranks in one collective
per step and ``fit(..., world=world)`` cuts every global batch by rank.

The engines (``backends/<name>/distributed.py``):

==========  ==================================================================
torch       ``torch.distributed``: gloo on the CPU, NCCL on CUDA
mlx         ``mlx.distributed``: ring (also MPI, NCCL where MLX has them)
jax         ``jax.distributed`` with gloo CPU collectives (NCCL on GPUs)
tensorflow  ``MultiWorkerMirroredStrategy``'s collective all-reduce, from ``TF_CONFIG``
numpy       none: a world of one process only
==========  ==================================================================

This package imports no framework.
"""

from .buckets import Buckets
from .engine import Engine
from .placement import Placement, placement_from_environment
from .world import REDUCE_OPS, World, init

__all__ = ["init", "World", "Engine", "Placement", "placement_from_environment", "Buckets", "REDUCE_OPS"]
