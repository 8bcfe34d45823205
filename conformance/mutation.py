"""Mutation testing of the conformance suite: does it fail on every planted fault?

Each mutant of :mod:`.mutants` is run exactly as a third-party backend would be:
``portable-dl conformance --backends <mutant> --backend-module <its factory>``, the NumPy
backend being the reference. The suite must exit 1 with at least one failing row of the
mutant; the harness records which cases failed. A run that exits 0 is a survivor; one
that exits otherwise (2: the mutant could not be loaded) or outlives ``--timeout`` is an
error, never counted as caught.

Every mutant runs in its own fresh interpreter (a spawned child process), so no state of
one mutant (a registered backend, a cache, a traced function) leaks into another, and a
hanging run is killed at its time limit; ``--jobs`` children run at once.

    python -m portable_dl.conformance.mutation [--quick] [--full] [--jobs N] [--only NAMES]
                                               [--family F] [--timeout S] [--format json]

With neither ``--quick`` nor ``--full`` both modes run. Exit code 0 when every mutant run
was caught, 1 when one survived or errored, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from .mutants import CONTROL, MUTANTS, spec

SCHEMA = "portable-dl/mutation/1"

#: Seconds one mutant's run may take before it is killed (a full run takes about 10 s).
DEFAULT_TIMEOUT = 300.0


@dataclass
class MutantRun:
    """What running the suite against one mutant in one mode gave."""

    mutant: str
    category: str
    description: str
    mode: str  # "quick" or "full"
    status: str  # "caught", "survived" or "error"
    exit_code: int | None = None
    #: the failing cases, as ``family/case [dtype]``, in the order the suite ran them
    caught_by: list[str] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    #: the message of each failing case, by the same names as ``caught_by``
    messages: dict[str, str] = field(default_factory=dict)

    @property
    def caught(self) -> bool:
        return self.status == "caught"

    def caught_case_ids(self) -> set[str]:
        """The failing cases as ``family/case``, without the dtype."""
        return {entry.rsplit(" [", 1)[0] for entry in self.caught_by}


def command(name: str, quick: bool, families: Sequence[str] | None, output: str) -> list[str]:
    """The conformance command line that tests mutant ``name``."""
    arguments = [
        sys.executable,
        "-m",
        "portable_dl.conformance",
        "--backends",
        name,
        "--backend-module",
        spec(name),
        "--jobs",
        "1",
        "--format",
        "json",
        "--output",
        output,
    ]
    if quick:
        arguments.append("--quick")
    if families:
        arguments += ["--family", ",".join(families)]
    return arguments


def run_mutant(
    name: str, quick: bool = False, families: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> MutantRun:
    """Run the suite against mutant ``name`` in a child process; say whether it was caught and by what."""
    if name == CONTROL:
        category, description = "control", "the NumPy backend unchanged"
    else:
        category, description = MUTANTS[name].category, MUTANTS[name].description
    run = MutantRun(name, category, description, "quick" if quick else "full", "error")
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    with tempfile.TemporaryDirectory(prefix="portable-dl-mutation-") as folder:
        output = os.path.join(folder, "report.json")
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                command(name, quick, families, output),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=environment,
                check=False,
            )
        except subprocess.TimeoutExpired:
            run.seconds = time.perf_counter() - started
            run.message = f"timed out after {timeout:g} s"
            return run
        run.seconds = time.perf_counter() - started
        run.exit_code = completed.returncode
        if completed.returncode not in (0, 1) or not os.path.exists(output):
            last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            run.message = f"exit {completed.returncode}: {last_line}"[:300]
            return run
        with open(output, encoding="utf-8") as file:
            results = json.load(file)["results"]
    failing = [row for row in results if row["backend"] == name and row["status"] == "fail"]
    run.caught_by = [f"{row['family']}/{row['case']} [{row['dtype']}]" for row in failing]
    run.messages = messages = {f"{row['family']}/{row['case']} [{row['dtype']}]": row["message"] for row in failing}
    if completed.returncode == 1 and failing:
        run.status = "caught"
        run.message = messages[run.caught_by[0]][:200]
    elif completed.returncode == 0:
        run.status = "survived"
    else:
        run.message = "exit 1 without a failing row of the mutant"
    return run


def judge(run: MutantRun, control: MutantRun | None) -> MutantRun:
    """``run`` credited only with the cases that pass on the control: a case failing on the
    fault-free backend too says nothing about the mutant."""
    if control is None or run.status != "caught":
        return run
    innocent = set(control.caught_by)
    credited = [case for case in run.caught_by if case not in innocent]
    if len(credited) != len(run.caught_by):
        run.caught_by = credited
        if credited:
            run.message = run.messages.get(credited[0], "")[:200]
        else:
            run.status, run.message = "survived", "failed only cases that fail on the control too"
    return run


def run_all(
    names: Sequence[str],
    modes: Sequence[str],
    jobs: int,
    families: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[MutantRun], None] | None = None,
) -> tuple[list[MutantRun], dict[str, MutantRun]]:
    """Every mutant of ``names`` in every mode of ``modes``, ``jobs`` at once, and the
    control in each mode; returns the mutants' runs (judged against the control, ordered by
    mode, then by ``names``) and the control's run per mode."""
    work = [(CONTROL, mode) for mode in modes] + [(name, mode) for mode in modes for name in names]
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:  # threads only wait on the child processes
        futures = [pool.submit(run_mutant, name, mode == "quick", families, timeout) for name, mode in work]
        runs = []
        for future in futures:
            runs.append(future.result())
            if progress:
                progress(runs[-1])
    controls = {run.mode: run for run in runs[: len(modes)]}
    return [judge(run, controls[run.mode]) for run in runs[len(modes) :]], controls


def score(runs: Sequence[MutantRun], mode: str) -> tuple[int, int]:
    """(caught, total) among the runs of ``mode``."""
    chosen = [run for run in runs if run.mode == mode]
    return sum(run.caught for run in chosen), len(chosen)


def control_notes(controls: dict[str, MutantRun]) -> list[str]:
    """Lines warning about a control that did not pass cleanly."""
    notes = []
    for mode, control in controls.items():
        if control.status == "caught":
            notes.append(
                f"warning: {len(control.caught_by)} case(s) fail on the fault-free control in {mode} mode "
                f"and are credited with nothing: {', '.join(control.caught_by[:5])}"
            )
        elif control.status == "error":
            notes.append(
                f"warning: the control could not run in {mode} mode ({control.message}); nothing is discounted"
            )
    return notes


def table(runs: Sequence[MutantRun], modes: Sequence[str]) -> str:
    """One line per mutant: its category and, per mode, the first case that caught it."""
    by_key = {(run.mutant, run.mode): run for run in runs}
    names = list(dict.fromkeys(run.mutant for run in runs))
    width = max(len(name) for name in names) + 2
    lines = [f"{'mutant':<{width}}{'category':<24}" + "".join(f"{mode:<60}" for mode in modes)]
    for name in names:
        cells = []
        for mode in modes:
            run = by_key[(name, mode)]
            if run.caught:
                first = run.caught_by[0]
                more = f" (+{len(run.caught_by) - 1})" if len(run.caught_by) > 1 else ""
                cells.append(f"caught by {first}{more}"[:58])
            else:
                cells.append(f"{run.status.upper()} {run.message}"[:58])
        lines.append(f"{name:<{width}}{MUTANTS[name].category:<24}" + "".join(f"{cell:<60}" for cell in cells))
    lines.append("")
    for mode in modes:
        caught, total = score(runs, mode)
        lines.append(f"mutation score, {mode}: {caught}/{total} caught ({100.0 * caught / max(total, 1):.1f}%)")
    survivors = [run for run in runs if not run.caught]
    if survivors:
        lines.append("")
        lines.append("not caught:")
        lines += [f"  {run.mode:<6}{run.mutant}: {run.description} [{run.status}]" for run in survivors]
    return "\n".join(lines)


def document(
    runs: Sequence[MutantRun], modes: Sequence[str], settings: dict, controls: dict[str, MutantRun] | None = None
) -> dict:
    """The JSON report: settings, the score per mode, the control's runs and one row per (mutant, mode)."""
    scores = {}
    for mode in modes:
        caught, total = score(runs, mode)
        scores[mode] = {"caught": caught, "total": total, "score": caught / max(total, 1)}
    return {
        "schema": SCHEMA,
        "settings": settings,
        "score": scores,
        "control": {mode: asdict(run) for mode, run in (controls or {}).items()},
        "runs": [asdict(run) for run in runs],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m portable_dl.conformance.mutation",
        description="Run the conformance suite against every planted-fault backend and report which cases caught each.",
    )
    parser.add_argument("--quick", action="store_true", help="run the suite in --quick mode")
    parser.add_argument("--full", action="store_true", help="run the full suite (default: both modes)")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, metavar="N", help="mutants run at once (default: CPUs)"
    )
    parser.add_argument("--only", default="", metavar="NAMES", help="comma-separated mutants (default: all)")
    parser.add_argument("--family", default="", metavar="F", help="comma-separated families to run (default: all)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds one mutant's run may take (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE (the score still prints)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.list:
        for name, mutant in MUTANTS.items():
            print(f"{name:<42}{mutant.category:<24}{mutant.description}")
        return 0
    names = [name.strip() for name in arguments.only.split(",") if name.strip()] or list(MUTANTS)
    unknown = [name for name in names if name not in MUTANTS]
    if unknown:
        print(f"mutation: error: unknown mutant {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    if arguments.jobs < 1 or arguments.timeout <= 0:
        print("mutation: error: --jobs and --timeout must be positive", file=sys.stderr)
        return 2
    modes = [mode for mode, chosen in (("quick", arguments.quick), ("full", arguments.full)) if chosen] or [
        "quick",
        "full",
    ]
    families = [f.strip() for f in arguments.family.split(",") if f.strip()] or None

    started = time.perf_counter()
    done = []

    def progress(run: MutantRun) -> None:
        done.append(run)
        if sys.stderr.isatty():
            print(f"\r{len(done)}/{(len(names) + 1) * len(modes)} runs", end="", file=sys.stderr, flush=True)

    runs, controls = run_all(names, modes, arguments.jobs, families, arguments.timeout, progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    seconds = time.perf_counter() - started
    summary = "\n".join(
        [
            table(runs, modes),
            "",
            *control_notes(controls),
            f"{len(runs) + len(controls)} runs in {seconds:.0f} s with {arguments.jobs} jobs",
        ]
    )
    settings = {
        "mutants": names,
        "modes": modes,
        "families": families or "all",
        "jobs": arguments.jobs,
        "timeout": arguments.timeout,
        "seconds": round(seconds, 1),
    }
    text = (
        json.dumps(document(runs, modes, settings, controls), indent=2) + "\n"
        if arguments.format == "json"
        else summary + "\n"
    )
    if arguments.output:
        with open(arguments.output, "w", encoding="utf-8") as file:
            file.write(text)
        print(summary)
    else:
        sys.stdout.write(text)
    return 0 if all(run.caught for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
