"""Reading a checkpoint file's header and validating it, before any tensor data is touched.

A safetensors file is an 8-byte little-endian header length, a JSON header (one entry per
tensor: dtype, shape, data offsets; and ``__metadata__``, a dict of strings) and the tensor
bytes. This module checks every part a portable_dl checkpoint relies on: the length against
the file size, the JSON, the format fields in ``__metadata__`` (format name and version,
library version, saving backend, the two structures, optimizer, step, user metadata, and from
format version 2 the tensors' checksums), each tensor's entry, that the tensors fill the data
exactly, and that their names are the ones the structures give and the checksums name.
Every problem raises :class:`~portable_dl.errors.CheckpointError` naming the file; what
passes comes back as :class:`Contents`.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import struct
from dataclasses import dataclass, fields
from typing import Any

from ..backend import DTYPE_NAMES
from ..errors import CheckpointError
from ..tree import TreeDef
from .integrity import CHECKSUMS_KEY
from .structure import SECTIONS, leaf_names, structure_from_json
from .tensors import ITEMSIZE, TensorEntry

#: The version of the file layout this package writes; it reads this one and older ones.
#: 1: no checksums (such files still load, without a check of their tensor data);
#: 2: the CRC-32 of each tensor in the header (:mod:`.integrity`).
FORMAT_VERSION = 2
#: The first version whose files record checksums.
CHECKSUMS_SINCE = 2
#: The ``format`` entry of the safetensors metadata that marks a portable_dl checkpoint.
FORMAT_NAME = "portable_dl.checkpoint"

#: safetensors' dtype codes for the dtypes a checkpoint holds.
_SAFETENSORS_DTYPES = {
    "BOOL": "bool",
    "I8": "int8",
    "I16": "int16",
    "I32": "int32",
    "I64": "int64",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "F16": "float16",
    "BF16": "bfloat16",
    "F32": "float32",
    "F64": "float64",
}
_HEADER_LENGTH_BYTES = 8
_ZIP_MAGIC = b"PK\x03\x04"
_CHECKSUM = re.compile(r"[0-9a-f]{8}")


@dataclass(frozen=True)
class Header:
    """What a checkpoint's header says besides its tensors; the fields of the same names of
    :class:`~portable_dl.checkpoint.Checkpoint` and of :func:`~portable_dl.checkpoint.read_metadata`."""

    metadata: dict
    optimizer: dict | None
    step: int | None
    format_version: int
    library_version: str
    backend_name: str

    def header_fields(self) -> dict:
        """The fields above by name (not copied)."""
        return {item.name: getattr(self, item.name) for item in fields(Header)}


@dataclass(frozen=True)
class Contents(Header):
    """A checkpoint's header, validated: everything but the tensor data."""

    tensors: dict[str, TensorEntry]
    structures: dict[str, TreeDef]
    #: ``{tensor name: CRC-32 as 8 hex digits}``; None in a version 1 file.
    checksums: dict[str, str] | None
    #: Where the tensor data starts in the file: after the length and the header.
    data_start: int


def library_version() -> str:
    """The installed portable_dl's version, which save records and errors quote."""
    # Imported here: this package is imported by portable_dl/__init__.py before it sets __version__.
    from .. import __version__

    return __version__


# ----------------------------------------------------------------- reading files
def read_file(path: pathlib.Path) -> bytes:
    """The whole file; CheckpointError when it is absent, a folder or unreadable."""
    _check_exists(path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from error


def parse(data: bytes, path: pathlib.Path) -> Contents:
    """The validated header of ``data``, the whole file read from ``path``."""
    header_length = _header_length(data[:_HEADER_LENGTH_BYTES], len(data), path)
    return _parse_header(data[_HEADER_LENGTH_BYTES : _HEADER_LENGTH_BYTES + header_length], len(data), path)


def read_header(path: pathlib.Path) -> Contents:
    """The validated header of the file ``path``, reading the header's bytes only."""
    _check_exists(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header_length = _header_length(handle.read(_HEADER_LENGTH_BYTES), size, path)
            header = handle.read(header_length)
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error}") from error
    return _parse_header(header, size, path)


def _check_exists(path: pathlib.Path) -> None:
    if not path.exists():
        raise CheckpointError(f"the checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"the checkpoint {path} is a folder, not a checkpoint file")


# ------------------------------------------------------------ validating headers
def _header_length(first_bytes: bytes, file_size: int, path: pathlib.Path) -> int:
    """The JSON header's length, read from the file's first 8 bytes (little-endian u64)."""
    if file_size < _HEADER_LENGTH_BYTES:
        raise CheckpointError(
            f"the checkpoint {path} is truncated: it has {file_size} bytes, fewer than the "
            f"{_HEADER_LENGTH_BYTES} bytes that start every safetensors file"
        )
    if first_bytes.startswith(_ZIP_MAGIC):
        raise CheckpointError(
            f"{path} is a zip archive (an .npz, or a torch.save file?), not a portable_dl "
            "checkpoint (a safetensors file)"
        )
    (length,) = struct.unpack("<Q", first_bytes)
    if length > file_size - _HEADER_LENGTH_BYTES:
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file: its first 8 bytes announce a header "
            f"of {length} bytes, but only {file_size - _HEADER_LENGTH_BYTES} bytes follow"
        )
    return length


def _parse_header(header: bytes, file_size: int, path: pathlib.Path) -> Contents:
    """Validate the JSON header and the string metadata; the tensors must exactly fill the
    ``file_size`` bytes of the file that follow the header."""
    data_start = _HEADER_LENGTH_BYTES + len(header)
    try:
        parsed = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(
            f"the checkpoint {path} has a corrupted header, which is not valid JSON: {error}"
        ) from error
    if not isinstance(parsed, dict):
        raise CheckpointError(
            f"the checkpoint {path} has a corrupted header: a JSON {type(parsed).__name__}, not an object"
        )
    metadata = parsed.pop("__metadata__", None)
    entries = _format_fields(metadata, path)
    tensors = {name: _tensor_entry(name, entry, path) for name, entry in parsed.items()}
    _check_layout(tensors, file_size - data_start, path)
    structures = {section: structure_from_json(entries[f"{section}_structure"], section, path) for section in SECTIONS}
    _check_names(tensors, structures, path)
    checksums = _checksums(metadata, tensors, path) if entries["format_version"] >= CHECKSUMS_SINCE else None
    return Contents(
        metadata=entries["metadata"],
        optimizer=entries["optimizer"],
        step=entries["step"],
        format_version=entries["format_version"],
        library_version=entries["library_version"],
        backend_name=entries["backend"],
        tensors=tensors,
        structures=structures,
        checksums=checksums,
        data_start=data_start,
    )


def _format_fields(metadata: Any, path: pathlib.Path) -> dict[str, Any]:
    """The checkpoint's own fields from the safetensors string metadata, decoded."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        found = (
            "no metadata"
            if not isinstance(metadata, dict)
            else f"format {metadata['format']!r}"
            if "format" in metadata
            else "no 'format' entry in its metadata"
        )
        raise CheckpointError(
            f"{path} is not a portable_dl checkpoint: a safetensors file with {found} "
            f"(portable_dl writes format {FORMAT_NAME!r}); was it written by another program?"
        )
    try:
        version = int(metadata.get("format_version"))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"the checkpoint {path} has a corrupted header: format_version "
            f"{metadata.get('format_version')!r} is not an integer"
        ) from error
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"the checkpoint {path} was written by a newer portable_dl (format version {version}; "
            f"portable_dl {library_version()} reads versions up to {FORMAT_VERSION}): "
            "upgrade portable_dl to read it"
        )
    if version < 1:
        raise CheckpointError(f"the checkpoint {path} has a corrupted header: format_version {version} does not exist")
    decoded: dict[str, Any] = {"format_version": version}
    for key in ("library_version", "backend"):
        decoded[key] = metadata.get(key)
        if not isinstance(decoded[key], str):
            raise CheckpointError(f"the checkpoint {path} has a corrupted header: {key!r} is missing")
    for key, kinds in (
        ("params_structure", (dict,)),
        ("opt_state_structure", (dict,)),
        ("optimizer", (dict, type(None))),
        ("step", (int, type(None))),
        ("metadata", (dict,)),
    ):
        try:
            decoded[key] = json.loads(metadata[key])
        except (KeyError, TypeError, ValueError, RecursionError) as error:
            raise CheckpointError(
                f"the checkpoint {path} has a corrupted header: its {key!r} entry is missing or not valid JSON"
            ) from error
        if not isinstance(decoded[key], kinds) or isinstance(decoded[key], bool):
            raise CheckpointError(
                f"the checkpoint {path} has a corrupted header: its {key!r} entry is a {type(decoded[key]).__name__}"
            )
    return decoded


def _tensor_entry(name: str, entry: Any, path: pathlib.Path) -> TensorEntry:
    corrupted = f"the checkpoint {path} has a corrupted header: the entry of tensor {name!r}"
    if not isinstance(entry, dict):
        raise CheckpointError(f"{corrupted} is not an object")
    code = entry.get("dtype")
    if code not in _SAFETENSORS_DTYPES:
        raise CheckpointError(
            f"{corrupted} has dtype {code!r}; checkpoints hold "
            f"{', '.join(_SAFETENSORS_DTYPES)} (safetensors' names of {', '.join(DTYPE_NAMES)})"
        )
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
        raise CheckpointError(f"{corrupted} has the shape {shape!r}, not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise CheckpointError(f"{corrupted} has the data offsets {offsets!r}, not two non-negative integers")
    dtype = _SAFETENSORS_DTYPES[code]
    expected_bytes = math.prod(shape) * ITEMSIZE[dtype]
    if offsets[1] - offsets[0] != expected_bytes:
        raise CheckpointError(
            f"{corrupted} has the data offsets {offsets}, which span {offsets[1] - offsets[0]} bytes, "
            f"but {dtype} {tuple(shape)} needs {expected_bytes}"
        )
    return TensorEntry(dtype, tuple(shape), (offsets[0], offsets[1]))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(tensors: dict[str, TensorEntry], data_length: int, path: pathlib.Path) -> None:
    """The tensors lie one after another from byte 0 and fill the data exactly, as
    safetensors requires: a shorter file is truncated, any gap or overlap is corruption."""
    end = 0
    for name, entry in sorted(tensors.items(), key=lambda item: item[1].offsets):
        if entry.offsets[0] != end:
            raise CheckpointError(
                f"the checkpoint {path} has a corrupted header: tensor {name!r} starts at byte "
                f"{entry.offsets[0]} of the data, where the previous one ends at byte {end}"
            )
        end = entry.offsets[1]
    if end > data_length:
        raise CheckpointError(
            f"the checkpoint {path} is truncated: its header describes {end} bytes of tensor data, "
            f"but only {data_length} bytes follow the header"
        )
    if end < data_length:
        raise CheckpointError(
            f"the checkpoint {path} is corrupted: {data_length - end} bytes follow the "
            f"{end} bytes of tensor data its header describes"
        )


def _check_names(tensors: dict[str, TensorEntry], structures: dict[str, TreeDef], path: pathlib.Path) -> None:
    expected = [name for section in SECTIONS for name in leaf_names(structures[section], section)]
    missing = [name for name in expected if name not in tensors]
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        listed = [f"missing tensors: {', '.join(missing)}"] if missing else []
        listed += [f"tensors that the structure does not name: {', '.join(extra)}"] if extra else []
        raise CheckpointError(
            f"the checkpoint {path} is corrupted: its tensors do not match its structure; " + "; ".join(listed)
        )


def _checksums(metadata: dict, tensors: dict[str, TensorEntry], path: pathlib.Path) -> dict[str, str]:
    """The header's checksums: one CRC-32 (8 lowercase hex digits) for each tensor, no more."""
    try:
        checksums = json.loads(metadata[CHECKSUMS_KEY])
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise CheckpointError(
            f"the checkpoint {path} has a corrupted header: its {CHECKSUMS_KEY!r} entry is missing or not valid JSON"
        ) from error
    if not isinstance(checksums, dict) or not all(
        isinstance(value, str) and _CHECKSUM.fullmatch(value) for value in checksums.values()
    ):
        raise CheckpointError(
            f"the checkpoint {path} has a corrupted header: its {CHECKSUMS_KEY!r} entry is not an "
            "object of CRC-32 values (8 hex digits) by tensor name"
        )
    if set(checksums) != set(tensors):
        missing, extra = sorted(set(tensors) - set(checksums)), sorted(set(checksums) - set(tensors))
        listed = [f"no checksum for {', '.join(missing)}"] if missing else []
        listed += [f"checksums of tensors it does not hold: {', '.join(extra)}"] if extra else []
        raise CheckpointError(f"the checkpoint {path} has a corrupted header: " + "; ".join(listed))
    return checksums
