"""The ``portable-dl`` command (also ``python -m portable_dl``).

``portable-dl backends`` prints every known backend with its framework version, devices and
availability (or why it is unavailable). ``portable-dl conformance`` runs the conformance
suite (``portable-dl conformance --help``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .registry import available_backends


def backends_table() -> str:
    """The table of backends as text, one row per backend."""
    rows = [("backend", "available", "version", "devices", "note")]
    for info in available_backends():
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["conformance"]:
        # The suite parses its own flags; imported here so `backends` stays light.
        from portable_dl.conformance.cli import main as conformance_main

        return conformance_main(argv[1:])
    parser = argparse.ArgumentParser(prog="portable-dl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backends", help="list the backends, their versions, devices and availability")
    commands.add_parser("conformance", help="check every installed backend against the NumPy float64 reference")
    arguments = parser.parse_args(argv)
    if arguments.command == "backends":
        print(backends_table())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
