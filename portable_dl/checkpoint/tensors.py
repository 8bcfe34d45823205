"""The tensors of a checkpoint: each one's header entry (:class:`TensorEntry`), decoding the
data, and the dtype each tensor gets on the loading backend.

A dtype the backend has is kept bit for bit, float16 and bfloat16 included (NaN payloads
and signed zeros too: the bytes go to the backend unconverted). int64 and uint64 on a
backend without them (JAX without 64-bit mode) become int32 and uint32 when every value
fits; any other missing dtype (float64 without 64-bit mode, bfloat16 on a backend or device
without it, uint16 to uint64 on torch) raises :class:`~portable_dl.errors.CheckpointError`
naming the tensors and giving the backend's own reason, never a silent cast.

Decoding needs only NumPy, but for bfloat16, which NumPy lacks: its NumPy dtype comes from
``ml_dtypes`` (a dependency of JAX and TensorFlow, and the dtype every backend's
``to_numpy`` gives for bfloat16), imported only when a file holds a BF16 tensor.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
from safetensors import SafetensorError, deserialize

from ..backend import Backend
from ..errors import CheckpointError, DTypeError


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's header entry: dtype name, shape, and its [start, end) bytes in the data."""

    dtype: str
    shape: tuple[int, ...]
    offsets: tuple[int, int]


#: Bytes per element of each dtype a checkpoint holds (bfloat16 has no NumPy dtype to ask
#: without ml_dtypes, and the header is validated before any is needed).
ITEMSIZE = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "uint8": 1,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "float64": 8,
}

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
    shown = _listed(tensors, dtype)
    advice = (
        "; or save the checkpoint in float32 (cast the arrays before save)"
        if dtype in ("float64", "float16", "bfloat16")
        else ""
    )
    return (
        f"the checkpoint {path} holds {dtype} arrays ({shown}), which the {backend.name} backend on "
        f"{backend.device} cannot hold: {_dtype_reason(dtype, backend)}{advice}"
    )


def decode_tensors(data: bytes, tensors: dict[str, TensorEntry], path: pathlib.Path) -> dict[str, np.ndarray]:
    """The tensors of the whole file ``data`` (read from ``path``; ``tensors``: its validated
    header entries) as NumPy arrays, by name: safetensors parses the file and hands each
    tensor's raw little-endian bytes, which are viewed, not converted, in the entry's dtype."""
    dtypes = numpy_dtypes({entry.dtype for entry in tensors.values()}, tensors, path)
    try:
        views = deserialize(data)
    except (SafetensorError, ValueError, TypeError) as error:
        raise CheckpointError(f"the checkpoint {path} is corrupted: safetensors cannot decode it: {error}") from error
    return {
        name: np.frombuffer(view["data"], dtype=dtypes[tensors[name].dtype].newbyteorder("<")).reshape(view["shape"])
        for name, view in views
    }


def numpy_dtypes(names: set[str], tensors: dict[str, TensorEntry], path: pathlib.Path) -> dict[str, np.dtype]:
    """The NumPy dtype of each dtype name in ``names``; bfloat16's from ml_dtypes, and
    CheckpointError naming the tensors when it is not installed."""
    dtypes = {name: np.dtype(name) for name in names if name != "bfloat16"}
    if "bfloat16" in names:
        try:
            import ml_dtypes
        except ImportError as error:
            raise CheckpointError(
                f"the checkpoint {path} holds bfloat16 arrays ({_listed(tensors, 'bfloat16')}), and NumPy has no "
                "bfloat16 without the ml_dtypes package: pip install ml_dtypes (JAX and TensorFlow install it)"
            ) from error
        dtypes["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
    return dtypes


def _listed(tensors: dict[str, TensorEntry], dtype: str) -> str:
    """The names of the tensors of ``dtype``: the first three, and how many more."""
    names = [name for name, entry in tensors.items() if entry.dtype == dtype]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


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
