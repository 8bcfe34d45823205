"""Finding and creating backends.

Backends are found through the entry-point group ``portable_dl.backends``. Each entry point
names a factory ``create(device=None) -> Backend`` that raises :class:`BackendUnavailable`
when its framework is missing; the five built-in backends register exactly as a third
party would, in this project's ``pyproject.toml``. :func:`register_backend` adds one at
run time (tests, ``--backend-module``).

Nothing here imports a framework until a backend is asked for.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from .backend import Backend
from .errors import BackendUnavailable

__all__ = ["backend", "backend_of", "available_backends", "known_backends", "register_backend", "BackendInfo", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "portable_dl.backends"
ENVIRONMENT_VARIABLE = "PORTABLE_DL_BACKEND"
DEFAULT_BACKEND = "numpy"

#: Order in which built-in backends are listed; third-party ones follow alphabetically.
BUILT_IN_ORDER = ("numpy", "torch", "tensorflow", "mlx", "jax")

_registered: dict[str, Callable[..., Backend]] = {}
_instances: dict[tuple[str, str | None], Backend] = {}
_lock = threading.Lock()


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


def backend_of(*arrays: Any) -> Backend:
    """The backend whose arrays these are, among the backends created so far.

    Front-end functions that receive only arrays (``apply(params, x)``, a loss) find their
    namespace this way: ``xp = backend_of(x).xp``. Python scalars are skipped; arrays of two
    different frameworks raise TypeError.
    """
    # No lock: copying a dict's values is atomic under the GIL, and TorchDynamo cannot
    # trace a `with` block, so a lock here would split every compiled torch graph.
    instances = list(_instances.values())
    found = None
    for array in arrays:
        # Exact types: NumPy's float64 scalar subclasses float but is an array value.
        if array is None or type(array) in (bool, int, float, complex):
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


def available_backends() -> list[BackendInfo]:
    """Every known backend, with its framework version and devices, or why it is unavailable."""
    infos = []
    entry_points = _entry_points()
    for name in known_backends():
        origin = "registered" if name in _registered else entry_points[name].value
        try:
            instance = backend(name)
        except BackendUnavailable as error:
            infos.append(BackendInfo(name, False, reason=str(error), origin=origin))
            continue
        except Exception as error:  # a broken third-party backend must not hide the others
            infos.append(BackendInfo(name, False, reason=f"{type(error).__name__}: {error}", origin=origin))
            continue
        infos.append(BackendInfo(name, True, instance.version, tuple(instance.devices()), origin=origin))
    return infos


def installed_backend_names() -> list[str]:
    """Names of the backends that can be created here."""
    return [info.name for info in available_backends() if info.available]
