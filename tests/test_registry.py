"""Finding backends: the registry, entry points, availability and import isolation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import portable_dl
from portable_dl.backend import require_framework

FRAMEWORKS = ("torch", "tensorflow", "mlx", "jax", "jaxlib", "keras")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


def test_import_loads_no_framework():
    code = (
        "import sys, portable_dl, portable_dl.tree, portable_dl.registry\n"
        "portable_dl.known_backends()\n"
        "loaded = [m for m in " + repr(FRAMEWORKS) + " if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"import portable_dl loaded {result.stdout.strip()}"


def test_numpy_backend_loads_no_framework():
    result = run_python(
        "import sys, portable_dl\nportable_dl.backend('numpy')\nprint(','.join(m for m in "
        + repr(FRAMEWORKS)
        + " if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_five_built_in_backends_are_registered_as_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="portable_dl.backends")}
    assert {"numpy", "torch", "tensorflow", "mlx", "jax"} <= names
    assert portable_dl.known_backends()[:5] == ["numpy", "torch", "tensorflow", "mlx", "jax"]


def test_default_backend_is_numpy_or_the_environment_variable():
    assert run_python("import portable_dl; print(portable_dl.backend().name)").stdout.strip() == "numpy"
    result = run_python("import portable_dl; print(portable_dl.backend().name)", PORTABLE_DL_BACKEND="no-such")
    assert result.returncode != 0 and "no backend named 'no-such'" in result.stderr


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(portable_dl.BackendUnavailable, match=r"known backends: numpy"):
        portable_dl.backend("no-such-backend")


def test_missing_framework_names_the_extra_to_install():
    def factory(device=None):
        require_framework("a_framework_that_is_not_installed", "imaginary", extra="imaginary")

    portable_dl.register_backend("imaginary", factory)
    with pytest.raises(portable_dl.BackendUnavailable, match=r'pip install "portable-dl\[imaginary\]"') as caught:
        portable_dl.backend("imaginary")
    assert isinstance(caught.value, ImportError)
    info = {i.name: i for i in portable_dl.available_backends()}["imaginary"]
    assert not info.available and "pip install" in info.reason


def test_available_backends_reports_versions_and_devices():
    infos = {info.name: info for info in portable_dl.available_backends()}
    numpy_info = infos["numpy"]
    assert numpy_info.available and numpy_info.version == np.__version__ and numpy_info.devices == ("cpu",)
    for info in infos.values():
        assert info.available == (info.reason is None)


def test_a_third_party_backend_is_used_like_a_built_in_one():
    from portable_dl.backends.numpy.backend import NumPyBackend

    class Renamed(NumPyBackend):
        name = "renamed-numpy"

    portable_dl.register_backend("renamed-numpy", lambda device=None: Renamed(device))
    be = portable_dl.backend("renamed-numpy")
    assert be.name == "renamed-numpy" and be is portable_dl.backend("renamed-numpy")
    assert "renamed-numpy" in [info.name for info in portable_dl.available_backends() if info.available]


def test_unknown_device_lists_the_devices(backend):
    with pytest.raises(portable_dl.BackendUnavailable, match=r"available devices"):
        portable_dl.backend(backend.name, device="tpu:7")


def test_backend_of_finds_the_backend_of_an_array(backend):
    x = backend.asarray(np.ones(2, dtype="float32"))
    assert portable_dl.backend_of(x, 1.0).name == backend.name
    with pytest.raises(TypeError):
        portable_dl.backend_of(object())


def test_asarray_and_to_numpy_round_trip(backend):
    for dtype in ("float32", "float64", "int32", "int64", "bool", "uint8"):
        if not backend.supports(dtype):
            with pytest.raises(portable_dl.DTypeError):
                backend.asarray(np.zeros(2), dtype)
            continue
        values = np.arange(6).reshape(2, 3).astype(dtype)
        back = backend.to_numpy(backend.asarray(values))
        assert back.dtype == values.dtype and back.shape == (2, 3)
        np.testing.assert_array_equal(back, values)
    assert backend.dtype_name(backend.asarray(np.zeros(2), "float32").dtype) == "float32"
    with pytest.raises(portable_dl.DTypeError):
        backend.dtype("complex256")


def test_synchronize_returns_its_argument(backend):
    tree = {"a": backend.asarray(np.ones(2, dtype="float32"))}
    assert backend.synchronize(tree) is tree


def test_backends_command_prints_the_table():
    result = subprocess.run(
        [sys.executable, "-m", "portable_dl", "backends"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "numpy" in result.stdout and np.__version__ in result.stdout
    for name in ("torch", "tensorflow", "mlx", "jax"):
        assert name in result.stdout


def test_backend_modules_are_loaded_by_the_registry_without_the_command_line():
    # Any program loads backend modules through the registry; the suite's runner does not
    # import its command line (the old cli <-> runner cycle).
    result = run_python(
        "import sys; from portable_dl.registry import load_backend_module; import portable_dl.conformance.runner;"
        "print(load_backend_module('broken_backends:wrong_tanh_gradient'),"
        " 'portable_dl.conformance.cli' in sys.modules)",
        PYTHONPATH=str(__import__("pathlib").Path(__file__).parent),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["broken-tanh-gradient", "False"]
    with pytest.raises(
        portable_dl.registry.BackendModuleError,
        match=r"^misbehaving_backends:returns_no_backend: the factory returned object",
    ):
        portable_dl.registry.load_backend_module("misbehaving_backends:returns_no_backend")
