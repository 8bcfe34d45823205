"""Data parallel on this machine: ms per training step at 1 and 2 processes, the bytes
all-reduced per step, and the share of the step spent in the collective.

The model: MLP([784, 256, 256, 10]), softmax cross-entropy, Adam(1e-3), float32, a fixed
random batch of ``--batch-size`` examples PER PROCESS (so two processes do twice the work
of one per step), through ``make_train_step(..., world=world)`` compiled by the backend.
Each configuration is started with ``portable-dl launch -n N --backend NAME`` (this file
with ``--worker``); rank 0 times blocks of steps (each ended by a synchronization) and
reports the median time per step. The collective's share is measured apart: the same
number of bytes all-reduced alone, eagerly, divided by the two-process step time (where the
collective runs inside the compiled step, torch and MLX, it cannot be timed inside it).

    python bench/data_parallel.py                          # torch, mlx, jax, tensorflow: ~3 minutes here
    python bench/data_parallel.py --backends torch,jax --steps 40

On a machine with two cores (this one), two processes share them: the numbers show the
cost of the collective and of sharing the cores, not a speed-up. Every process runs one
OpenMP thread (``OMP_NUM_THREADS=1`` unless set), so that 1 and 2 processes compare fairly. Results go to
``results/data_parallel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH / "results" / "data_parallel.json"
BACKENDS = ("torch", "mlx", "jax", "tensorflow")
SIZES = (784, 256, 256, 10)
BLOCKS = 5


def worker(arguments: argparse.Namespace) -> None:
    """One rank: time the step; rank 0 writes the result to ``arguments.worker``."""
    import portable_dl as pdl
    from portable_dl import distributed, losses, nn, optimizers

    world = distributed.init(os.environ["PORTABLE_DL_BACKEND"], timeout=120)
    backend = world.backend
    rng = np.random.default_rng(world.rank)
    x = backend.asarray(rng.normal(size=(arguments.batch_size, SIZES[0])).astype(np.float32))
    y = backend.asarray(rng.integers(0, SIZES[-1], arguments.batch_size))
    model = nn.MLP(SIZES)
    step = pdl.make_train_step(
        lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
        optimizers.Adam(1e-3),
        backend,
        world=world,
    )
    params = model.init(0, backend)
    state = step.init(params)
    started = time.perf_counter()
    params, state, _ = step(params, state, (x, y))
    backend.synchronize((params, state))
    first = time.perf_counter() - started
    for _ in range(2):
        params, state, _ = step(params, state, (x, y))
        backend.synchronize((params, state))
    per_block = max(1, arguments.steps // BLOCKS)
    block_times = []
    for _ in range(BLOCKS):
        world.barrier()
        started = time.perf_counter()
        for _ in range(per_block):
            params, state, _ = step(params, state, (x, y))
            backend.synchronize((params, state))  # MLX is lazy: evaluate each step, as its loops do
        block_times.append((time.perf_counter() - started) / per_block)
    step_ms = 1000 * statistics.median(block_times)
    count = sum(int(np.prod(leaf.shape)) for leaf in pdl.tree_leaves(params))
    result = {
        "backend": backend.name,
        "processes": world.size,
        "engine": world.engine.description if world.engine is not None else None,
        "batch_per_process": arguments.batch_size,
        "first_step_s": first,
        "ms_per_step": step_ms,
        "block_ms": [1000 * t for t in block_times],
        "examples_per_s": 1000 * arguments.batch_size * world.size / step_ms,
        "bytes_all_reduced_per_step": getattr(step, "bytes_per_step", None),
        "parameters": count,
    }
    if world.size > 1:
        buffer = backend.asarray(np.ones(step.bytes_per_step // 4, dtype=np.float32))
        times = []
        for _ in range(3 + arguments.steps):
            world.barrier()
            started = time.perf_counter()
            backend.synchronize(world.sum_buffers([buffer]))
            times.append(time.perf_counter() - started)
        collective_ms = 1000 * statistics.median(times[3:])
        result["collective_ms"] = collective_ms
        result["collective_ms_each"] = [1000 * t for t in times[3:]]  # every timed all-reduce, not only the median
        result["collective_share"] = collective_ms / step_ms
    world.barrier()
    if world.rank == 0:
        Path(arguments.worker).write_text(json.dumps(result))
    world.close()


def run(backend: str, processes: int, arguments: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [
            sys.executable,
            "-m",
            "portable_dl",
            "launch",
            "-n",
            str(processes),
            "--backend",
            backend,
            __file__,
            "--worker",
            str(out),
            "--steps",
            str(arguments.steps),
            "--batch-size",
            str(arguments.batch_size),
        ]
        # One OpenMP thread per process in every configuration (torch's intra-op pool): with
        # two threads, one torch process on a loaded two-core machine ran 4x slower than two.
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
        if done.returncode != 0 or not out.exists():
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
            return {"backend": backend, "processes": processes, "error": tail}
        return json.loads(out.read_text())


def table(rows: list[dict]) -> str:
    lines = [
        "| backend | processes | ms per step | examples/s | bytes all-reduced per step | collective ms "
        "| share of step |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['backend']} | {row['processes']} | failed: {row['error'][:80]} | | | | |")
            continue
        collective = row.get("collective_ms")
        share = "" if collective is None else f"{100 * row['collective_share']:.0f}%"
        lines.append(
            f"| {row['backend']} | {row['processes']} | {row['ms_per_step']:.2f} | {row['examples_per_s']:.0f} | "
            f"{row['bytes_all_reduced_per_step'] or 0:,} | {'' if collective is None else f'{collective:.2f}'} | "
            f"{share} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--steps", type=int, default=30, help="timed steps (in 5 blocks)")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per process and step")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker is not None:
        worker(arguments)
        return 0
    rows = []
    for backend in arguments.backends.split(","):
        for processes in (1, 2):
            rows.append(run(backend, processes, arguments))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    from _timing import document, write_json  # bench/ is on sys.path when this file runs

    settings = {"sizes": list(SIZES), "batch_per_process": arguments.batch_size, "steps": arguments.steps}
    write_json(arguments.output, document("data_parallel", settings, results=rows))
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
