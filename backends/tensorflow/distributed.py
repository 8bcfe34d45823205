"""TensorFlow's multi-process engine: the collective all-reduce of
``tf.distribute.MultiWorkerMirroredStrategy``, configured by ``TF_CONFIG``.

:func:`prepare` creates the strategy before the backend is created, as TensorFlow requires
(collective ops are configured at program start-up, before the first operation), with the
ring implementation and ``timeout`` as the collectives' timeout. ``portable-dl launch`` sets
``TF_CONFIG`` with one worker per rank on 127.0.0.1. A sum is
``ReplicaContext.all_reduce("sum", buffer)`` run by the strategy on this worker's replica.
It runs between the XLA-compiled gradient and the XLA-compiled update of a training step: XLA
(``jit_compile=True``) cannot hold TensorFlow's collective ops.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import tensorflow as tf

from portable_dl.distributed import Engine
from portable_dl.errors import DistributedError

_strategy: Any = None


def prepare(placement: Any, timeout: float) -> None:
    """Create the strategy for ``placement`` (once per process), before TensorFlow's first operation."""
    global _strategy
    if _strategy is not None:
        return
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    workers = config.get("cluster", {}).get("worker", [])
    if len(workers) != placement.size:
        raise DistributedError(
            f"TensorFlow needs TF_CONFIG listing {placement.size} workers (portable-dl launch sets it), "
            f"found {len(workers)}"
        )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=float(timeout),
    )
    try:
        _strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (RuntimeError, ValueError) as error:
        raise DistributedError(
            f"TensorFlow's MultiWorkerMirroredStrategy could not start: {error}. Call "
            "portable_dl.distributed.init('tensorflow') before anything else uses TensorFlow"
        ) from error
    # The strategy warns at every eager call that eager use is slow; our one call per step is the design.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


class TensorFlowEngine(Engine):
    traceable = False
    description = "TensorFlow collective all-reduce (MultiWorkerMirroredStrategy, ring)"

    def __init__(self, backend: Any, placement: Any, timeout: float):
        super().__init__(backend, placement.rank, placement.size, timeout)
        if _strategy is None:
            raise DistributedError(
                "TensorFlow's collectives are not set up: call portable_dl.distributed.init('tensorflow') (with "
                "the backend's name) before anything else uses TensorFlow"
            )
        resolver = _strategy.cluster_resolver
        if _strategy.num_replicas_in_sync != placement.size or resolver.task_id != placement.rank:
            raise DistributedError(
                f"TensorFlow runs worker {resolver.task_id} of {_strategy.num_replicas_in_sync} replicas, but the "
                f"launcher gave rank {placement.rank} of {placement.size}"
            )
        self.strategy = _strategy

    def all_sum(self, buffer: Any) -> Any:
        summed = self.strategy.run(_replica_sum, args=(buffer,))
        return self.strategy.experimental_local_results(summed)[0]


def _replica_sum(value: Any) -> Any:
    return tf.distribute.get_replica_context().all_reduce("sum", value)
