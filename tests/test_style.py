"""Style is checked by tools: ``ruff check`` (lint) and ``ruff format --check`` over the
repository, with the configuration of ``pyproject.toml``. Run ``ruff format .`` and
``ruff check --fix .`` to mend what these report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*arguments: str) -> subprocess.CompletedProcess:
    command = [shutil.which("ruff")] if shutil.which("ruff") else [sys.executable, "-m", "ruff"]
    return subprocess.run([*command, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("arguments", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"])
def test_ruff_passes(arguments):
    result = _ruff(*arguments)
    assert result.returncode == 0, f"ruff {' '.join(arguments)} found problems:\n{result.stdout}{result.stderr}"
