"""Running cases on backends and collecting one result per (case, backend, dtype)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

import portable_dl
from portable_dl.backend import Backend

from . import tolerances
from .cases import Case, CaseSkipped, Outputs
from .compare import compare_outputs
from .half_reference import overflowed, rounding_backend

REFERENCE_BACKEND = "numpy"
REFERENCE_DTYPE = "float64"

#: Seconds one case may run on one backend in one dtype before it fails as hung
#: (``--case-timeout``). The slowest cases (torch.compile's four compilations in the compile
#: family, MLX's 40 compiled float64 training steps) take 10 to 20 s on an idle 2-core
#: machine and passed 60 s with that machine five times oversubscribed: 300 s still stops
#: a hang within minutes without failing a slow machine's honest case.
CASE_TIMEOUT = 300.0


class CaseTimedOut(BaseException):
    """Raised inside a case that ran past its time. A BaseException, so that a case's own
    ``except Exception`` (which records errors as outputs) cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`CaseTimedOut` in the block after ``seconds``, by ``SIGALRM``.

    Works in the main thread of a process on POSIX systems, which is where cases run (in
    this process with ``--jobs 1``, in each worker's main thread otherwise): a case sleeping,
    waiting or looping in Python is interrupted. Elsewhere (Windows, another thread) the
    block runs without a limit. Code blocked inside a C extension that never returns to
    Python is interrupted only when it does.
    """
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CaseTimedOut(f"timed out after {seconds:g} s (--case-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Result:
    """One row of the report."""

    case: str
    family: str
    backend: str
    device: str
    dtype: str
    status: str  # "pass", "fail" or "skip"
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    tolerance: float | None = None
    message: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class Reference:
    """The NumPy backend's outputs, computed once per (case, dtype) and kept."""

    def __init__(self) -> None:
        self.backend = portable_dl.backend(REFERENCE_BACKEND)
        self._outputs: dict[tuple[str, str], Outputs | Exception] = {}
        self._finite_differences: dict[str, Outputs] = {}

    def outputs(self, case: Case, dtype: str, inputs_rounded_to: str | None = None) -> Outputs:
        """``case`` on the reference backend in ``dtype``; with ``inputs_rounded_to`` (a
        half dtype), on inputs rounded to it first (:mod:`.half_reference`)."""
        key = (case.id, dtype) if inputs_rounded_to is None else (case.id, f"{dtype} from {inputs_rounded_to}")
        if key not in self._outputs:
            backend = self.backend if inputs_rounded_to is None else rounding_backend(self.backend, inputs_rounded_to)
            try:
                # edge inputs: NaN and inf are the point
                with np.errstate(all="ignore"), portable_dl.using(backend):
                    outputs = case.compute(backend, dtype)
                self._outputs[key] = outputs if inputs_rounded_to is None else overflowed(outputs, inputs_rounded_to)
            except Exception as error:
                self._outputs[key] = error
        value = self._outputs[key]
        if isinstance(value, CaseSkipped):
            raise value
        if isinstance(value, Exception):
            raise RuntimeError(f"the reference itself failed on {case.id} in {dtype}: {value!r}") from value
        return value

    def numeric(self, case: Case, dtype: str) -> Outputs:
        """What numeric outputs of ``case`` in ``dtype`` are judged against."""
        if case.independent_reference is not None:
            key = (case.id, "independent")
            if key not in self._outputs:
                self._outputs[key] = case.independent_reference()
            return self._outputs[key]
        if case.reference_dtype != "float64":
            return self.outputs(case, dtype)
        return self.outputs(case, REFERENCE_DTYPE, dtype if dtype in tolerances.HALF_DTYPES else None)

    def finite_differences(self, case: Case) -> Outputs:
        if case.id not in self._finite_differences:
            self._finite_differences[case.id] = case.finite_differences()
        return self._finite_differences[case.id]


def run_case(
    case: Case, backend: Backend, dtype: str, reference: Reference, timeout: float | None = CASE_TIMEOUT
) -> Result:
    """Run ``case`` on ``backend`` in ``dtype`` and judge it against ``reference``; a case
    (with its reference) running past ``timeout`` seconds fails as hung."""
    started = time.perf_counter()
    try:
        with time_limit(timeout):
            return _run_case(case, backend, dtype, reference)
    except CaseTimedOut as timed_out:
        return Result(
            case=case.name,
            family=case.family,
            backend=backend.name,
            device=backend.device,
            dtype=dtype,
            status="fail",
            message=str(timed_out),
            seconds=time.perf_counter() - started,
        )


def _run_case(case: Case, backend: Backend, dtype: str, reference: Reference) -> Result:
    row = dict(case=case.name, family=case.family, backend=backend.name, device=backend.device, dtype=dtype)
    if dtype not in case.dtypes:
        note = f": {case.dtype_note}" if case.dtype_note else ""
        return Result(**row, status="skip", message=f"the case is defined for {', '.join(case.dtypes)} only{note}")
    if not backend.supports(dtype):
        return Result(**row, status="skip", message=f"{backend.name} on {backend.device} does not support {dtype}")
    try:
        if case.expected is not None:
            expected_exact = expected_numeric = case.expected(backend, dtype)
        else:
            expected_exact = reference.outputs(case, dtype)
            expected_numeric = reference.numeric(case, dtype)
    except CaseSkipped as skipped:  # the case cannot run here at all
        return Result(**row, status="skip", message=str(skipped))
    except Exception as error:  # a broken case or reference fails its rows, not the run
        return Result(**row, status="fail", message=f"no reference: {type(error).__name__}: {error}"[:500])
    started = time.perf_counter()
    try:
        # The backend under test answers backend_of for its arrays, whatever other backend
        # owning the same array type (the reference, a built-in one) this process created.
        with np.errstate(all="ignore"), portable_dl.using(backend):
            actual = case.compute(backend, dtype)
    except CaseSkipped as skipped:
        return Result(**row, status="skip", message=str(skipped))
    except Exception as error:
        return Result(
            **row,
            status="fail",
            message=f"raised {type(error).__name__}: {error}"[:500],
            seconds=time.perf_counter() - started,
        )
    seconds = time.perf_counter() - started
    tolerance = tolerances.value_tolerance(dtype, case.reduction_size, case.gradient, case.steps)
    comparisons = [
        compare_outputs(
            actual,
            expected_numeric,
            expected_exact,
            tolerance,
            elementwise=case.elementwise,
            dtype=dtype,
            zero_sign=case.zero_sign,
            against="expected" if case.expected is not None else "reference",
        )
    ]
    # Finite differences check the reference's formulas, once per case, at the unrounded
    # inputs; a half-precision run is judged against the reference on its rounded inputs.
    if case.finite_differences is not None and dtype not in tolerances.HALF_DTYPES:
        differences = reference.finite_differences(case)
        gradients = {name: value for name, value in actual.items() if name in differences}
        fd_tolerance = tolerances.finite_difference_tolerance(dtype, case.reduction_size)
        comparisons.append(
            compare_outputs(gradients, differences, differences, fd_tolerance, "against finite differences: ")
        )
    failed = [c for c in comparisons if not c.passed]
    # Report the failure, or else the comparison closest to its tolerance.
    comparison = failed[0] if failed else max(comparisons, key=lambda c: c.max_rel_error / c.tolerance)
    return Result(
        **row,
        status="pass" if comparison.passed else "fail",
        max_abs_error=comparison.max_abs_error,
        max_rel_error=comparison.max_rel_error,
        tolerance=comparison.tolerance,
        message=comparison.message,
        seconds=seconds,
    )


def run(
    cases: Sequence[Case],
    backends: Iterable[Backend],
    dtypes: Sequence[str],
    progress: Callable[[int], None] | None = None,
    timeout: float | None = CASE_TIMEOUT,
) -> list[Result]:
    """Every case on every backend in every dtype; ``progress(n)`` after each n results."""
    reference = Reference()
    results = []
    for backend in backends:
        for case in cases:
            for dtype in dtypes:
                results.append(run_case(case, backend, dtype, reference, timeout))
                if progress:
                    progress(1)
    return results


# ------------------------------------------------------------ one backend, anywhere

#: Backends in the order their runs are started when several run at once: the slowest
#: first (JAX compiles every eager operation on a new shape; torch.compile's Inductor takes
#: seconds per graph), so that they overlap most. Measured: torch before TensorFlow takes a
#: --quick run from 20-23 s to 18-19 s on 2 cores.
EXPECTED_COST_ORDER = ("jax", "torch", "tensorflow", "mlx", "numpy")

#: Backends whose run is dominated by compiling, not by importing the framework: JAX
#: compiles every eager operation the first time it meets a shape (about 40 ms each here),
#: which makes its run alone longer than all the others together. Their families run as
#: separate work units, so that the workers share them; any other backend runs as one
#: unit, so that no second worker pays for importing its framework (TensorFlow: 4 s).
SPLIT_BY_FAMILY = ("jax",)

#: Families in the order their units are started: the costliest first (on JAX: the
#: gradients, then the training run).
FAMILY_COST_ORDER = ("gradients", "training", "compile", "broadcasting", "ops", "optimizers")


@dataclass
class BackendRun:
    """What running every case on one backend gives: the note for the report, the rows."""

    note: dict
    results: list


def run_backend(
    name: str,
    families: Sequence[str],
    quick: bool,
    seed: int,
    dtypes: Sequence[str],
    backend_modules: Sequence[str] = (),
    data_dir: str | None = None,
    case_timeout: float | None = CASE_TIMEOUT,
) -> BackendRun:
    """Create backend ``name`` and run the cases of ``families`` on it.

    Self-contained, so that it can run in a worker process: it registers the
    ``--backend-module`` backends and builds the cases itself (cases hold functions, which
    do not cross process boundaries; the same families, quick flag and seed give the same
    cases).
    """
    from portable_dl.errors import BackendUnavailable
    from portable_dl.registry import load_backend_module

    from . import training
    from .families import collect_cases

    for spec in backend_modules:
        load_backend_module(spec)
    training.data_dir = data_dir
    if name == "jax":
        use_jax_compilation_cache()
    try:
        backend = portable_dl.backend(name)
    except BackendUnavailable as error:
        return BackendRun({"name": name, "available": False, "version": None, "device": None, "reason": str(error)}, [])
    except Exception as error:  # a broken backend fails its run; the others still run
        return failed_run(name, families, dtypes, f"creating the backend raised {type(error).__name__}: {error}")
    cases = collect_cases(list(families), quick=quick, seed=seed)
    results = run(cases, [backend], dtypes, timeout=case_timeout)
    note = {"name": name, "available": True, "version": backend.version, "device": backend.device, "reason": None}
    return BackendRun(note, results)


def failed_run(name: str, families: Sequence[str], dtypes: Sequence[str], reason: str) -> BackendRun:
    """The run of a backend that could not run at all: one failing row per family and
    dtype, so that the exit code says so and the report names why."""
    reason = " ".join(reason.split())[:500]
    note = {"name": name, "available": False, "version": None, "device": None, "reason": reason}
    rows = [
        Result(case="(every case)", family=family, backend=name, device="-", dtype=dtype, status="fail", message=reason)
        for family in families
        for dtype in dtypes
    ]
    return BackendRun(note, rows)


def use_jax_compilation_cache() -> None:
    """Keep JAX's compiled operations on disk between runs of the suite.

    JAX compiles every eager operation the first time it meets a shape (about 35 ms each
    on this CPU, 50 of them for one cross-entropy gradient): most of a run's time. With
    the persistent cache a second run takes a third of the first. Set through JAX's own
    environment variables, before JAX is imported, in the suite's process only; a value
    the user set wins. The cache lives in ``~/.cache/portable_dl/jax-compilation``.
    """
    cache = os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "portable_dl", "jax-compilation"
    )
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", cache)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def run_backends(
    names: Sequence[str],
    jobs: int,
    progress: Callable[[int], None] | None = None,
    *,
    families: Sequence[str],
    quiet_workers: bool = False,
    **settings,
) -> list[BackendRun]:
    """:func:`run_backend` for each name, in ``jobs`` worker processes (in this process
    when ``jobs`` is 1); the runs come back in the order of ``names``, their rows in the
    order of ``families``, and ``progress(1)`` is called as each backend finishes.

    ``quiet_workers``: the workers' standard error goes to the null device, where the
    frameworks' native start-up logs would otherwise bury the table (TensorFlow 2.21 writes
    its oneDNN lines through absl before any log level applies). Nothing is lost: a worker's
    results and exceptions come back to this process, which reports them."""
    if jobs <= 1 or len(names) <= 1:
        runs = []
        for name in names:
            runs.append(run_backend(name, families=families, **settings))
            if progress:
                progress(1)
        return runs
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    units = work_units(names, families)
    # spawn, not fork: frameworks with thread pools (TensorFlow, XLA, MLX) do not survive a fork.
    context = multiprocessing.get_context("spawn")
    initializer = _silence_standard_error if quiet_workers else None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=initializer) as pool:
        futures = [
            (name, pool.submit(run_backend, name, families=unit_families, **settings)) for name, unit_families in units
        ]
        parts: dict[str, list[BackendRun]] = {name: [] for name in names}
        for (name, future), (_, unit_families) in zip(futures, units):
            try:
                parts[name].append(future.result())
            except Exception as error:  # a worker that died (a crash in native code) fails its unit only
                reason = f"the worker process failed: {type(error).__name__}: {error}"
                parts[name].append(failed_run(name, unit_families, settings.get("dtypes", ()), reason))
            if progress and len(parts[name]) == sum(1 for unit_name, _ in units if unit_name == name):
                progress(1)
    return [_joined(parts[name], families) for name in names]


def _silence_standard_error() -> None:
    """Point this process's file descriptor 2 at the null device (native code writes there
    directly, so replacing ``sys.stderr`` alone would not do)."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)


def work_units(names: Sequence[str], families: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``(backend name, families)`` pairs, the costliest expected first: one pair per
    backend, or one per family for the backends of :data:`SPLIT_BY_FAMILY`."""

    def backend_rank(name: str) -> int:
        return EXPECTED_COST_ORDER.index(name) if name in EXPECTED_COST_ORDER else -1  # unknown: first

    def family_rank(family: str) -> int:
        return FAMILY_COST_ORDER.index(family) if family in FAMILY_COST_ORDER else -1

    units = []
    for name in sorted(names, key=backend_rank):
        if name in SPLIT_BY_FAMILY and len(families) > 1:
            units.extend((name, [family]) for family in sorted(families, key=family_rank))
        else:
            units.append((name, list(families)))
    return units


def _joined(parts: list[BackendRun], families: Sequence[str]) -> BackendRun:
    """One backend's run from its units' runs, with the rows in the order of ``families``."""
    rows = [row for part in parts for row in part.results]
    rows.sort(key=lambda row: list(families).index(row.family) if row.family in families else len(families))
    return BackendRun(parts[0].note, rows)
