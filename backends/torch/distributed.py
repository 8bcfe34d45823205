"""PyTorch's multi-process engine: ``torch.distributed``, gloo on the CPU, NCCL on CUDA.

The process group is set up from torchrun's variables (``MASTER_ADDR``, ``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``), which ``portable-dl launch`` sets too. The sum is traceable:
under ``torch.compile`` it is the functional collective
(``torch.distributed._functional_collectives.all_reduce``), which TorchDynamo keeps inside
the compiled graph; in eager code it is ``dist.all_reduce`` on a copy of the buffer. A peer
that dies makes gloo's pending call fail (its connection closes) and every call time out
after ``timeout`` seconds at most (the process group's timeout).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist

from portable_dl.distributed import Engine
from portable_dl.errors import DistributedError


class TorchEngine(Engine):
    traceable = True

    def __init__(self, backend: Any, placement: Any, timeout: float):
        super().__init__(backend, placement.rank, placement.size, timeout)
        transport = "nccl" if backend.device.startswith("cuda") else "gloo"
        if transport == "nccl" and not dist.is_nccl_available():
            raise DistributedError("the torch backend on a CUDA device needs NCCL, which this PyTorch lacks")
        self.description = f"torch.distributed ({transport})"
        if not dist.is_initialized():
            init_method = "env://"
            if "MASTER_ADDR" not in os.environ:
                if placement.coordinator is None:
                    raise DistributedError("torch.distributed needs MASTER_ADDR and MASTER_PORT (torchrun sets them)")
                init_method = f"tcp://{placement.coordinator}"
            dist.init_process_group(
                transport,
                init_method=init_method,
                rank=placement.rank,
                world_size=placement.size,
                timeout=datetime.timedelta(seconds=timeout),
            )

    def all_sum(self, buffer: Any) -> Any:
        if torch.compiler.is_compiling():
            # Traced into the graph by Dynamo; returns a new tensor.
            import torch.distributed._functional_collectives as functional

            return functional.all_reduce(buffer, "sum", dist.group.WORLD)
        out = buffer.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def broadcast(self, buffer: Any, root: int) -> Any:
        out = buffer.detach().clone()
        dist.broadcast(out, src=root)
        return out

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()
