"""The tensors of a checkpoint: each one's header entry (:class:`TensorEntry`), decoding the
data, and the dtype each tensor gets on the loading backend.

A dtype the backend has is kept bit for bit. int64 and uint64 on a backend without them
(JAX without 64-bit mode) become int32 and uint32 when every value fits; any other missing
dtype (float64 without 64-bit mode, uint16 to uint64 on torch) raises
:class:`~portable_dl.errors.CheckpointError` with the backend's own reason, never a silent cast.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from ..backend import Backend
from ..errors import CheckpointError, DTypeError


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's header entry: dtype name, shape, and its [start, end) bytes in the data."""

    dtype: str
    shape: tuple[int, ...]
    offsets: tuple[int, int]


#: The dtype a backend without 64-bit integers receives instead.
_NARROWER_INTEGER = {"int64": "int32", "uint64": "uint32"}


def dtype_matches(stored: str, expected: str, backend: Backend) -> bool:
    """Equal dtypes; or int64 (uint64) where the backend lacks it and loads int32 (uint32)."""
    return stored == expected or (expected == _NARROWER_INTEGER.get(stored) and not backend.supports(stored))


def loaded_dtypes(tensors: dict[str, TensorEntry], backend: Backend, path: pathlib.Path) -> dict[str, str]:
    """The dtype each tensor of the file ``path`` gets on ``backend``, by name;
    CheckpointError for a dtype it lacks."""
    dtypes = {}
    for name, entry in tensors.items():
        dtype = entry.dtype
        if not backend.supports(dtype):
            if dtype in _NARROWER_INTEGER and backend.supports(_NARROWER_INTEGER[dtype]):
                dtype = _NARROWER_INTEGER[dtype]
            else:
                raise CheckpointError(_missing_dtype_message(tensors, entry.dtype, backend, path))
        dtypes[name] = dtype
    return dtypes


def _missing_dtype_message(tensors: dict[str, TensorEntry], dtype: str, backend: Backend, path: pathlib.Path) -> str:
    names = [name for name, entry in tensors.items() if entry.dtype == dtype]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    advice = "; or save the checkpoint in float32 (cast the arrays before save)" if dtype == "float64" else ""
    return (
        f"the checkpoint {path} holds {dtype} arrays ({shown}), which the {backend.name} backend on "
        f"{backend.device} cannot hold: {_dtype_reason(dtype, backend)}{advice}"
    )


def decode_tensors(data: bytes, path: pathlib.Path) -> dict[str, np.ndarray]:
    """The tensors of the whole file ``data`` (read from ``path``) as NumPy arrays, by name."""
    try:
        return safetensors.numpy.load(data)
    except (SafetensorError, ValueError, TypeError) as error:
        raise CheckpointError(f"the checkpoint {path} is corrupted: safetensors cannot decode it: {error}") from error


def narrowed(array: np.ndarray, dtype: str, name: str, backend: Backend, path: pathlib.Path) -> np.ndarray:
    """``array`` in ``dtype``: itself, or int64 (uint64) values checked to fit int32 (uint32)."""
    if array.dtype.name == dtype:
        return array
    limits = np.iinfo(dtype)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        raise CheckpointError(
            f"the checkpoint {path} holds {name} as {array.dtype.name} with values outside the {dtype} range, and the "
            f"{backend.name} backend on {backend.device} has no {array.dtype.name}: "
            f"{_dtype_reason(array.dtype.name, backend)}"
        )
    return array.astype(dtype)


def _dtype_reason(dtype: str, backend: Backend) -> str:
    """The backend's own words for why it lacks ``dtype``."""
    try:
        backend.dtype(dtype)
    except DTypeError as error:
        return str(error)
    return f"it has no {dtype}"
