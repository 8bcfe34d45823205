"""The ``portable-dl`` command (also ``python -m portable_dl``).

Three subcommands: ``backends`` lists every known backend with its framework version and
devices, or why it is unavailable; ``conformance`` runs the conformance suite (it parses
its own options: ``portable-dl conformance --help``); ``data mnist`` downloads MNIST and
verifies it. Exit status: 0 done, 1 a failure (a download that failed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .registry import BackendInfo, backend_info, known_backends

DESCRIPTION = """\
portable_dl runs a model, its loss and its optimizer, written once against the Python array
API standard, on NumPy, PyTorch, TensorFlow, MLX and JAX. This command lists those backends,
checks that every installed one computes what the NumPy float64 reference computes, and
fetches the data that check and the examples train on."""

EPILOG = """\
examples:
  portable-dl backends                  the installed frameworks, their versions and devices
  portable-dl data mnist                download MNIST into the cache folder, verified
  portable-dl conformance               check every installed backend (about a minute)
  portable-dl conformance --quick       a faster, smaller check
  portable-dl conformance --help        the suite's own options
  portable-dl launch -n 2 train.py      a data-parallel run of two local processes"""

#: Seconds a backend's probe process may take (importing TensorFlow takes several).
PROBE_TIMEOUT = 180.0
#: The line a probe process prints its answer on, whatever the framework printed before.
_PROBE_MARK = "portable-dl-probe: "


# ------------------------------------------------------------------ backends
def probe_backends(names: Sequence[str] | None = None) -> list[BackendInfo]:
    """What :func:`portable_dl.available_backends` reports, each backend probed in its own process.

    Importing the frameworks is nearly all the time this takes (TensorFlow alone several
    seconds); separate processes import them side by side, on as many cores as there are,
    where one process would import them one after the other. Each process creates its
    backend exactly as ``portable_dl.backend(name)`` does, so the answer is as truthful. Only
    entry-point backends are seen (``register_backend`` lives in one process).
    """
    names = known_backends() if names is None else list(names)
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        return list(pool.map(_probe_in_subprocess, names))


def _probe_in_subprocess(name: str) -> BackendInfo:
    environment = dict(os.environ)
    # TensorFlow's C++ runtime logs start-up lines, some before it reads TF_CPP_MIN_LOG_LEVEL
    # (oneDNN's note), so the probe's standard error is captured, and shown only when the
    # probe fails. A level the user set asks for the log: it is passed through then.
    user_wants_logs = "TF_CPP_MIN_LOG_LEVEL" in os.environ
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, "-c", "from portable_dl.cli import _probe_main; _probe_main()", name]
    try:
        finished = subprocess.run(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return BackendInfo(name, False, reason=f"probing it took longer than {PROBE_TIMEOUT:.0f} s")
    if user_wants_logs and finished.stderr:
        sys.stderr.write(finished.stderr)
    answers = [line[len(_PROBE_MARK) :] for line in finished.stdout.splitlines() if line.startswith(_PROBE_MARK)]
    if finished.returncode != 0 or not answers:
        last = (finished.stderr.strip().splitlines() or ["no output"])[-1]
        return BackendInfo(name, False, reason=f"probing it ended with exit status {finished.returncode}: {last}")
    fields = json.loads(answers[-1])
    fields["devices"] = tuple(fields["devices"])
    return BackendInfo(**fields)


def _probe_main() -> None:
    """In a probe process: print the BackendInfo of the backend named by ``sys.argv[1]``."""
    info = dataclasses.asdict(backend_info(sys.argv[1]))
    print(_PROBE_MARK + json.dumps(info), flush=True)


def backends_table(infos: Sequence[BackendInfo] | None = None) -> str:
    """The table of backends as text, one row per backend (default: every backend, probed)."""
    rows = [("backend", "available", "version", "devices", "note")]
    for info in probe_backends() if infos is None else infos:
        rows.append(
            (
                info.name,
                "yes" if info.available else "no",
                info.version or "-",
                ", ".join(info.devices) or "-",
                info.reason or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths)]
        lines.append("  ".join(cells + [row[4]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------ data
def download_mnist_command(directory: str | None, timeout: float, mirrors: Sequence[str] | None = None) -> int:
    """``portable-dl data mnist``: put MNIST, verified, in ``directory`` or the cache folder;
    from ``mirrors`` when given, else from :data:`portable_dl.data.MNIST_MIRRORS`."""
    from .data import MNIST_MIRRORS, DatasetNotFound, default_cache_dir, download_mnist

    destination = directory or str(default_cache_dir())
    print(f"MNIST into {destination}", flush=True)
    try:
        download_mnist(
            destination,
            mirrors=mirrors or MNIST_MIRRORS,
            timeout=timeout,
            report=lambda line: print(f"  {line}", flush=True),
        )
    except DatasetNotFound as error:
        print(f"portable-dl data mnist: {error}", file=sys.stderr)
        return 1
    if directory is None:
        print("Done: load_mnist(), the examples and `portable-dl conformance` find it there by themselves.")
    else:
        print(
            f"Done: set PORTABLE_DL_DATA={destination} (or pass --data-dir {destination} to the examples and "
            f"`portable-dl conformance`, root= to load_mnist) to use it."
        )
    return 0


# ------------------------------------------------------------------ launch
def add_launch_parser(commands: argparse._SubParsersAction) -> None:
    """``portable-dl launch -n N [--backend NAME] script.py [args]`` (:mod:`portable_dl.distributed.launch`)."""
    launch = commands.add_parser(
        "launch",
        help="run a data-parallel script as N local processes: portable-dl launch -n 2 script.py [args]",
        description="Run SCRIPT as N local processes (ranks) of one data-parallel run, each with the "
        "environment torch.distributed, mlx.distributed, jax.distributed and TensorFlow expect, on "
        "127.0.0.1. Output lines are prefixed by the rank; when a rank fails, the others are stopped "
        "and the exit code is that rank's.",
    )
    launch.add_argument("-n", "--nproc", type=int, required=True, metavar="N", help="number of processes")
    launch.add_argument("--backend", default=None, metavar="NAME", help="passed to the script as PORTABLE_DL_BACKEND")
    launch.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="after a rank fails, how long the others may take to stop on their own (default: 10)",
    )
    launch.add_argument("script", metavar="SCRIPT", help="the Python script to run")
    launch.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="its arguments")


def launch_command(arguments: argparse.Namespace) -> int:
    from .distributed.launch import launch

    if arguments.nproc < 1:
        print(f"portable-dl launch: -n must be at least 1, got {arguments.nproc}", file=sys.stderr)
        return 2
    if arguments.backend is not None and arguments.backend not in known_backends():
        print(
            f"portable-dl launch: unknown backend {arguments.backend}; known backends: {', '.join(known_backends())}",
            file=sys.stderr,
        )
        return 2
    return launch(
        arguments.nproc, [arguments.script, *arguments.args], backend=arguments.backend, grace=arguments.grace
    )


# ------------------------------------------------------------------ the command
def build_parser() -> argparse.ArgumentParser:
    """The parser of ``portable-dl`` (``conformance``'s own options are its own parser's)."""
    parser = argparse.ArgumentParser(
        prog="portable-dl", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    backends = commands.add_parser(
        "backends",
        help="list every known backend: its framework version and devices, or why it is unavailable",
        description="List every known backend: its framework version and devices, or why it is unavailable "
        "(each backend is probed in a process of its own, side by side).",
    )
    backends.add_argument("names", nargs="*", metavar="NAME", help="only these backends (default: every known one)")
    commands.add_parser(
        "conformance",
        add_help=False,
        help="check that every installed backend computes what the NumPy float64 reference computes: "
        "forward values, gradients, broadcasting, optimizers, training (its own options: "
        "portable-dl conformance --help)",
    )
    add_launch_parser(commands)
    data = commands.add_parser(
        "data",
        help="download a data set and verify it: portable-dl data mnist [--dir DIR]",
        description="Download a data set and verify it against its published SHA-256 sums.",
    )
    datasets = data.add_subparsers(dest="dataset", required=True, metavar="DATASET", title="data sets")
    mnist = datasets.add_parser(
        "mnist",
        help="the MNIST digits (four IDX files, about 11 MB compressed)",
        description="Put the four MNIST IDX files in DIR (default: the cache folder, where load_mnist, the "
        "examples and the conformance suite look), each verified against its SHA-256. Files "
        "already there and intact are kept; broken ones are replaced.",
    )
    mnist.add_argument(
        "--dir",
        default=None,
        metavar="DIR",
        help="the folder to put them in (default: $XDG_CACHE_HOME/portable_dl/mnist, else ~/.cache/portable_dl/mnist)",
    )
    mnist.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up on a mirror that does not answer within SECONDS (default: 30)",
    )
    mnist.add_argument(
        "--mirror",
        action="append",
        default=None,
        metavar="URL",
        help="a base URL serving <name>.gz for each file, tried instead of the built-in list; "
        "repeat it to try several in order",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["conformance"]:
        # The suite parses its own flags; imported here so `backends` stays light.
        from portable_dl.conformance.cli import main as conformance_main

        return conformance_main(argv[1:])
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "backends":
        known = known_backends()
        unknown = [name for name in arguments.names if name not in known]
        if unknown:
            parser.error(f"unknown backend {', '.join(unknown)}; known backends: {', '.join(known)}")
        print(backends_table(probe_backends(list(dict.fromkeys(arguments.names)) or None)))
        return 0
    if arguments.command == "launch":
        return launch_command(arguments)
    if arguments.command == "data":
        return download_mnist_command(arguments.dir, arguments.timeout, arguments.mirror)
    return 2


if __name__ == "__main__":
    sys.exit(main())
