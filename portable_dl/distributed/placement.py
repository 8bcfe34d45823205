"""Where this process stands in a multi-process run, read from its launcher's environment.

``portable-dl launch`` sets ``PORTABLE_DL_RANK``, ``PORTABLE_DL_WORLD_SIZE``,
``PORTABLE_DL_LOCAL_RANK``, ``PORTABLE_DL_COORDINATOR`` (``host:port``) and
``PORTABLE_DL_LAUNCH_DIR`` (where it records which rank exited how), and also the variables
each engine's own launcher sets, so a script runs the same under either:

===============  ====================================================================
torchrun          ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``
mlx.launch        ``MLX_RANK``, ``MLX_HOSTFILE`` (a JSON list of ``host:port`` lists)
TensorFlow        ``TF_CONFIG`` (``cluster.worker`` and ``task.index``)
===============  ====================================================================

Without any of them the process is alone: rank 0 of a world of one.

This module imports no framework.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Placement", "placement_from_environment"]


@dataclass(frozen=True)
class Placement:
    """``rank`` (0 .. ``size`` - 1), ``size`` (processes in the run), ``local_rank`` (index
    among the processes on this machine), ``coordinator`` (``"host:port"`` that rank 0
    listens on, where the engine needs one) and ``launch_dir`` (the launcher's status folder,
    or None when not run by ``portable-dl launch``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    coordinator: str | None = None
    launch_dir: str | None = None


def placement_from_environment(environ: Mapping[str, str] | None = None) -> Placement:
    """The :class:`Placement` the environment describes (see the module docstring); a world of
    one when it describes none. ValueError for values that contradict each other."""
    env = os.environ if environ is None else environ
    if "PORTABLE_DL_WORLD_SIZE" in env:
        found = Placement(
            rank=_int(env, "PORTABLE_DL_RANK"),
            size=_int(env, "PORTABLE_DL_WORLD_SIZE"),
            local_rank=_int(env, "PORTABLE_DL_LOCAL_RANK", _int(env, "PORTABLE_DL_RANK")),
            coordinator=env.get("PORTABLE_DL_COORDINATOR") or None,
            launch_dir=env.get("PORTABLE_DL_LAUNCH_DIR") or None,
        )
    elif "WORLD_SIZE" in env and "RANK" in env:  # torchrun
        coordinator = f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}" if "MASTER_ADDR" in env else None
        found = Placement(
            rank=_int(env, "RANK"),
            size=_int(env, "WORLD_SIZE"),
            local_rank=_int(env, "LOCAL_RANK", _int(env, "RANK")),
            coordinator=coordinator,
        )
    elif "MLX_RANK" in env:  # mlx.launch
        size = _int(env, "MLX_WORLD_SIZE", 0) or _hostfile_size(env.get("MLX_HOSTFILE", ""))
        rank = _int(env, "MLX_RANK")
        found = Placement(rank=rank, size=size, local_rank=rank)
    elif "TF_CONFIG" in env:
        config = json.loads(env["TF_CONFIG"])
        workers = config.get("cluster", {}).get("worker", [])
        rank = int(config.get("task", {}).get("index", 0))
        found = Placement(rank=rank, size=max(1, len(workers)), local_rank=rank, coordinator=(workers or [None])[0])
    else:
        return Placement()
    if found.size < 1 or not 0 <= found.rank < found.size:
        raise ValueError(f"the launcher's environment gives rank {found.rank} of a world of {found.size} processes")
    return found


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = env.get(name)
    if value is None or value == "":
        if default is None:
            raise ValueError(f"the launcher's environment lacks {name}")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the launcher's environment sets {name}={value!r}, not an integer") from None


def _hostfile_size(path: str) -> int:
    """Ranks in an ``MLX_HOSTFILE`` (a JSON list with one entry per rank); 1 without one."""
    if not path or not os.path.isfile(path):
        return 1
    with open(path) as file:
        text = file.read().strip()
    return len(json.loads(text)) if text else 1
