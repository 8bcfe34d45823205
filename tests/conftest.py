"""One fixture, ``backend``, parametrized over every backend installed here.

``PORTABLE_DL_TEST_BACKENDS=numpy,torch`` limits the run to some backends.
"""

from __future__ import annotations

import os

import pytest

import portable_dl
from portable_dl.registry import installed_backend_names

_requested = os.environ.get("PORTABLE_DL_TEST_BACKENDS")
BACKEND_NAMES = [
    name for name in installed_backend_names() if not _requested or name in _requested.split(",")
]


@pytest.fixture(params=BACKEND_NAMES, scope="session")
def backend(request):
    """A Backend on its default device, one per installed framework."""
    return portable_dl.backend(request.param)


@pytest.fixture
def xp(backend):
    """The array-API namespace of the backend under test."""
    return backend.xp
