"""One fixture, ``backend``, parametrized over every backend installed here.

``PORTABLE_DL_TEST_BACKENDS=numpy,torch`` limits the run to some backends.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import portable_dl
from portable_dl.data import ENVIRONMENT_VARIABLE, MNIST_FILES, default_cache_dir
from portable_dl.registry import installed_backend_names

_requested = os.environ.get("PORTABLE_DL_TEST_BACKENDS")
BACKEND_NAMES = [name for name in installed_backend_names() if not _requested or name in _requested.split(",")]


@pytest.fixture(params=BACKEND_NAMES, scope="session")
def backend(request):
    """A Backend on its default device, one per installed framework."""
    return portable_dl.backend(request.param)


@pytest.fixture
def xp(backend):
    """The array-API namespace of the backend under test."""
    return backend.xp


# ------------------------------------------------------------------ MNIST
#: The one reason every test gives when it is skipped for want of MNIST.
MNIST_ABSENT = (
    f"MNIST not found: set {ENVIRONMENT_VARIABLE}=DIR to a folder holding the four MNIST IDX files, "
    "or run `portable-dl data mnist` to download them into the cache folder"
)


def _mnist_folder() -> Path | None:
    """The first folder holding the four MNIST files (gzip-compressed or not): $PORTABLE_DL_DATA,
    then ../shared/datasets/mnist beside the repository (where this project's CI lays it),
    then load_mnist's cache folder. Read once, when the tests start, so that a test which
    clears $PORTABLE_DL_DATA for itself does not change where the others look."""
    candidates = [
        os.environ.get(ENVIRONMENT_VARIABLE),
        Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist",
        default_cache_dir(),
    ]
    for folder in candidates:
        if folder and all(
            any((Path(folder) / f"{name}{suffix}").is_file() for suffix in ("", ".gz")) for name in MNIST_FILES
        ):
            return Path(folder)
    return None


_MNIST_FOLDER = _mnist_folder()


def require_mnist() -> Path:
    """The folder holding MNIST for the tests, or skip the calling test with :data:`MNIST_ABSENT`.

    The files are only found here; loading them (``load_mnist(folder, download=False)``)
    verifies their SHA-256, so a broken copy fails the test that loads it instead of skipping.
    """
    if _MNIST_FOLDER is None:
        pytest.skip(MNIST_ABSENT)
    return _MNIST_FOLDER
