"""What save checks and converts before it writes: leaves to NumPy arrays, and the header's
strings (optimizer, user metadata) to JSON.

Every refusal is a :class:`~portable_dl.errors.CheckpointError` naming the leaf or the part
of the metadata at fault, raised before any file is touched.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from ..backend import DTYPE_NAMES
from ..errors import CheckpointError
from ..registry import backend_of


def leaf_to_numpy(leaf: Any, name: str) -> tuple[np.ndarray, str]:
    """The leaf as a contiguous little-endian NumPy array, and the name of the backend it
    came from ("numpy" for NumPy arrays and Python scalars). A bfloat16 leaf comes as an
    ``ml_dtypes.bfloat16`` array, as every backend's ``to_numpy`` gives it."""
    if isinstance(leaf, (np.ndarray, np.generic, bool, int, float)):
        array, owner = np.asarray(leaf), "numpy"
    else:
        try:
            backend = backend_of(leaf)
        except TypeError as error:
            raise CheckpointError(
                f"{name}: a {type(leaf).__module__}.{type(leaf).__name__} is not an array of any backend created "
                "so far; checkpoint leaves are arrays of a backend (create it first: portable_dl.backend(name)), "
                "NumPy arrays or Python scalars"
            ) from error
        try:
            array, owner = backend.to_numpy(leaf), backend.name
        except (TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{name}: cannot read this {backend.name} array's values: {error}") from error
    if array.dtype.name not in DTYPE_NAMES:
        raise CheckpointError(_unstorable_dtype_message(name, str(array.dtype)))
    # Not np.ascontiguousarray: it turns a 0-d array (the step count) into shape (1,).
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C"), owner


def _unstorable_dtype_message(name: str, dtype: str) -> str:
    advice = "; cast it to float32 before saving" if "float" in dtype else ""
    return (
        f"{name} has dtype {dtype}, which checkpoints do not hold (they hold the dtypes every backend "
        f"moves: {', '.join(DTYPE_NAMES)}){advice}"
    )


def saving_backend_name(owners: set[str]) -> str:
    """The framework the arrays came from; NumPy only when there was no framework array."""
    frameworks = sorted(owners - {"numpy"})
    return ",".join(frameworks) if frameworks else "numpy"


def describe_optimizer(optimizer: Any) -> dict | None:
    """``{"name": ..., "hyperparameters": {...}}`` of ``optimizer``, or None for None."""
    if optimizer is None:
        return None
    name, hyperparameters = getattr(optimizer, "name", None), getattr(optimizer, "hyperparameters", None)
    if not isinstance(name, str) or not isinstance(hyperparameters, dict):
        raise CheckpointError(
            f"optimizer= needs an optimizer with a name and a hyperparameters dict, got {type(optimizer).__name__}"
        )
    return {"name": name, "hyperparameters": hyperparameters}


def user_metadata(metadata: Any) -> dict:
    """The caller's metadata dict, ``{}`` for None; CheckpointError for anything but a dict."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"metadata must be a dict, got {type(metadata).__name__}")
    return metadata


def to_json(value: Any, what: str) -> str:
    """``json.dumps(value)``, or CheckpointError naming the part JSON cannot hold."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError) as error:
        where, problem = _unserializable_part(value, what, set())
        raise CheckpointError(
            f"{where} {problem}, which JSON cannot hold; convert it to a str, int, float, "
            "bool, None, list or dict (numbers with float() or int(), arrays with .tolist())"
        ) from error


def _unserializable_part(value: Any, where: str, containers: set[int]) -> tuple[str, str]:
    """The place in ``value`` that ``json.dumps`` refuses, and why."""
    if isinstance(value, (dict, list, tuple)):
        if id(value) in containers:
            return where, "refers back to itself"
        containers = containers | {id(value)}
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and not isinstance(key, (str, int, float, bool, type(None))):
                return where, f"has the key {key!r} of type {type(key).__name__}"
            try:
                json.dumps(item)
            except (TypeError, ValueError, RecursionError):
                return _unserializable_part(item, f"{where}[{key!r}]", containers)
    return where, f"is a {type(value).__module__}.{type(value).__name__}"


def check_folder(target: pathlib.Path) -> None:
    """CheckpointError unless ``target``'s folder exists and ``target`` is not a folder itself."""
    folder = target.parent
    if not folder.is_dir():
        raise CheckpointError(
            f"cannot write the checkpoint {target}: the folder {folder} does not exist "
            "(save creates no folders; create it first)"
        )
    if target.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {target}: it is a folder")
