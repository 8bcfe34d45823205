"""Backends for ``--backend-module`` that misbehave as a whole, not numerically: one
whose ``tanh`` hangs, factories that raise or return no Backend. (Backends with a planted
numerical fault are in ``broken_backends.py``.)"""

from __future__ import annotations

import time
import types

from portable_dl.backends.numpy import namespace as numpy_namespace
from portable_dl.backends.numpy.backend import NumPyBackend

#: How long the hanging tanh sleeps: far beyond any --case-timeout a test sets.
HANG_SECONDS = 600


def _hanging_tanh(x, /):
    time.sleep(HANG_SECONDS)
    return numpy_namespace.tanh(x)


_names = {name: getattr(numpy_namespace, name) for name in dir(numpy_namespace) if not name.startswith("__")}
_names["__array_namespace_info__"] = numpy_namespace.__array_namespace_info__
_hanging_namespace = types.SimpleNamespace(**{**_names, "tanh": _hanging_tanh})


class HangingTanh(NumPyBackend):
    name = "hanging-tanh"

    @property
    def xp(self):
        return _hanging_namespace


def hanging_tanh(device=None):
    return HangingTanh(device)


def factory_raises(device=None):
    raise RuntimeError("this factory is broken\nsecond line of the message")


def returns_no_backend(device=None):
    return object()
