"""Finding and creating backends.

Backends are found through the entry-point group ``portable_dl.backends``. Each entry point
names a factory ``create(device=None) -> Backend`` that raises :class:`BackendUnavailable`
when its framework is missing; the five built-in backends register exactly as a third
party would, in this project's ``pyproject.toml``. :func:`register_backend` adds one at
run time (tests, ``--backend-module``); :func:`load_backend_module` does so for a
``module:factory`` string, as ``portable-dl conformance --backend-module`` does.

Which backend owns an array (:func:`backend_of`), when two backends own the same array
type (a third-party wrapper around torch arrays, say), is decided by this rule:

1. the innermost :func:`using` block of this thread, when its backend owns the arrays;
   ``Backend.value_and_grad`` and ``Backend.compile`` run ``f`` inside ``using(self)``,
   so front-end code differentiated or compiled by a backend sees that backend;
2. otherwise the owner most recently created or entered with :func:`using`.

A user with one backend never names it: ``model.apply(params, x)`` finds it from ``x``.

Nothing here imports a framework until a backend is asked for.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .backend import Backend
from .errors import BackendUnavailable

__all__ = [
    "backend",
    "backend_of",
    "using",
    "current_backend",
    "available_backends",
    "known_backends",
    "register_backend",
    "load_backend_module",
    "BackendInfo",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "portable_dl.backends"
ENVIRONMENT_VARIABLE = "PORTABLE_DL_BACKEND"
DEFAULT_BACKEND = "numpy"

#: Order in which built-in backends are listed; third-party ones follow alphabetically.
BUILT_IN_ORDER = ("numpy", "torch", "tensorflow", "mlx", "jax")

_registered: dict[str, Callable[..., Backend]] = {}
_instances: dict[tuple[str, str | None], Backend] = {}
_lock = threading.Lock()

#: The stack of :func:`using` blocks, per thread. A ``threading.local``, not a ContextVar:
#: TorchDynamo traces attribute reads of a thread-local (and guards on them, so a compiled
#: graph is not reused under another backend) but breaks the graph at ``ContextVar.get``.
_context = threading.local()


@dataclass(frozen=True)
class BackendInfo:
    """What :func:`available_backends` reports about one backend."""

    name: str
    available: bool
    version: str | None = None
    devices: tuple[str, ...] = ()
    reason: str | None = None
    origin: str = field(default="", compare=False)


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Make ``factory(device=None) -> Backend`` available as ``backend(name)``.

    A backend registered here takes precedence over an entry point of the same name.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"a backend name must be a non-empty string, got {name!r}")
    with _lock:
        _registered[name] = factory
        for key in [key for key in _instances if key[0] == name]:
            del _instances[key]


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_backends() -> list[str]:
    """Names of every backend registered, installed or not: built-ins first."""
    names = set(_entry_points()) | set(_registered)
    built_in = [name for name in BUILT_IN_ORDER if name in names]
    return built_in + sorted(names - set(built_in))


def _factory(name: str) -> Callable[..., Backend]:
    if name in _registered:
        return _registered[name]
    entry_points = _entry_points()
    if name not in entry_points:
        known = ", ".join(known_backends()) or "none (is portable-dl installed? pip install -e .)"
        raise BackendUnavailable(f"no backend named {name!r}; known backends: {known}")
    try:
        return entry_points[name].load()
    except ImportError as error:
        raise BackendUnavailable(f"the {name} backend could not be loaded: {error}") from error


def backend(name: str | None = None, device: str | None = None) -> Backend:
    """The backend ``name`` on ``device``.

    With no name: the ``PORTABLE_DL_BACKEND`` environment variable, else ``"numpy"``. With
    no device: the framework's default. The same (name, device) gives the same object.
    Raises :class:`BackendUnavailable` naming the extra to install when the framework is
    missing, or listing the devices when ``device`` is absent.
    """
    if isinstance(name, Backend):
        return name
    name = name or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_BACKEND
    key = (name, device)
    with _lock:
        cached = _instances.get(key)
    if cached is not None:
        return cached
    created = _factory(name)(device=device)
    if not isinstance(created, Backend):
        raise BackendUnavailable(f"the factory of backend {name!r} returned {type(created).__name__}, not a Backend")
    with _lock:
        return _instances.setdefault(key, created)


def _mark_used(instance: Backend) -> None:
    """Make ``instance`` the most recently used of the created backends (rule 2 of
    :func:`backend_of`): move it to the end of ``_instances``. Nothing changes when it
    already is, so a compiled step entering ``using`` on every call guards on a stable dict."""
    with _lock:
        keys = [key for key, value in _instances.items() if value is instance]
        if keys and next(reversed(_instances)) != keys[-1]:
            for key in keys:
                _instances[key] = _instances.pop(key)


@contextlib.contextmanager
def using(chosen: Backend | str):
    """Within the block, :func:`backend_of` answers ``chosen`` for every array it owns.

    ``chosen`` is a Backend or a registry name. Blocks nest; each thread has its own.
    The conformance suite runs every case inside ``using(the backend under test)``::

        with portable_dl.using(my_backend):
            loss = losses.cross_entropy(model.apply(params, x), y)  # my_backend.xp
    """
    chosen = backend(chosen)
    stack = getattr(_context, "stack", None)
    if stack is None:
        stack = _context.stack = []
    _mark_used(chosen)
    stack.append(chosen)
    try:
        yield chosen
    finally:
        stack.pop()


def current_backend() -> Backend | None:
    """The backend of the innermost :func:`using` block of this thread, or None."""
    stack = getattr(_context, "stack", None)
    return stack[-1] if stack else None


def backend_of(*arrays: Any) -> Backend:
    """The backend whose arrays these are, among the backends created so far.

    Front-end functions that receive only arrays (``apply(params, x)``, a loss) find their
    namespace this way: ``xp = backend_of(x).xp``. Python scalars are skipped; arrays of two
    different frameworks raise TypeError. Where several backends own the arrays: the one
    of the innermost :func:`using` block, else the most recently created or used one
    (see the module's docstring).
    """
    # No lock: reading a thread-local and copying a dict's values are atomic under the GIL,
    # and TorchDynamo cannot trace a `with` block, so a lock here would split every
    # compiled torch graph.
    stack = getattr(_context, "stack", None)
    if stack:
        current, owned = stack[-1], 0
        for array in arrays:
            if _is_scalar(array):
                continue
            if not current.owns(array):
                owned = -1
                break
            owned += 1
        if owned > 0:
            return current
    instances = list(_instances.values())[::-1]  # the most recently used first
    found = None
    for array in arrays:
        if _is_scalar(array):
            continue
        owner = next((instance for instance in instances if instance.owns(array)), None)
        if owner is None:
            raise TypeError(
                f"{type(array).__module__}.{type(array).__name__} is not an array of any backend created so far; "
                "create one with portable_dl.backend(name) and move data with its asarray"
            )
        if found is not None and found.name != owner.name:
            raise TypeError(f"arrays of two backends mixed: {found.name} and {owner.name}")
        found = found or owner
    if found is None:
        raise TypeError("backend_of needs at least one array")
    return found


def _is_scalar(value: Any) -> bool:
    # Exact types: NumPy's float64 scalar subclasses float but is an array value.
    return value is None or type(value) in (bool, int, float, complex)


class BackendModuleError(ValueError):
    """A ``module:factory`` string that gives no backend; the message says why, in one line."""


def load_backend_module(spec: str) -> str:
    """Register the backend made by ``factory(device=None)`` in ``module`` (``spec`` is
    ``"module:factory"``) under the name the backend gives itself; return that name.

    Raises :class:`BackendModuleError` naming the problem when the module cannot be
    imported, has no such factory, the factory raises (anything), or returns no Backend.
    """
    module_name, _, factory_name = str(spec).partition(":")
    if not module_name or not factory_name:
        raise BackendModuleError(f"a backend module is given as MODULE:FACTORY, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a broken third-party module: any error, one line
        raise BackendModuleError(
            f"{spec}: cannot import {module_name}: {type(error).__name__}: {_first_line(error)}"
        ) from error
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise BackendModuleError(f"{spec}: {module_name} has no callable {factory_name}")
    try:
        created = factory(device=None)
    except Exception as error:
        raise BackendModuleError(f"{spec}: the factory raised {type(error).__name__}: {_first_line(error)}") from error
    if not isinstance(created, Backend):
        raise BackendModuleError(f"{spec}: the factory returned {type(created).__name__}, not a portable_dl Backend")
    if not isinstance(created.name, str) or not created.name:
        raise BackendModuleError(f"{spec}: the backend has no name (set the class attribute name)")
    register_backend(created.name, factory)
    return created.name


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def available_backends() -> list[BackendInfo]:
    """Every known backend, with its framework version and devices, or why it is unavailable."""
    return [backend_info(name) for name in known_backends()]


def backend_info(name: str) -> BackendInfo:
    """What :func:`available_backends` reports about the known backend ``name`` (it is created
    on its default device to find out)."""
    origin = "registered" if name in _registered else _entry_points()[name].value
    try:
        instance = backend(name)
    except BackendUnavailable as error:
        return BackendInfo(name, False, reason=str(error), origin=origin)
    except Exception as error:  # a broken third-party backend must not hide the others
        return BackendInfo(name, False, reason=f"{type(error).__name__}: {error}", origin=origin)
    return BackendInfo(name, True, instance.version, tuple(instance.devices()), origin=origin)


def installed_backend_names() -> list[str]:
    """Names of the backends that can be created here."""
    return [info.name for info in available_backends() if info.available]
