"""JAX's multi-process engine: ``jax.distributed`` with gloo CPU collectives (NCCL on GPUs).

:func:`prepare` runs ``jax.distributed.initialize`` before the backend is created, as JAX
requires (after the first ``jax.devices()`` it refuses), with the coordinator that
``portable-dl launch`` gives (``PORTABLE_DL_COORDINATOR``; rank 0 serves it). On CPUs it
first selects gloo for cross-process collectives (``jax_cpu_collectives_implementation``).

A sum is one jitted XLA computation over the global device mesh: each rank's buffer becomes
its row of a ``(size, n)`` array sharded over the processes
(``jax.make_array_from_single_device_arrays``), and ``sum(axis=0)`` with a replicated
output makes XLA all-reduce it. It runs between the jitted gradient and the jitted update
of a training step, not inside them: a jitted step takes this process's arrays, and a
collective inside ``jax.jit`` needs global arrays throughout. A lost peer makes gloo's
pending call fail when its connection closes (the World then raises DistributedError naming
it); the coordination service also notices it within ``timeout`` seconds (its heartbeat). The
survivor's exit then waits at JAX's shutdown barrier for at most ``timeout`` seconds, unless
``portable-dl launch`` stops it first (after its grace period).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from portable_dl.distributed import Engine
from portable_dl.errors import DistributedError

_AXIS = "ranks"


def prepare(placement: Any, timeout: float) -> None:
    """Initialize ``jax.distributed`` for ``placement`` (once per process)."""
    if jax.distributed.is_initialized():
        return
    if placement.coordinator is None:
        raise DistributedError(
            "jax.distributed needs a coordinator address (PORTABLE_DL_COORDINATOR=host:port, which "
            "portable-dl launch sets; rank 0 serves it)"
        )
    # Only CPU collectives read this; GPUs use NCCL whatever it says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=placement.coordinator,
            num_processes=placement.size,
            process_id=placement.rank,
            initialization_timeout=max(1, int(timeout)),
            heartbeat_timeout_seconds=max(1, int(timeout)),
            # At exit JAX waits for every process at a shutdown barrier; after a peer was lost
            # that wait is bounded by the World's timeout, not JAX's default of 300 s.
            shutdown_timeout_seconds=max(1, int(timeout)),
        )
    except RuntimeError as error:
        raise DistributedError(
            f"jax.distributed could not start: {error}. Call portable_dl.distributed.init('jax') before "
            "anything else uses JAX (creating the jax backend included)"
        ) from error


class JaxEngine(Engine):
    traceable = False

    def __init__(self, backend: Any, placement: Any, timeout: float):
        super().__init__(backend, placement.rank, placement.size, timeout)
        if not jax.distributed.is_initialized():
            raise DistributedError(
                "jax.distributed is not initialized: call portable_dl.distributed.init('jax') (with the "
                "backend's name) before anything else uses JAX"
            )
        if jax.process_count() != placement.size or jax.process_index() != placement.rank:
            raise DistributedError(
                f"jax.distributed runs process {jax.process_index()} of {jax.process_count()}, but the launcher "
                f"gave rank {placement.rank} of {placement.size}"
            )
        platform = backend.jax_device.platform
        self.description = f"jax.distributed ({'gloo' if platform == 'cpu' else platform})"
        # One device per process, in rank order; this process's is the backend's.
        devices = [
            backend.jax_device
            if rank == self.rank
            else next(d for d in jax.devices(platform) if d.process_index == rank)
            for rank in range(self.size)
        ]
        self._device = backend.jax_device
        self._mesh = Mesh(np.array(devices), (_AXIS,))
        self._rows = NamedSharding(self._mesh, PartitionSpec(_AXIS))
        self._sum = jax.jit(lambda table: table.sum(axis=0), out_shardings=NamedSharding(self._mesh, PartitionSpec()))

    def all_sum(self, buffer: Any) -> Any:
        row = jax.device_put(buffer[None], self._device)
        table = jax.make_array_from_single_device_arrays((self.size, *buffer.shape), self._rows, [row])
        return self._sum(table).addressable_data(0)

    def close(self) -> None:
        if jax.distributed.is_initialized():
            jax.distributed.shutdown()
