"""The ``portable-dl`` command: its help says what it does in plain text; ``backends`` reports
each installed backend as ``portable_dl.backend(name)`` sees it, without TensorFlow's C++
log lines. (``data mnist`` is tested in test_data.py, ``conformance`` in test_conformance.py.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from portable_dl.cli import _probe_in_subprocess, main


def run_command(*arguments: str, environment: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portable_dl", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def test_help_is_plain_text_saying_what_each_command_does(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":class:" not in text  # no reStructuredText
    assert "NumPy, PyTorch, TensorFlow, MLX and JAX" in text
    commands = re.split(r"\n(?=    \S)", text.split("commands:")[1].split("examples:")[0])
    described = {block.split()[0]: " ".join(block.split()[1:]) for block in commands if block.startswith("    ")}
    assert set(described) == {"backends", "conformance", "data", "launch"}
    assert "N local processes" in described["launch"]
    assert "version" in described["backends"] and "reference" in described["conformance"]
    assert "portable-dl data mnist" in described["data"]
    assert "portable-dl data mnist" in text.split("examples:")[1]


@pytest.fixture(scope="module")
def backends_output():
    """`python -m portable_dl backends` as a user runs it: TF_CPP_MIN_LOG_LEVEL not set."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return run_command("backends", environment=environment)


def test_backends_lists_each_backend_as_the_library_sees_it(backend, backends_output):
    assert backends_output.returncode == 0, backends_output.stderr
    header, _rule, *rows = backends_output.stdout.splitlines()
    assert header.split() == ["backend", "available", "version", "devices", "note"]
    row = [cells for cells in (re.split(r"\s{2,}", line.strip()) for line in rows) if cells[0] == backend.name]
    assert len(row) == 1, backends_output.stdout
    assert row[0][1:4] == ["yes", backend.version, ", ".join(backend.devices())]


def test_backends_prints_no_framework_log(backends_output):
    # TensorFlow's C++ start-up lines ("I0000 ... oneDNN custom operations are on", absl's
    # warning) come on standard error whenever it is imported; none may reach the user.
    assert backends_output.stderr == ""


@pytest.mark.parametrize("user_level", [None, "0"])
def test_probe_log_reaches_the_user_only_when_they_set_the_level(monkeypatch, capsys, user_level):
    """The probe's standard error (a framework's log) is shown when TF_CPP_MIN_LOG_LEVEL was
    set by the user, and kept back otherwise; the probe itself runs at level 3 unless set."""
    seen = {}

    def fake_run(command, env, **options):
        seen["level"] = env["TF_CPP_MIN_LOG_LEVEL"]
        answer = '{"name": "numpy", "available": true, "version": "1.0", "devices": ["cpu"], "reason": null}'
        return subprocess.CompletedProcess(command, 0, f"portable-dl-probe: {answer}\n", "I0000 a log line\n")

    if user_level is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", user_level)
    monkeypatch.setattr(subprocess, "run", fake_run)
    info = _probe_in_subprocess("numpy")
    assert (info.name, info.available, info.version, info.devices) == ("numpy", True, "1.0", ("cpu",))
    assert seen["level"] == (user_level or "3")
    assert capsys.readouterr().err == ("" if user_level is None else "I0000 a log line\n")


def test_backends_names_and_unknown_name(capsys):
    assert main(["backends", "numpy", "numpy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2].split()[:2] == ["numpy", "yes"]
    with pytest.raises(SystemExit) as caught:
        main(["backends", "numpy", "no_such_backend"])
    assert caught.value.code == 2
    assert "unknown backend no_such_backend; known backends: numpy" in capsys.readouterr().err


def test_a_probe_that_fails_is_reported_with_its_last_error_line():
    info = _probe_in_subprocess("no_such_backend")  # the child raises KeyError looking it up
    assert not info.available and info.version is None
    assert info.reason.startswith("probing it ended with exit status 1: KeyError:"), info.reason
