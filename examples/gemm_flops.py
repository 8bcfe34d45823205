"""How fast each installed backend multiplies matrices: C = A @ B for square N x N matrices,
in GFLOP/s, on every backend and device, in float32 and float64.

Each product is ``backend.xp.matmul`` of two matrices of standard normal values already on
the device. One product of each size is computed first and not timed (it allocates, and
JAX compiles each new shape); then each of ``--repeats`` products is timed alone, with
``Backend.synchronize`` before the clock starts and before it stops, so lazy (MLX) and
asynchronous (JAX, GPU) work is counted. Small products are repeated more often, until
about 0.2 s of them are timed (at most 100), because a median of three products of a few
milliseconds says little on a busy machine. The rate is 2 N^3 floating-point operations over
the median time.

A time budget per backend, device and dtype (``--budget-seconds``) keeps the run short:
before each size, the time the next one would take is predicted from the last (time grows
as N^3), and when it would overrun the budget that size and all larger ones are skipped,
and the output says so. (MLX on a Linux CPU reaches about 2 GFLOP/s: one product of size
4096 would take a minute.)

The peak drawn on the figure is measured, not theoretical: for each dtype, the best rate any
backend reached in this run. It says what this machine delivers to these libraries now (other
programs running at the same time lower it), not what its processor could do at best.

    python examples/gemm_flops.py                             # every backend, device, dtype
    python examples/gemm_flops.py --backends numpy,torch --max-size 8192 --budget-seconds 60
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _shared
import numpy as np

import portable_dl

#: Small products are repeated until about this many seconds are timed, at most MAX_REPEATS times.
MIN_TIMED_SECONDS = 0.2
MAX_REPEATS = 100


def parse_arguments(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_shared.HelpFormatter)
    _shared.add_backend_arguments(parser, device_default=_shared.ALL_DEVICES)
    parser.add_argument("--min-size", type=int, default=256, help="smallest N")
    parser.add_argument("--max-size", type=int, default=4096, help="largest N (sizes double from the smallest)")
    _shared.add_dtype_argument(parser, default="float32,float64", several=True)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed products per size at least (the median is reported); small sizes get more",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=5.0,
        help="time allowed to each backend, device and dtype; larger sizes that would overrun it are skipped",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random matrices")
    _shared.add_plot_arguments(parser, "gemm_flops.png")
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.min_size <= arguments.max_size:
        parser.error("--min-size must be at least 1 and at most --max-size")
    if arguments.repeats < 1 or arguments.budget_seconds <= 0:
        parser.error("--repeats must be at least 1 and --budget-seconds positive")
    arguments.dtypes = _shared.requested_dtypes(parser, arguments.dtype)
    return arguments, _shared.requested_backend_names(parser, arguments.backends)


def sizes(arguments: argparse.Namespace) -> list[int]:
    """N from --min-size, doubling, up to --max-size."""
    found, size = [], arguments.min_size
    while size <= arguments.max_size:
        found.append(size)
        size *= 2
    return found


def cpu_model() -> str | None:
    """The processor's name as /proc/cpuinfo gives it (Linux), else None."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return None
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def placed_on(backend: portable_dl.Backend) -> Any:
    """Where the product runs. TensorFlow places an eager op on its preferred device (a GPU
    when it has one) whatever its inputs' device, so on TensorFlow the product is put on
    the backend's device explicitly; the other frameworks compute where their arrays live."""
    if backend.name == "tensorflow":
        import tensorflow as tf

        return tf.device(backend.device.upper())
    return contextlib.nullcontext()


@dataclass
class Series:
    """One backend, device and dtype: the median seconds per product at each size measured."""

    backend: portable_dl.Backend
    dtype: str
    seconds: dict[int, float] = field(default_factory=dict)
    skipped: str = ""  # why the larger sizes were not measured

    @property
    def label(self) -> str:
        return f"{self.backend.name} ({self.backend.device}, {self.dtype})"

    def gflops(self, size: int) -> float:
        return 2.0 * size**3 / self.seconds[size] / 1e9


def timed_product(backend: portable_dl.Backend, a: Any, b: Any) -> float:
    """Seconds for one ``xp.matmul(a, b)``, from synchronized start to computed result."""
    backend.synchronize((a, b))
    started = time.perf_counter()
    product = backend.xp.matmul(a, b)
    backend.synchronize(product)
    return time.perf_counter() - started


def measure(backend: portable_dl.Backend, dtype: str, arguments: argparse.Namespace) -> Series:
    """Time the products of every size within the budget; say why the others were skipped."""
    series = Series(backend, dtype)
    generator = np.random.default_rng(arguments.seed)
    spent = 0.0
    all_sizes = sizes(arguments)
    for index, size in enumerate(all_sizes):
        if series.seconds:
            last_size = max(series.seconds)
            # A product takes (size / last size)^3 times the last one's time; one warm-up, then
            # the repeats, or MIN_TIMED_SECONDS of them.
            product = series.seconds[last_size] * (size / last_size) ** 3
            predicted = product + max(arguments.repeats * product, MIN_TIMED_SECONDS)
            if spent + predicted > arguments.budget_seconds:
                skipped = ", ".join(map(str, all_sizes[index:]))
                series.skipped = (
                    f"N = {skipped} skipped: N = {size} would take about {predicted:.1f} s, "
                    f"beyond the {arguments.budget_seconds:g} s budget ({spent:.1f} s spent)"
                )
                break
        started = time.perf_counter()
        a = backend.asarray(generator.standard_normal((size, size)).astype(dtype))
        b = backend.asarray(generator.standard_normal((size, size)).astype(dtype))
        with placed_on(backend):
            warm_up = timed_product(backend, a, b)  # not reported: allocation, JAX's compilation of this shape
            repeats = max(arguments.repeats, min(MAX_REPEATS, int(MIN_TIMED_SECONDS / max(warm_up, 1e-9))))
            series.seconds[size] = statistics.median(timed_product(backend, a, b) for _ in range(repeats))
        spent += time.perf_counter() - started
    return series


def print_results(all_series: list[Series]) -> None:
    rows = [
        [s.backend.name, s.backend.device, s.dtype, size, f"{1e3 * s.seconds[size]:.4g}", f"{s.gflops(size):.1f}"]
        for s in all_series
        for size in sorted(s.seconds)
    ]
    print(_shared.format_table(["backend", "device", "dtype", "N", "median ms", "GFLOP/s"], rows, left_columns=3))
    for s in all_series:
        if s.skipped:
            print(f"{s.label}: {s.skipped}")


def best_rates(all_series: list[Series]) -> dict[str, tuple[float, str]]:
    """Per dtype: the best rate measured in this run, and who reached it at which N."""
    best: dict[str, tuple[float, str]] = {}
    for s in all_series:
        for size in s.seconds:
            if s.gflops(size) > best.get(s.dtype, (0.0, ""))[0]:
                best[s.dtype] = (s.gflops(size), f"{s.backend.name} on {s.backend.device}, N = {size}")
    return best


def plot(all_series: list[Series], arguments: argparse.Namespace) -> None:
    pyplot = _shared.load_pyplot()
    figure, axes = pyplot.subplots(figsize=(10, 6))
    styles = {"float32": "-", "float64": "--"}
    colors = {}
    for s in all_series:
        measured = sorted(s.seconds)
        if not measured:
            continue
        key = (s.backend.name, s.backend.device)
        colors.setdefault(key, f"C{len(colors) % 10}")
        axes.plot(
            measured,
            [s.gflops(size) for size in measured],
            styles[s.dtype],
            marker="o",
            color=colors[key],
            label=s.label,
        )
    for dtype, (rate, who) in best_rates(all_series).items():
        axes.axhline(
            rate,
            color="gray",
            linestyle=styles[dtype],
            linewidth=1,
            label=f"measured peak {dtype}: best rate in this run, {rate:.1f} GFLOP/s ({who})",
        )
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(sizes(arguments), [str(size) for size in sizes(arguments)])
    axes.set(
        xlabel="N (square matrices N x N, log 2 scale)",
        ylabel="GFLOP/s (2 N^3 / median time / 1e9, log scale)",
        title=f"C = A @ B with xp.matmul, median time; {os.cpu_count()} CPUs: {cpu_model() or 'unknown CPU'}",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    _shared.save_figure(figure, arguments.output)


def main(argv: list[str] | None = None) -> int:
    arguments, names = parse_arguments(argv)
    if not arguments.no_plot:
        _shared.load_pyplot()  # fail now, not after the work, when matplotlib is missing
    print(f"CPUs: os.cpu_count() = {os.cpu_count()}; model: {cpu_model() or 'not given by /proc/cpuinfo'}")
    print(
        f"N = {', '.join(map(str, sizes(arguments)))}; after one untimed product, the median of "
        f"{arguments.repeats} timed ones (more for small N, up to {MIN_TIMED_SECONDS:g} s); "
        f"budget {arguments.budget_seconds:g} s per backend, device and dtype",
        flush=True,
    )
    all_series = []
    for backend in _shared.create_backends(names, arguments.device):
        for dtype in arguments.dtypes:
            if not _shared.computing_in([backend], dtype):
                continue
            print(f"  timing {_shared.describe(backend)} in {dtype}...", flush=True)
            all_series.append(measure(backend, dtype, arguments))
    if not all_series:
        print("no backend to run", file=sys.stderr)
        return 1
    print()
    print_results(all_series)
    for dtype, (rate, who) in best_rates(all_series).items():
        print(f"measured peak {dtype}: {rate:.1f} GFLOP/s ({who}), the best rate any backend reached in this run")
    if not arguments.no_plot:
        plot(all_series, arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
