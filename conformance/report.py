"""Formatting results: a terminal table, JSON (versioned schema), Markdown.

The JSON document (JSON Schema in ``schema.json`` beside this module, identifier :data:`SCHEMA`)::

    {
      "schema": "portable-dl/conformance/1",
      "portable_dl_version": "0.1.0",
      "created": "2026-11-23T05:30:00+00:00",
      "platform": {"python": "3.11.7", "system": "Linux", "machine": "x86_64"},
      "settings": {"backends": [...], "dtypes": [...], "families": [...], "seed": 0, "quick": false},
      "backends": [{"name": "torch", "available": true, "version": "2.13.0", "device": "cpu", "reason": null}],
      "results": [{"case", "family", "backend", "device", "dtype", "status", "max_abs_error",
                   "max_rel_error", "tolerance", "message", "seconds"}],
      "summary": {"passed": 0, "failed": 0, "skipped": 0,
                  "matrix": {"<family>": {"<backend>": {"passed", "failed", "skipped"}}}},
      "exit_code": 0
    }

Errors are norm-wise (see :mod:`portable_dl.conformance.tolerances`): ``max_rel_error`` is
the largest absolute difference divided by the largest magnitude of the reference output.
A later schema version may add fields; it will not change the meaning of these.
"""

from __future__ import annotations

import datetime
import json
import platform
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .runner import Result

SCHEMA = "portable-dl/conformance/1"
STATUSES = ("pass", "fail", "skip")


def summary_matrix(results: Sequence[Result]) -> dict[str, dict[str, dict[str, int]]]:
    """family -> backend -> counts of passed, failed, skipped."""
    matrix: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})
    )
    key = {"pass": "passed", "fail": "failed", "skip": "skipped"}
    for result in results:
        matrix[result.family][result.backend][key[result.status]] += 1
    return {family: dict(backends) for family, backends in matrix.items()}


def exit_code(results: Sequence[Result]) -> int:
    """0 when every case that ran passed, 1 when any failed."""
    return 1 if any(result.status == "fail" for result in results) else 0


def _cell(counts: dict[str, int]) -> str:
    ran = counts["passed"] + counts["failed"]
    if ran == 0:
        return "skipped"
    text = f"{counts['passed']}/{ran} pass"
    if counts["failed"]:
        text = f"{counts['failed']} FAIL, " + text
    return text


def _backend_names(results: Sequence[Result]) -> list[str]:
    return list(dict.fromkeys(result.backend for result in results))


def _format_error(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def _rows_text(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def table(results: Sequence[Result], verbose: bool = False, backend_notes: Sequence[dict] = ()) -> str:
    """The terminal report: failures (every row with -v), then the matrix of families by
    backends, then the totals."""
    lines: list[str] = []
    shown = [r for r in results if verbose or r.status == "fail"]
    if shown:
        rows = [["case", "backend", "dtype", "status", "max abs err", "max rel err", "tolerance", "note"]]
        for r in shown:
            rows.append(
                [
                    f"{r.family}/{r.case}",
                    f"{r.backend}:{r.device}",
                    r.dtype,
                    r.status.upper() if r.status == "fail" else r.status,
                    _format_error(r.max_abs_error),
                    _format_error(r.max_rel_error),
                    _format_error(r.tolerance),
                    r.message,
                ]
            )
        lines += _rows_text(rows) + [""]
    backends = _backend_names(results)
    dtypes = list(dict.fromkeys(result.dtype for result in results))
    rows = [["family"] + backends]
    # One row per family and dtype when the run had several: float16 and bfloat16 differ.
    by_dtype = {dtype: summary_matrix([r for r in results if r.dtype == dtype]) for dtype in dtypes}
    for family in summary_matrix(results):
        for dtype in dtypes:
            by_backend = by_dtype[dtype].get(family)
            if by_backend is not None:
                label = family if len(dtypes) == 1 else f"{family} {dtype}"
                rows.append([label] + [_cell(by_backend[b]) if b in by_backend else "-" for b in backends])
    worst = [["worst error / tolerance"] + [_worst_ratio(results, b) for b in backends]]
    lines += _rows_text(rows + worst)
    for note in backend_notes:
        if not note["available"]:
            lines.append(f"skipped {note['name']}: {note['reason']}")
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    lines.append("")
    lines.append(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return "\n".join(lines)


def _worst_ratio(results: Sequence[Result], backend: str) -> str:
    ratios = [
        r.max_rel_error / r.tolerance
        for r in results
        if r.backend == backend and r.status == "pass" and r.tolerance and r.max_rel_error is not None
    ]
    return f"{max(ratios):.2f}" if ratios else "-"


def markdown(results: Sequence[Result], backend_notes: Sequence[dict] = ()) -> str:
    """A Markdown report: the matrix, then every row."""
    backends = _backend_names(results)
    matrix = summary_matrix(results)
    lines = [
        "# portable-dl conformance",
        "",
        "| family | " + " | ".join(backends) + " |",
        "|---" * (len(backends) + 1) + "|",
    ]
    for family, by_backend in matrix.items():
        lines.append(
            f"| {family} | " + " | ".join(_cell(by_backend[b]) if b in by_backend else "-" for b in backends) + " |"
        )
    for note in backend_notes:
        if not note["available"]:
            lines.append(f"\nSkipped backend `{note['name']}`: {note['reason']}")
    lines += [
        "",
        "| case | backend | dtype | status | max abs err | max rel err | tolerance | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        note = r.message.replace("|", "\\|")
        lines.append(
            f"| {r.family}/{r.case} | {r.backend}:{r.device} | {r.dtype} | {r.status} | "
            f"{_format_error(r.max_abs_error)} | {_format_error(r.max_rel_error)} | "
            f"{_format_error(r.tolerance)} | {note} |"
        )
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    lines += ["", f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"]
    return "\n".join(lines) + "\n"


def document(results: Sequence[Result], settings: dict[str, Any], backend_notes: Sequence[dict]) -> dict[str, Any]:
    """The JSON document of the schema above."""
    from portable_dl import __version__

    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    return {
        "schema": SCHEMA,
        "portable_dl_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": {"python": platform.python_version(), "system": platform.system(), "machine": platform.machine()},
        "settings": settings,
        "backends": list(backend_notes),
        "results": [_finite(r.as_dict()) for r in results],
        "summary": {
            "passed": counts["pass"],
            "failed": counts["fail"],
            "skipped": counts["skip"],
            "matrix": summary_matrix(results),
        },
        "exit_code": exit_code(results),
    }


def _finite(row: dict) -> dict:
    """JSON has no infinity: an infinite error is written as null with the message saying why."""
    for key in ("max_abs_error", "max_rel_error", "tolerance"):
        value = row[key]
        if value is not None and not (value == value and abs(value) != float("inf")):
            row[key] = None
    return row


def to_json(results: Sequence[Result], settings: dict[str, Any], backend_notes: Sequence[dict]) -> str:
    return json.dumps(document(results, settings, backend_notes), indent=2) + "\n"
