"""The package as pip installs it: every package folder is listed, the metadata is honest (an
SPDX license with its file, no upper cap on torch, py.typed for the type hints), the CPU pin
lives in constraints/cpu.txt, and a built wheel carries LICENSE, py.typed and schema.json."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the tomli package (the [test] extra installs it there)
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject():
    config = PYPROJECT["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for package, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((package,) + relative))
    assert on_disk - listed == set(), f"packages missing from pyproject.toml: {sorted(on_disk - listed)}"


def test_license_is_an_spdx_expression_with_its_file():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"  # a string (PEP 639), not the deprecated table
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the whole text, not a summary


def test_type_hints_are_shipped():
    assert (ROOT / "portable_dl" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["portable_dl"]


def extra(name: str) -> list[Requirement]:
    return [Requirement(text) for text in PYPROJECT["project"]["optional-dependencies"][name]]


def test_torch_requirement_has_no_upper_cap():
    (torch,) = extra("torch")
    assert torch.name == "torch" and torch.marker is None
    assert torch.specifier == SpecifierSet(">=2.4")
    assert torch.specifier.contains("2.13.0") and torch.specifier.contains("9.0")  # any newer torch
    assert not torch.specifier.contains("2.3.1")


def test_cpu_constraints_pin_torch_on_linux_x86_64_only():
    lines = [line.strip() for line in (ROOT / "constraints" / "cpu.txt").read_text().splitlines()]
    (pin,) = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert pin.name == "torch" and pin.specifier.contains("2.13.0+cpu") and pin.specifier.contains("2.13.0")
    assert not pin.specifier.contains("2.14.0")
    linux = {"platform_system": "Linux", "platform_machine": "x86_64"}
    assert pin.marker.evaluate(linux)
    assert not pin.marker.evaluate({**linux, "platform_machine": "aarch64"})
    assert not pin.marker.evaluate({"platform_system": "Darwin", "platform_machine": "arm64"})
    # The README's two first commands and CI use it.
    assert "-c constraints/cpu.txt" in (ROOT / ".ci" / "run").read_text()
    first_block = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line.strip()]
    assert len(commands) == 2 and all('pip install -e ".[all' in line for line in commands)
    assert all("-c constraints/cpu.txt" in line for line in commands)


def test_python_floor_matches_the_tomli_fallback():
    assert PYPROJECT["project"]["requires-python"] == ">=3.10"
    tomli = [r for r in extra("test") if r.name == "tomli"]
    assert len(tomli) == 1 and tomli[0].marker.evaluate({"python_version": "3.10"})
    assert not tomli[0].marker.evaluate({"python_version": "3.11"})


def test_wheel_carries_license_type_marker_and_schema(tmp_path):
    """Build the wheel with the installed setuptools (no download), as pip would; no license warning.
    It is built from a copy of the source tree, since setuptools writes build/ and *.egg-info
    into the tree it builds."""
    setuptools = pytest.importorskip("setuptools")
    if tuple(int(part) for part in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} predates license-files (77)")
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "results"
        ),
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "wheels"),
            "-v",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("portable_dl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "portable_dl/py.typed" in names and "portable_dl/conformance/schema.json" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert 'Requires-Dist: torch>=2.4; extra == "torch"' in metadata
    log = result.stdout + result.stderr
    assert "SetuptoolsDeprecationWarning" not in log and "License classifiers are deprecated" not in log
