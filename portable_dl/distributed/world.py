"""The World: this process's rank among ``size`` processes, and the collectives between them.

:func:`init` reads the launcher's environment (:mod:`.placement`) and, for more than one
process, starts the backend's own engine (:meth:`portable_dl.Backend.distributed_engine`).
A world of one needs no launcher and no engine: every collective returns its input.

Every collective takes a pytree and moves it as one flat buffer per dtype
(:mod:`.buckets`), so a gradient of dozens of arrays costs one round trip. A collective that
fails because a peer is gone raises :class:`~portable_dl.errors.DistributedError` naming
the lost rank when the launcher recorded it (``portable-dl launch`` does).

This module imports no framework.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import Backend
from ..errors import DistributedError, DTypeError, PortableDLError
from ..registry import backend as get_backend
from ..tree import path_string, tree_flatten, tree_flatten_with_path, tree_unflatten
from .buckets import Buckets
from .placement import Placement, placement_from_environment

__all__ = ["World", "init", "REDUCE_OPS"]

#: the reductions :meth:`World.all_reduce` offers
REDUCE_OPS = ("mean", "sum")
#: seconds a rank waits, after a collective failed, for the launcher to record which peer exited
_LOST_RANK_WAIT = 3.0


def init(
    backend: Any = None, *, device: str | None = None, timeout: float = 60.0, environ: Mapping[str, str] | None = None
) -> World:
    """The :class:`World` of this process on ``backend`` (a Backend or its name).

    Rank and size come from the launcher's environment (``portable-dl launch``, ``torchrun``,
    ``mlx.launch``, ``TF_CONFIG``); without a launcher the world has one process and nothing
    changes. ``device`` as for :func:`portable_dl.backend` (with a name); ``"{local_rank}"``
    in it is replaced by this process's local rank: ``device="cuda:{local_rank}"`` gives
    each process of a machine its own GPU, as NCCL requires. ``timeout`` (seconds) bounds how
    long a collective waits for a lost peer, where the engine allows (see each engine).
    Raises :class:`~portable_dl.errors.DistributedError` when the backend has no
    multi-process engine (NumPy) and more than one process is asked for.
    """
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    placement = placement_from_environment(environ)
    if placement.size > 1 and (backend is None or isinstance(backend, str)):
        _prepare_engine(backend, placement, float(timeout))
    if device is not None:
        device = device.replace("{local_rank}", str(placement.local_rank))
    backend = get_backend(backend, device) if not isinstance(backend, Backend) else backend
    engine = None
    if placement.size > 1:
        engine = backend.distributed_engine(placement, float(timeout))
    return World(backend, placement, engine)


def _prepare_engine(name: str | None, placement: Placement, timeout: float) -> None:
    """Start an engine that must start before its framework's first computation
    (``jax.distributed.initialize``, TensorFlow's ``MultiWorkerMirroredStrategy``): the
    adapter's ``distributed`` module may define ``prepare(placement, timeout)``, run here,
    before the Backend is created."""
    from ..registry import DEFAULT_BACKEND, ENVIRONMENT_VARIABLE, _entry_points

    name = name or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_BACKEND
    entry_point = _entry_points().get(name)
    if entry_point is None:
        return
    module_name = entry_point.value.split(":", 1)[0] + ".distributed"
    try:
        if importlib.util.find_spec(module_name) is None:
            return
    except ImportError:  # the adapter's package itself cannot be imported: get_backend will say why
        return
    prepare = getattr(importlib.import_module(module_name), "prepare", None)
    if prepare is not None:
        prepare(placement, timeout)


class World:
    """``rank``, ``size`` and ``local_rank`` of this process, with ``all_reduce``,
    ``broadcast`` and ``barrier`` over the backend's engine. Made by :func:`init`."""

    def __init__(self, backend: Any, placement: Placement, engine: Any = None):
        if placement.size > 1 and engine is None:
            raise DistributedError(f"a world of {placement.size} processes needs an engine")
        self.backend = backend
        self.placement = placement
        self.engine = engine

    @property
    def rank(self) -> int:
        return self.placement.rank

    @property
    def size(self) -> int:
        return self.placement.size

    @property
    def local_rank(self) -> int:
        return self.placement.local_rank

    @property
    def traceable(self) -> bool:
        """Whether the collectives may run inside the backend's compiled functions."""
        return self.engine is not None and self.engine.traceable

    def __repr__(self) -> str:
        engine = self.engine.description if self.engine is not None else "no engine"
        return f"<portable_dl World rank {self.rank} of {self.size} on {self.backend.name}, {engine}>"

    # ----------------------------------------------------------------- collectives
    def all_reduce(self, tree: Any, op: str = "mean") -> Any:
        """``tree`` (a pytree of this backend's arrays) summed, or averaged, over all ranks,
        leaf by leaf; same structure, shapes and dtypes. ``"mean"`` needs floating leaves
        (DTypeError otherwise); ``"sum"`` of integers is exact. One collective per dtype."""
        if op not in REDUCE_OPS:
            raise ValueError(f"all_reduce op must be one of {', '.join(map(repr, REDUCE_OPS))}, got {op!r}")
        leaves, treedef = tree_flatten(tree)
        if op == "mean":
            for leaf in leaves:
                if not self.backend.xp.isdtype(leaf.dtype, "real floating"):
                    raise DTypeError(
                        f"all_reduce with op='mean' needs floating-point arrays, got one of dtype "
                        f"{self.backend.dtype_name(leaf.dtype)}; use op='sum' for integers"
                    )
        if self.size == 1 or not leaves:
            return tree
        buckets = Buckets.of(leaves, self.backend)
        buffers = [self._checked_sum(buffer) for buffer in buckets.pack(leaves, self.backend.xp)]
        summed = buckets.unpack(buffers, self.backend.xp)
        if op == "mean":
            summed = [self.backend.xp.divide(leaf, float(self.size)) for leaf in summed]
        return tree_unflatten(treedef, summed)

    def broadcast(self, tree: Any, root: int = 0) -> Any:
        """Rank ``root``'s ``tree`` on every rank (every rank passes a tree of the same
        structure, shapes and dtypes). Exact, except that where an engine has no broadcast of
        its own (the other ranks then add zeros), a -0.0 of the root arrives as +0.0."""
        self._check_root(root)
        leaves, treedef = tree_flatten(tree)
        if self.size == 1 or not leaves:
            return tree
        xp = self.backend.xp
        buckets = Buckets.of(leaves, self.backend)
        sent = []
        for buffer in buckets.pack(leaves, xp):
            if self.engine.broadcast is not None:
                sent.append(self._collective(lambda b=buffer: self.engine.broadcast(b, root)))
            else:
                sent.append(self._checked_sum(buffer if self.rank == root else xp.zeros_like(buffer)))
        return tree_unflatten(treedef, buckets.unpack(sent, xp))

    def barrier(self) -> None:
        """Return once every rank has reached its barrier."""
        if self.size == 1:
            return
        if self.engine.barrier is not None:
            self._collective(self.engine.barrier)
        else:
            self.backend.to_numpy(self._checked_sum(self.backend.asarray(np.zeros(1, dtype=np.int32))))

    def sum_buffers(self, buffers: list) -> list:
        """Each 1-D buffer summed over all ranks, unchecked: inside a compiled step where the
        engine is :attr:`traceable`, eagerly otherwise. The training step counts the ranks
        in its buffer itself (:mod:`.step`); other callers use :meth:`all_reduce`."""
        if self.size == 1:
            return list(buffers)
        if self.traceable:
            return [self.engine.all_sum(buffer) for buffer in buffers]
        return [self._collective(lambda b=buffer: self.engine.all_sum(b)) for buffer in buffers]

    def _checked_sum(self, buffer: Any) -> Any:
        """An eager sum that proves every rank took part: a 1 rides at the end of the buffer
        and must come back as ``size``. Some engines (MLX's ring) return from a collective
        whose peer died with a partial sum instead of an error; this makes it an error."""
        xp = self.backend.xp
        padded = xp.concat([buffer, xp.ones((1,), dtype=buffer.dtype)])
        summed = self._collective(lambda: self.engine.all_sum(padded))
        counted = float(self.backend.to_numpy(summed[-1]))
        if counted != self.size:
            raise self.failure(RuntimeError(f"the sum counted {counted:g} of {self.size} ranks"))
        return summed[:-1]

    def close(self) -> None:
        """Leave the world; the World cannot be used afterwards."""
        if self.engine is not None:
            self.engine.close()

    # -------------------------------------------------------------- same shapes
    def check_same_shapes(self, tree: Any, what: str = "parameters") -> None:
        """Raise :class:`~portable_dl.errors.DistributedError` on every rank (the same message)
        when the ranks' ``tree`` differ in leaf count, shape or dtype, naming the first
        difference with both shapes. Every rank's description travels in one integer sum
        (each rank fills its own row of a zero matrix)."""
        if self.size == 1:
            return
        entries, _ = tree_flatten_with_path(tree)
        mine = _describe(entries, self.backend)
        lengths = np.zeros(self.size, dtype=np.int32)
        lengths[self.rank] = len(mine)
        lengths = self._sum_numpy(lengths)
        table = np.zeros((self.size, int(lengths.max())), dtype=np.int32)
        table[self.rank, : len(mine)] = mine
        table = self._sum_numpy(table.reshape(-1)).reshape(self.size, -1)
        reference = _decode(table[0, : lengths[0]])
        for rank in range(1, self.size):
            other = _decode(table[rank, : lengths[rank]])
            difference = _first_difference(reference, other, entries)
            if difference:
                raise DistributedError(f"the ranks' {what} differ: {difference.format(first=0, second=rank)}")

    def _sum_numpy(self, array: np.ndarray) -> np.ndarray:
        summed = self._checked_sum(self.backend.asarray(array))
        return np.asarray(self.backend.to_numpy(summed)).astype(np.int64)

    # ------------------------------------------------------------------ faults
    def _check_root(self, root: Any) -> None:
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < self.size:
            raise ValueError(f"root must be a rank from 0 to {self.size - 1}, got {root!r}")

    def _collective(self, call: Any) -> Any:
        try:
            return call()
        except PortableDLError:
            raise
        except Exception as error:
            raise self.failure(error) from error

    def failure(self, error: BaseException) -> BaseException:
        """The error to raise for ``error``, raised by a collective: DistributedError naming the
        lost ranks when the launcher recorded one exiting, else a DistributedError carrying
        the engine's own message."""
        lost = self.lost_ranks(wait=_LOST_RANK_WAIT)
        engine = self.engine.description if self.engine is not None else self.backend.name
        if lost:
            named = ", ".join(
                f"rank {rank} ({f'killed by signal {-code}' if code < 0 else f'exit code {code}'})"
                for rank, code in lost
            )
            return DistributedError(
                f"rank {self.rank} lost {named}: the run cannot go on; {engine} said: {_first_line(error)}"
            )
        return DistributedError(f"a collective of rank {self.rank} failed in {engine}: {_first_line(error)}")

    def lost_ranks(self, wait: float = 0.0) -> list[tuple[int, int]]:
        """``(rank, exit code)`` of the other ranks the launcher saw exit with an error, waiting
        up to ``wait`` seconds for it to record one. Empty without ``portable-dl launch``."""
        folder = self.placement.launch_dir
        if folder is None:
            return []
        deadline = time.monotonic() + wait
        while True:
            lost = []
            for rank in range(self.size):
                path = os.path.join(folder, f"rank-{rank}.exit")
                if rank != self.rank and os.path.exists(path):
                    try:
                        code = int(open(path).read().strip() or 0)
                    except (OSError, ValueError):
                        continue
                    if code != 0:
                        lost.append((rank, code))
            if lost or time.monotonic() >= deadline:
                return lost
            time.sleep(0.1)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


# --------------------------------------------------- describing trees as integers
#: dtype names as small integers, for the shape check's integer collective
_DTYPE_CODES = {
    name: code
    for code, name in enumerate(
        ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"), 1
    )
}


def _describe(entries: list[tuple], backend: Any) -> list[int]:
    """[leaf count, then per leaf: dtype code, ndim, dims...] of a flattened tree."""
    out = [len(entries)]
    for _, leaf in entries:
        shape = tuple(int(d) for d in leaf.shape)
        out += [_DTYPE_CODES.get(backend.dtype_name(leaf.dtype), 0), len(shape), *shape]
    return out


def _decode(row: np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
    values = [int(v) for v in row]
    count, position, leaves = values[0], 1, []
    for _ in range(count):
        dtype, ndim = values[position], values[position + 1]
        leaves.append((dtype, tuple(values[position + 2 : position + 2 + ndim])))
        position += 2 + ndim
    return leaves


class _Difference:
    def __init__(self, text: str):
        self.text = text

    def format(self, first: int, second: int) -> str:
        return self.text.format(first=first, second=second)


def _first_difference(a: list, b: list, entries: list | None) -> _Difference | None:
    names = {code: name for name, code in _DTYPE_CODES.items()}
    if len(a) != len(b):
        return _Difference(f"rank {{first}} has {len(a)} arrays, rank {{second}} has {len(b)}")
    for index, ((dtype_a, shape_a), (dtype_b, shape_b)) in enumerate(zip(a, b)):
        where = f"array {index}"
        if entries is not None and index < len(entries):
            where = repr(path_string(entries[index][0])) if entries[index][0] else "the root"
        if shape_a != shape_b:
            return _Difference(f"at {where} rank {{first}} has shape {shape_a}, rank {{second}} has shape {shape_b}")
        if dtype_a != dtype_b:
            return _Difference(
                f"at {where} rank {{first}} has dtype {names.get(dtype_a)}, rank {{second}} has {names.get(dtype_b)}"
            )
    return None
