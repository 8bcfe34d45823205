"""MLX's multi-process engine: ``mlx.distributed``, over its ring backend (TCP sockets between
neighbours; also MPI, NCCL or JACCL where MLX has them and the launcher set them up).

The group comes from mlx.launch's variables (``MLX_RANK``, ``MLX_HOSTFILE``), which
``portable-dl launch`` sets too, on 127.0.0.1. The sum is ``mx.distributed.all_sum``, which
``mx.compile`` traces like any other operation: the training step's collective runs inside
the compiled step. A lost peer closes its sockets; the ring then logs "Failing pending tasks" and
returns from the pending sum without an error, with a partial result. The World therefore
counts the ranks in every sum (a 1 rides along in each buffer and must come back as the
world's size; in the training step it turns the loss NaN otherwise), which turns that into a
DistributedError naming the lost rank; ``portable-dl launch`` stops a rank still waiting
after its grace period.
"""

from __future__ import annotations

import os
from typing import Any

import mlx.core as mx

from portable_dl.distributed import Engine
from portable_dl.errors import DistributedError


class MLXEngine(Engine):
    traceable = True

    def __init__(self, backend: Any, placement: Any, timeout: float):
        super().__init__(backend, placement.rank, placement.size, timeout)
        transport = "ring" if os.environ.get("MLX_HOSTFILE") else "any"
        if not mx.distributed.is_available():
            raise DistributedError("this MLX build has no distributed backend")
        try:
            self.group = mx.distributed.init(strict=True, backend=transport)
        except RuntimeError as error:
            raise DistributedError(f"mlx.distributed could not start its {transport} backend: {error}") from error
        if self.group.size() != placement.size or self.group.rank() != placement.rank:
            raise DistributedError(
                f"mlx.distributed runs rank {self.group.rank()} of {self.group.size()}, but the launcher gave "
                f"rank {placement.rank} of {placement.size}"
            )
        self.description = f"mlx.distributed ({transport})"

    def all_sum(self, buffer: Any) -> Any:
        # Collectives run on the CPU stream (the ring backend's requirement on every device).
        return mx.distributed.all_sum(buffer, group=self.group, stream=mx.cpu)
