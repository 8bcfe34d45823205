"""What a backend's multi-process engine gives :class:`~portable_dl.distributed.World`.

Each adapter that has one implements :class:`Engine` in ``backends/<name>/distributed.py``
over its framework's own collectives (``torch.distributed``, ``mlx.distributed``,
``jax.distributed``, TensorFlow's collective all-reduce) and returns it from
:meth:`portable_dl.Backend.distributed_engine`. An engine moves one flat 1-D array at a time:
the World lays a pytree out in such buffers (:mod:`portable_dl.distributed.buckets`).

This module imports no framework.
"""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["Engine"]


class Engine(abc.ABC):
    """One process's end of a framework's collectives.

    ``description`` names the engine and its transport (``"torch.distributed (gloo)"``);
    ``traceable`` says whether :meth:`all_sum` may run inside the backend's compiled functions
    (then the training step holds its collective inside the compiled graph). ``timeout``
    (seconds) bounds how long a collective waits for a peer, where the framework lets it.
    """

    description: str = ""
    traceable: bool = False

    def __init__(self, backend: Any, rank: int, size: int, timeout: float):
        self.backend = backend
        self.rank = rank
        self.size = size
        self.timeout = timeout

    @abc.abstractmethod
    def all_sum(self, buffer: Any) -> Any:
        """The elementwise sum of ``buffer`` (1-D, any dtype the framework reduces) over all
        ranks, as a new array; the caller's array is left as it was."""

    #: ``broadcast(buffer, root) -> buffer``, the framework's own broadcast, where it has one;
    #: None: the World broadcasts by a checked sum in which the other ranks contribute zeros.
    broadcast: Any = None

    #: ``barrier()``, the framework's own barrier, where it has one; None: a checked sum of one number.
    barrier: Any = None

    def close(self) -> None:  # noqa: B027 (optional: most engines have nothing to release)
        """Leave the world (release the framework's process group); the default does nothing."""
