"""Timing helpers the benchmarks share: warm-up, synchronization, interleaved blocks,
medians, machine information, tables and JSON.

How a comparison is timed (:func:`compare`):

1. Warm-up. Each runner's first step is timed alone (it includes tracing and compiling),
   ``warmup - 1`` more run untimed, then one more, timed, estimates the cost of a warm step.
2. Blocks. A block is ``steps`` consecutive steps followed by one synchronization (so work
   queued asynchronously, on a GPU or by JAX's dispatch, is inside the block). Without a
   fixed ``steps``, each runner gets as many steps as fill ``block_seconds``.
3. Interleaving. Blocks of the runners alternate (A B B A A B ...), so that a change in the
   machine's load during the run (the benchmark machine may be shared) falls on every
   runner alike; the ratio of two medians is then robust where absolute times are not.
4. The result of a runner is the median over blocks of the seconds per step, of the wall
   clock and of this process's CPU time. On a machine shared with other work the CPU time
   (which leaves out the time other processes held the cores) is the steadier of the two;
   with several threads per step it adds up their time.

The garbage collector stays on, as in real training (garbage a step leaves in reference
cycles is part of its cost); one collection after the warm-ups keeps their garbage out of
the first block.

A runner marked ``optional`` (a native compiled step, which needs a C++ compiler for
``torch.compile`` on a CPU) may fail during warm-up: it is then reported unavailable with
the reason, and the others are timed without it. A portable runner that fails is a bug and
raises.
"""

from __future__ import annotations

import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

#: Frameworks whose versions every result file records (distribution names).
DISTRIBUTIONS = ("portable-dl", "numpy", "torch", "tensorflow", "tensorflow-cpu", "keras", "mlx", "jax", "jaxlib")

#: The most steps a block gets when it is sized by a time budget.
MAX_STEPS_PER_BLOCK = 1000


@dataclass
class Runner:
    """Something to time: ``step()`` runs one unit of work (a training step, a call) and
    returns what ``synchronize(result)`` must wait for before the clock stops.
    ``steps_per_call``: how many steps one ``step()`` call runs (k stacked batches in one
    compiled call); times are reported per step, the call's time divided by it."""

    step: Callable[[], Any]
    synchronize: Callable[[Any], Any] = lambda result: result
    optional: bool = False
    steps_per_call: int = 1


@dataclass
class Timing:
    """The measurements of one runner. ``seconds_per_step`` holds one value per block."""

    status: str = "ok"  # "ok" or "unavailable"
    reason: str | None = None
    first_step_seconds: float | None = None  # the first call: tracing and compiling included
    steps_per_block: int = 0  # calls per block
    steps_per_call: int = 1  # steps per call: the blocks' times are per step, a call's time / this
    seconds_per_step: list[float] = field(default_factory=list)  # wall clock
    cpu_seconds_per_step: list[float] = field(default_factory=list)  # this process's CPU time
    first_result: Any = None  # what the first step returned (a loss, for a sanity check)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median(self) -> float | None:
        """The median over blocks of the wall-clock seconds per step."""
        return statistics.median(self.seconds_per_step) if self.seconds_per_step else None

    @property
    def cpu_median(self) -> float | None:
        """The median over blocks of the CPU seconds per step."""
        return statistics.median(self.cpu_seconds_per_step) if self.cpu_seconds_per_step else None

    def as_json(self, unit: float = 1e3) -> dict:
        """A JSON object of the measurements, times multiplied by ``unit`` (1e3: ms)."""
        if not self.ok:
            return {"status": self.status, "reason": self.reason}
        return {
            "status": "ok",
            "median": self.median * unit,
            "blocks": [value * unit for value in self.seconds_per_step],
            "cpu_median": self.cpu_median * unit,
            "cpu_blocks": [value * unit for value in self.cpu_seconds_per_step],
            "steps_per_block": self.steps_per_block,
            "steps_per_call": self.steps_per_call,
            "first_step": None if self.first_step_seconds is None else self.first_step_seconds * unit,
        }


def time_block(runner: Runner, steps: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds (of this process, all threads) taken by ``steps`` steps of
    ``runner`` and one synchronization at the end."""
    result = None
    cpu_start, start = time.process_time(), time.perf_counter()
    for _ in range(steps):
        result = runner.step()
    runner.synchronize(result)
    return time.perf_counter() - start, time.process_time() - cpu_start


def steps_for(seconds_per_step: float, block_seconds: float) -> int:
    """How many steps of ``seconds_per_step`` fill ``block_seconds`` (at least one)."""
    if seconds_per_step <= 0:
        return MAX_STEPS_PER_BLOCK
    return max(1, min(MAX_STEPS_PER_BLOCK, round(block_seconds / seconds_per_step)))


def compare(
    runners: Mapping[str, Runner], *, blocks: int, steps: int | None = None, block_seconds: float = 0.5, warmup: int = 2
) -> dict[str, Timing]:
    """Time every runner in interleaved blocks (see the module docstring); return a
    :class:`Timing` per name, in the order given."""
    timings: dict[str, Timing] = {}
    for name, runner in runners.items():
        timings[name] = _warm_up(runner, steps, block_seconds, warmup)
    ready = [name for name in runners if timings[name].ok]
    gc.collect()  # the warm-ups' garbage would otherwise be collected inside the first block
    for block in range(blocks):
        order = ready if block % 2 == 0 else ready[::-1]
        for name in order:
            timing = timings[name]
            wall, cpu = time_block(runners[name], timing.steps_per_block)
            steps = timing.steps_per_block * timing.steps_per_call
            timing.seconds_per_step.append(wall / steps)
            timing.cpu_seconds_per_step.append(cpu / steps)
    return timings


def _warm_up(runner: Runner, steps: int | None, block_seconds: float, warmup: int) -> Timing:
    timing = Timing(steps_per_call=runner.steps_per_call)
    try:
        start = time.perf_counter()
        timing.first_result = runner.synchronize(runner.step())
        timing.first_step_seconds = time.perf_counter() - start
        for _ in range(max(0, warmup - 1)):
            runner.synchronize(runner.step())
        estimate, _ = time_block(runner, 1)
    except Exception as error:  # noqa: BLE001 - an optional runner reports any failure as its reason
        if not runner.optional:
            raise
        return Timing(status="unavailable", reason=describe_error(error))
    timing.steps_per_block = steps if steps is not None else steps_for(estimate, block_seconds)
    return timing


def describe_error(error: BaseException) -> str:
    """``"TypeName: first line of the message"``, short enough for a table."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def ratio(numerator: Timing | None, denominator: Timing | None, cpu: bool = False) -> float | None:
    """``numerator.median / denominator.median`` (of CPU time with ``cpu``); None where
    either is missing."""
    if numerator is None or denominator is None or not (numerator.ok and denominator.ok):
        return None
    if cpu:
        return numerator.cpu_median / denominator.cpu_median
    return numerator.median / denominator.median


# ------------------------------------------------------------- machine and versions
def machine_info() -> dict:
    """The machine the numbers were taken on: processor, cores, memory, load, OS, Python."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _processor_name(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(value, 2) for value in os.getloadavg()]
    memory = _memory_bytes()
    if memory:
        info["memory_gib"] = round(memory / 2**30, 1)
    return info


def _processor_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def versions() -> dict[str, str]:
    """Installed versions of portable-dl and the frameworks (absent ones left out)."""
    found = {}
    for distribution in DISTRIBUTIONS:
        try:
            found[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return found


def document(benchmark: str, settings: dict, **sections: Any) -> dict:
    """The common head of every result file, then ``sections``."""
    return {
        "benchmark": benchmark,
        "schema": f"portable-dl/bench/{benchmark}/1",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": machine_info(),
        "versions": versions(),
        "settings": settings,
        **sections,
    }


def write_json(path: str | os.PathLike, content: dict) -> Path:
    """Write ``content`` as indented JSON, creating the folder; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    """NumPy scalars and other number-likes as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ------------------------------------------------------------ one process per framework
def run_in_own_processes(
    script: str | os.PathLike, argv: Sequence[str], selections: Mapping[str, Sequence[str]]
) -> dict[str, dict]:
    """Run ``script`` once per selection, each in a fresh Python process, and return the
    JSON document each wrote, by selection label.

    A framework loaded in a process keeps its thread pools (and their spinning threads) and
    its allocator's state: timing a second framework in the same process would measure the
    first one too. Each process gets ``argv`` followed by the selection's own options and
    ``--output <temporary file> --in-process`` (argparse keeps the last value of an option,
    so these override the same options in ``argv``). A process that fails leaves
    ``{"failed": reason}`` under its label.
    """
    documents: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="portable-dl-bench-") as folder:
        for label, options in selections.items():
            output = Path(folder) / f"{len(documents)}.json"
            command = [sys.executable, str(script), *argv, *options, "--output", str(output), "--in-process"]
            completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
            if completed.returncode != 0 or not output.exists():
                documents[label] = {"failed": f"the process for {label} exited with code {completed.returncode}"}
                continue
            documents[label] = json.loads(output.read_text(encoding="utf-8"))
    return documents


def results_per_backend(
    script: str | os.PathLike,
    argv: Sequence[str],
    names: Sequence[str],
    in_process: bool,
    measure: Callable[[str], dict],
    unavailable: type[BaseException],
) -> list[dict]:
    """One result per backend name: ``measure(name)``, each in its own process (see
    :func:`run_in_own_processes`) when there are several names and not ``in_process``.
    A backend whose framework is missing (``unavailable`` raised) or whose process failed
    gives ``{"backend": name, "skipped": reason}``."""
    if len(names) > 1 and not in_process:
        documents = run_in_own_processes(script, argv, {name: ["--backends", name] for name in names})
        return [
            documents[name]["results"][0]
            if "results" in documents[name]
            else {"backend": name, "skipped": documents[name]["failed"]}
            for name in names
        ]
    results = []
    for name in names:
        try:
            results.append(measure(name))
        except unavailable as error:
            results.append({"backend": name, "skipped": describe_error(error)})
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return results


# ----------------------------------------------------------------------- printing
def format_number(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, or "-" for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))

    return "\n".join(
        [line(list(map(str, headers))), line(["-" * width for width in widths])] + [line(row) for row in cells]
    )


def split_names(text: str | None, known: Sequence[str]) -> list[str]:
    """``"torch,jax"`` -> ``["torch", "jax"]`` in the order given; None or "all" -> ``known``;
    "none" -> ``[]``. SystemExit naming the unknown ones otherwise."""
    if text is None or text == "all":
        return list(known)
    if text == "none":
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown name(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return names
