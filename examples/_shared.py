"""What the backend-comparison examples share: the command-line options every one of them
takes (``--backends``, ``--device``, ``--dtype``; ``--data-dir`` and ``--download`` where it
trains on MNIST; ``--output`` and ``--no-plot`` where it draws), finding MNIST, loading
matplotlib headless, printing a table.

Not an example itself: every example imports it (Python puts a script's own folder on
``sys.path``, so ``python examples/<name>.py`` finds it from a fresh clone).

Backends are chosen in two steps. The names are checked when the command line is read,
against ``portable_dl.known_backends()``, which lists the registered entry points without
importing any framework: a misspelt name is a usage error (exit status 2) before anything
slow happens. Creating each backend then imports its framework; one that is not installed,
or lacks the requested device, is reported as skipped with the reason
``portable_dl.available_backends()`` gives, and the others run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import portable_dl
from portable_dl.data import DataError, DatasetNotFound, load_mnist

REPOSITORY = Path(__file__).resolve().parents[1]

# TensorFlow's C++ runtime logs start-up notes and, for every failed op, a warning on
# standard error; they would bury the examples' output. Set before TensorFlow is imported;
# a value the user set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: ``--device`` values that are not device names.
DEFAULT_DEVICE = "default"
ALL_DEVICES = "all"
#: The dtypes ``--dtype`` takes: the floating-point dtypes every backend may compute in.
DTYPES = ("float32", "float64")


# ------------------------------------------------------------------ arguments
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (None,
    a flag's False) or where the option's help already says what it is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_backend_arguments(parser: argparse.ArgumentParser, device_default: str = DEFAULT_DEVICE) -> None:
    """``--backends`` and ``--device``."""
    parser.add_argument(
        "--backends",
        default=None,
        metavar="NAMES",
        help="comma-separated backend names, e.g. numpy,torch (default: every installed backend)",
    )
    parser.add_argument(
        "--device",
        default=device_default,
        metavar="DEVICES",
        help="comma-separated devices such as cpu, cuda, gpu, mps; 'default': each backend's "
        "default device; 'all': every device each backend has (default: %(default)s). A "
        "backend that lacks a device is skipped there, with the reason",
    )


def add_dtype_argument(parser: argparse.ArgumentParser, default: str = "float32", several: bool = False) -> None:
    """``--dtype``: the dtype computed in; with ``several``, a comma-separated list of them,
    each run in turn (read it with :func:`requested_dtypes`)."""
    if several:
        parser.add_argument(
            "--dtype",
            default=default,
            metavar="DTYPES",
            help=f"comma-separated dtypes among {', '.join(DTYPES)}, each run in turn (default: %(default)s)",
        )
    else:
        parser.add_argument("--dtype", choices=DTYPES, default=default, help="the dtype computed in")


def requested_dtypes(parser: argparse.ArgumentParser, requested: str) -> list[str]:
    """The dtypes of a comma-separated ``--dtype``; anything else than :data:`DTYPES` ends the
    program with ``parser.error`` (exit status 2)."""
    dtypes = list(dict.fromkeys(dtype.strip() for dtype in requested.split(",") if dtype.strip()))
    unknown = [dtype for dtype in dtypes if dtype not in DTYPES]
    if unknown or not dtypes:
        parser.error(f"--dtype takes {' and/or '.join(DTYPES)}, got {', '.join(unknown) or repr(requested)}")
    return dtypes


def add_plot_arguments(parser: argparse.ArgumentParser, default_output: str) -> None:
    """``--output`` and ``--no-plot``."""
    parser.add_argument("--output", default=default_output, metavar="PNG", help="where to save the figure")
    parser.add_argument("--no-plot", action="store_true", help="print the results only; no figure, no matplotlib")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--download``."""
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding the four MNIST IDX files (default: $PORTABLE_DL_DATA, then the "
        "cache folder that `portable-dl data mnist` fills)",
    )
    parser.add_argument(
        "--download", action="store_true", help="download MNIST into --data-dir (or the cache folder) when it is absent"
    )


def requested_backend_names(parser: argparse.ArgumentParser, requested: str | None) -> list[str]:
    """The names in ``--backends`` (default: every known backend), each checked against the
    registry without importing a framework; an unknown name ends the program with
    ``parser.error`` (exit status 2)."""
    known = portable_dl.known_backends()
    if requested is None:
        return known
    names = list(dict.fromkeys(name.strip() for name in requested.split(",") if name.strip()))
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"unknown backend {', '.join(unknown) or repr(requested)}; known backends: {', '.join(known)}")
    return names


# ------------------------------------------------------------------ backends
def create_backends(names: Sequence[str], devices: str) -> list[portable_dl.Backend]:
    """One Backend per (name, device) that exists here, in the order given.

    ``devices`` is the ``--device`` text. A backend whose framework is missing, or which
    lacks a device, is reported on standard output as skipped, with the reason, and left out.
    """
    created: dict[tuple[str, str], portable_dl.Backend] = {}  # "cuda" and "cuda:0" are one device
    for name in names:
        try:
            default = portable_dl.backend(name)
        except portable_dl.BackendUnavailable as error:  # the reason available_backends() gives
            print(f"skipped {name}: {error}")
            continue
        except Exception as error:  # as available_backends(): a broken third-party backend must not stop the others
            print(f"skipped {name}: {type(error).__name__}: {error}")
            continue
        if devices == DEFAULT_DEVICE:
            wanted = [default.device]
        elif devices == ALL_DEVICES:
            wanted = default.devices()
        else:
            wanted = [device.strip() for device in devices.split(",") if device.strip()]
        for device in wanted:
            try:
                backend = portable_dl.backend(name, device=device)
            except portable_dl.BackendUnavailable as error:
                print(f"skipped {name} on {device}: {error}")
                continue
            created.setdefault((name, backend.device), backend)
    return list(created.values())


def computing_in(backends: Sequence[portable_dl.Backend], dtype: str) -> list[portable_dl.Backend]:
    """The backends that compute in ``dtype`` here; the others are reported as skipped, with
    the backend's reason (float64 on JAX without x64, on an MLX GPU...)."""
    able = []
    for backend in backends:
        try:
            backend.dtype(dtype)
        except portable_dl.DTypeError as error:
            print(f"skipped {describe(backend)} in {dtype}: {error}")
            continue
        able.append(backend)
    return able


def describe(backend: portable_dl.Backend) -> str:
    """``"torch 2.13.0 on cpu"``: a backend as the examples' output names it."""
    return f"{backend.name} {backend.version} on {backend.device}"


# ------------------------------------------------------------------ data and figures
def load_mnist_or_exit(data_dir: str | None, download: bool) -> Any:
    """MNIST from ``data_dir`` (see :func:`portable_dl.data.load_mnist`); when it is absent,
    say where it was looked for and exit with status 1."""
    try:
        return load_mnist(data_dir, download=download)
    except DatasetNotFound as error:
        hint = "" if download else "\nPass --download to fetch it, or --data-dir DIR to name the folder that holds it."
        raise SystemExit(f"MNIST is not available: {error}{hint}") from None
    except DataError as error:  # a broken file: its message says which, and what to do
        raise SystemExit(f"MNIST is not usable: {error}") from None


def load_pyplot() -> Any:
    """``matplotlib.pyplot`` drawing to files only (the Agg backend: no display needed);
    exit with status 1 and say what to install when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "this example draws its figure with matplotlib, which is not installed: "
            "pip install matplotlib (or pass --no-plot)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_figure(figure: Any, output: str) -> None:
    """Save ``figure`` as a PNG at ``output`` and say where it went."""
    path = Path(output)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    print(f"figure saved to {path.resolve()}")


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], left_columns: int = 1, separator: str = "  "
) -> str:
    """A plain-text table: the first ``left_columns`` columns left-aligned (text), the others
    right-aligned (numbers), cells joined by ``separator``."""
    cells = [list(map(str, headers))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: list[str]) -> str:
        return separator.join(
            cell.ljust(width) if column < left_columns else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()

    rule = separator.join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
