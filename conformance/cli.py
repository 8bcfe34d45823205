"""``portable-dl conformance``: run the suite on every installed backend and report.

Exit codes: 0 when every case that ran passed, 1 when any failed, 2 for a usage error
(an unknown backend or family, a bad flag, a --backend-module that cannot be imported, whose
factory raises or gives no Backend, a --data-dir that is no folder or holds a broken MNIST file).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import portable_dl
from portable_dl import registry

from . import report, runner
from .families import FAMILIES

#: The dtypes ``--dtype`` takes; the first two run unless it is given. Half precision runs
#: in the ops, gradients and broadcasting families (their cases skip elsewhere, saying so).
DTYPES = ("float32", "float64", "float16", "bfloat16")
DEFAULT_DTYPES = ("float32", "float64")


class UsageError(Exception):
    """A mistake in the command line: exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portable-dl conformance",
        description="Check that every installed backend computes the same forward values, gradients, "
        "broadcasting and optimizer trajectories as the NumPy float64 reference.",
    )
    parser.add_argument("--backends", default="all", help="comma-separated backend names, or 'all' (default: all)")
    parser.add_argument(
        "--backend-module",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help="also test the backend made by FACTORY(device=None) in MODULE (repeatable)",
    )
    parser.add_argument(
        "--dtype",
        type=dtype_list,
        action="append",
        metavar="DTYPES",
        help=f"comma-separated dtypes to run in, of {','.join(DTYPES)} (repeatable; default: float32,float64)",
    )
    parser.add_argument(
        "--family", default="all", help=f"comma-separated families: {','.join(FAMILIES)} (default: all)"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding MNIST for the training family "
        "(default: $PORTABLE_DL_DATA, then the cache folder; never downloaded here)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs and shapes (default: 0)")
    parser.add_argument("--quick", action="store_true", help="fewer cases and steps: a smoke test in seconds")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table", help="report format")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE (the table summary still prints)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="backends run at once, each in its own process (default: the number of CPUs; 1: in this process)",
    )
    parser.add_argument(
        "--case-timeout",
        type=float,
        default=runner.CASE_TIMEOUT,
        metavar="SECONDS",
        help=f"a case running longer fails as hung and the run goes on (default: {runner.CASE_TIMEOUT:g}; 0: no limit)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show every row, not only failures")
    return parser


def dtype_list(text: str) -> list[str]:
    """The dtypes of one ``--dtype`` value, ``"float16,bfloat16"``; argparse turns the
    ArgumentTypeError into a usage error (exit code 2) naming the unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown dtype {', '.join(repr(name) for name in unknown) or repr(text)}; dtypes: {', '.join(DTYPES)}"
        )
    return names


def selected_dtypes(arguments: argparse.Namespace) -> list[str]:
    """The dtypes of every ``--dtype`` given, in order and once each; float32 and float64
    when none is."""
    return list(dict.fromkeys(name for names in arguments.dtype or [DEFAULT_DTYPES] for name in names))


def load_backend_module(spec: str) -> str:
    """Register the backend of a ``--backend-module`` (see
    :func:`portable_dl.registry.load_backend_module`); a usage error when it gives none."""
    try:
        return registry.load_backend_module(spec)
    except registry.BackendModuleError as error:
        raise UsageError(f"--backend-module {error}") from error


def select_backends(requested: str, extra: list[str]) -> list[str]:
    known = portable_dl.known_backends()
    if requested == "all":
        names = [name for name in known if name not in extra]
    else:
        names = [name.strip() for name in requested.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UsageError(f"unknown backend {', '.join(unknown)}; known backends: {', '.join(known)}")
    return list(dict.fromkeys(names + extra))


def select_families(requested: str) -> list[str]:
    if requested == "all":
        return list(FAMILIES)
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise UsageError(f"unknown family {', '.join(unknown)}; families: {', '.join(FAMILIES)}")
    return names


def check_data(data_dir: str | None, families: list[str]) -> None:
    """A --data-dir that is no folder, or a broken MNIST file where the training family
    would read it, is a usage error, found here before any worker starts."""
    if data_dir is not None and not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir}: no such folder")
    if "training" not in families and "precision" not in families:  # both train on MNIST
        return
    from portable_dl.data import DataError

    from . import training

    training.data_dir = data_dir
    try:
        training.training_data(training.data_root())
    except DataError as error:
        raise UsageError(f"the training family's data: {' '.join(str(error).split())}") from error


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        extra = [load_backend_module(spec) for spec in arguments.backend_module]
        names = select_backends(arguments.backends, extra)
        families = select_families(arguments.family)
        check_data(arguments.data_dir, families)
    except UsageError as error:
        print(f"portable-dl conformance: error: {error}", file=sys.stderr)
        return 2
    dtypes = selected_dtypes(arguments)

    jobs = arguments.jobs if arguments.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        print("portable-dl conformance: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    # The suite provokes errors on purpose (shapes that must not broadcast); TensorFlow's
    # C++ runtime logs a warning line for each, and its start-up lines besides, which would
    # bury the table. Unless -v is given or the user set TensorFlow's log level, this process
    # logs warnings only and the worker processes' native logs are dropped.
    quiet_workers = not arguments.verbose and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if not arguments.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _progress_bar(len(names)) as bar:
        runs = runner.run_backends(
            names,
            jobs,
            progress=bar.update,
            families=families,
            quick=arguments.quick,
            seed=arguments.seed,
            dtypes=dtypes,
            backend_modules=arguments.backend_module,
            data_dir=arguments.data_dir,
            case_timeout=arguments.case_timeout or None,
            quiet_workers=quiet_workers,
        )
    notes = [run.note for run in runs]
    results = [result for run in runs for result in run.results]

    settings = {
        "backends": names,
        "dtypes": dtypes,
        "families": families,
        "seed": arguments.seed,
        "quick": arguments.quick,
    }
    summary = report.table(results, verbose=arguments.verbose, backend_notes=notes)
    if arguments.format == "table":
        text = summary + "\n"
    elif arguments.format == "json":
        text = report.to_json(results, settings, notes)
    else:
        text = report.markdown(results, notes)
    if arguments.output:
        with open(arguments.output, "w", encoding="utf-8") as file:
            file.write(text)
        print(summary)
        print(f"report written to {arguments.output}")
    else:
        sys.stdout.write(text)
    return report.exit_code(results)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        pass


def _progress_bar(total: int):
    """A tqdm bar over the backends on standard error when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="backend", file=sys.stderr, leave=False)


if __name__ == "__main__":
    sys.exit(main())
