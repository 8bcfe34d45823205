"""What makes a checkpoint's data trustworthy beyond its layout: a checksum per tensor, and a
step count the header and the optimizer state agree on.

safetensors stores no checksum, so a bit flipped on disk or in transfer would load silently.
:func:`portable_dl.checkpoint.save` therefore records in the header, for each tensor, the
CRC-32 (:func:`zlib.crc32`) of its raw little-endian bytes as eight hex digits, and
:func:`portable_dl.checkpoint.load` recomputes it before any array is created. CRC-32 finds
every flipped bit and every burst of up to 32 bits, and reads about 1.5 GB/s (SHA-256: 0.6);
it guards against damage, not against someone who rewrites the header on purpose (nothing
in a safetensors file is signed).

The header's ``step`` is ``opt_state["step"]`` as an int when the optimizer state is a dict
whose ``"step"`` is a 0-d integer array (every portable_dl optimizer's state), else null;
load checks that the tensor says the same.
"""

from __future__ import annotations

import pathlib
import zlib

import numpy as np

from ..errors import CheckpointError
from .structure import tensor_name
from .tensors import TensorEntry

#: The name, in the header's metadata, of the JSON object ``{tensor name: crc32 as hex}``.
CHECKSUMS_KEY = "tensor_crc32"
#: The tensor whose value the header's ``step`` repeats.
STEP_TENSOR = tensor_name("opt_state", ("step",))


def checksum(data: np.ndarray | memoryview) -> str:
    """The CRC-32 of ``data``'s bytes as eight lowercase hex digits. ``data``: a C-contiguous
    little-endian NumPy array (as save writes it), or the bytes read from the file."""
    if isinstance(data, np.ndarray):
        data = data.reshape(-1).view(np.uint8)  # flat bytes: 0-d and empty arrays included
    return f"{zlib.crc32(data):08x}"


def verify_checksums(
    data: bytes, data_start: int, tensors: dict[str, TensorEntry], checksums: dict[str, str] | None, path: pathlib.Path
) -> None:
    """CheckpointError naming the first tensor (in file order) whose bytes in ``data`` (the
    whole file; tensor data from byte ``data_start``) do not give its recorded checksum.
    ``checksums`` None: a file of format version 1, which has none, is not checked."""
    if checksums is None:
        return
    view = memoryview(data)
    for name, entry in sorted(tensors.items(), key=lambda item: item[1].offsets):
        start, end = entry.offsets
        actual = checksum(view[data_start + start : data_start + end])
        if actual != checksums[name]:
            raise CheckpointError(
                f"the checkpoint {path} is corrupted: the data of tensor {name!r} ({entry.dtype} {entry.shape}) "
                f"does not match its checksum (CRC-32 {actual}, the header records {checksums[name]}); the file "
                "changed after it was written: load an earlier checkpoint or copy this one again"
            )


def step_of(tensors: dict[str, np.ndarray]) -> int | None:
    """``int(opt_state["step"])`` when that tensor is a 0-d integer array, else None;
    ``tensors`` are the checkpoint's NumPy arrays by name."""
    step = tensors.get(STEP_TENSOR)
    if step is None or step.shape != () or step.dtype.kind not in "iu":
        return None
    return int(step)


def check_step(header_step: int | None, tensors: dict[str, np.ndarray], path: pathlib.Path) -> None:
    """CheckpointError when the header's ``step`` and the optimizer state's step differ."""
    stored = step_of(tensors)
    if stored != header_step:
        holds = f"{STEP_TENSOR} holds {stored}" if stored is not None else f"there is no 0-d integer {STEP_TENSOR}"
        raise CheckpointError(
            f"the checkpoint {path} is inconsistent: its header says step {header_step}, but "
            f"{holds}; the file was altered after it was written"
        )
