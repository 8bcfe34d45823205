"""Checkpoints that move between backends: parameters, optimizer state and metadata in one
safetensors file.

::

    path = save("run/step-100.safetensors", params, opt_state, {"epoch": 3}, optimizer=adam)
    checkpoint = load(path, "jax", like=params, opt_state_like=opt_state)
    checkpoint.params, checkpoint.opt_state, checkpoint.metadata, checkpoint.step

The file is a plain `safetensors <https://github.com/huggingface/safetensors>`_ file, written
with ``safetensors.numpy`` and parsed with ``safetensors.deserialize``: tensors are raw
little-endian bytes and the header is JSON, so loading a checkpoint cannot run code (no pickle
anywhere), and other tools can read the tensors. Each tensor is named by its place in its
tree: ``params/layers.0.W``, ``opt_state/step``, ``opt_state/slots.layers.0.W.exp_avg``.
``"/"`` separates the section from the path and ``"."`` the keys and list positions of the
path; a dict key containing ``"."``, ``"/"`` or ``"%"`` has them written ``%2E``, ``%2F``,
``%25``, so no two leaves share a name. The safetensors header's string metadata holds
``format`` (``"portable_dl.checkpoint"``), ``format_version``, ``library_version``,
``backend`` (the saving backend's name), the structure of ``params`` and of ``opt_state`` as
JSON (dicts with their key order, lists, tuples and None come back exactly), ``optimizer``,
``step``, the user's ``metadata`` and ``tensor_crc32``, the CRC-32 of each tensor's bytes.

Integrity (:mod:`.integrity`): safetensors itself has no checksum, so load recomputes each
tensor's CRC-32 and raises :class:`CheckpointError` naming the first tensor whose data
changed (a flipped bit, a damaged copy). It also checks that the header agrees with itself:
its tensors are exactly those its structures name and its checksums cover, and its ``step``
is the optimizer state's ``opt_state["step"]``. Format version 2 added the checksums;
a version 1 file (written before them) still loads, with every check but the checksums.

Values are bit-exact: an array saved from any backend loads with the same bytes on any
backend that has its dtype. The dtypes are those every Backend moves, :data:`DTYPE_NAMES`:
bool, int8 to int64, uint8 to uint64, float16 and bfloat16 (safetensors' ``F16`` and
``BF16``), float32 and float64. Half-precision values keep every bit, NaN payloads and
signed zeros included; NumPy's bfloat16 is ``ml_dtypes.bfloat16``, which loading a file
with BF16 tensors therefore needs (float16 needs NumPy only).

Where the loading backend lacks a dtype:

- float64 (JAX without 64-bit mode, MLX on the GPU): :class:`CheckpointError` saying so and
  how to enable it, never a silent cast to float32;
- int64 and uint64 (JAX without 64-bit mode): loaded as int32 and uint32 when every value
  fits, as the JAX backend's ``asarray`` does (optimizer step counts are int32 anyway), and
  :class:`CheckpointError` otherwise;
- any other dtype (uint16 to uint64 on torch, float16 or bfloat16 where the backend or its
  device has none): :class:`CheckpointError` naming the tensors, with the backend's reason.

Writes are atomic (:func:`portable_dl.atomic.write_atomically`): the bytes go to a
temporary file in the target's folder (named ``.<target name>.<host>.<pid>.<random>.tmp``),
which is flushed, synced to disk and then renamed onto the target, and the folder is synced.
A crash or a kill at any moment leaves either the previous file or the new one, never a
mixture. A killed save can leave its temporary file behind; the next save to the same
target deletes those left by processes of this host that no longer run (on POSIX systems),
and :func:`load` never reads them.

Every problem with a file raises :class:`CheckpointError` naming the file and what is
wrong, before any array is created: a missing, truncated or corrupted file, a file of
another format, a version newer than this library reads, or a checkpoint whose trees do not
match the ``like`` trees the caller expects.

The package: :mod:`.header` reads and validates a file's header, :mod:`.structure` names
the tensors and matches trees, :mod:`.tensors` describes each tensor and gives it its dtype
on the loading backend, :mod:`.integrity` computes and checks checksums and the step,
:mod:`.saving` checks and converts what :func:`save` is given. It imports no
framework.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import safetensors.numpy

from .. import atomic
from ..backend import Backend
from ..errors import CheckpointError
from ..registry import backend as get_backend
from ..tree import TreeDef, tree_flatten, tree_unflatten
from .header import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Header,
    library_version,
    parse,
    read_file,
    read_header,
)
from .integrity import CHECKSUMS_KEY, check_step, checksum, step_of, verify_checksums
from .saving import (
    check_folder,
    describe_optimizer,
    leaf_to_numpy,
    saving_backend_name,
    to_json,
    user_metadata,
)
from .structure import SECTIONS, check_keys, leaf_names, mismatches, structure_to_json
from .tensors import decode_tensors, loaded_dtypes, narrowed

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Checkpoint", "load", "read_metadata", "save"]


@dataclass(frozen=True)
class Checkpoint(Header):
    """What :func:`load` returns.

    Attributes:
        params: the parameter tree, arrays of the loading backend.
        opt_state: the optimizer state tree, or None when none was saved.
        metadata: the user's metadata as JSON gives it back (tuples become lists, non-string
            keys strings); ``{}`` when none was saved.
        optimizer: ``{"name": "Adam", "hyperparameters": {...}}`` when saved with
            ``optimizer=``, else None.
        step: ``int(opt_state["step"])`` when the state has an integer ``"step"``, else None.
        format_version: the file layout's version.
        library_version: the portable_dl version that wrote the file.
        backend_name: the backend the arrays were saved from (``"numpy"`` for NumPy arrays).

    All but the first two are the header's fields (:class:`.header.Header`); construct it
    with keywords.
    """

    params: Any
    opt_state: Any


def save(
    path: str | os.PathLike, params: Any, opt_state: Any = None, metadata: dict | None = None, *, optimizer: Any = None
) -> pathlib.Path:
    """Write ``params``, ``opt_state`` and ``metadata`` to the safetensors file ``path``, atomically.

    Args:
        path: the file to write (``.safetensors`` is the customary suffix). Its folder must
            exist: save creates no folders, so a mistyped path fails instead of writing
            somewhere unexpected. An existing file is replaced only once the new one is
            complete on disk.
        params: a pytree (dicts with string keys, lists, tuples, None) of arrays of any
            backend, NumPy arrays or Python scalars (which NumPy converts: a float becomes
            float64, an int int64).
        opt_state: the optimizer state, a pytree of the same kind, or None.
        metadata: a dict that ``json.dumps`` accepts; it comes back as JSON gives it back
            (tuples as lists).
        optimizer: an optimizer whose ``name`` and ``hyperparameters`` are recorded (tuples
            such as Adam's betas become lists; a schedule is recorded by its description).

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        CheckpointError: before the file is touched, for a leaf that is not an array or has
            a dtype checkpoints do not hold (complex), a dict key that is not a
            string, metadata or hyperparameters JSON cannot hold (naming the key), or a
            folder that does not exist; afterwards, when the operating system refuses the
            write (the previous file then stands).
    """
    target = pathlib.Path(path)
    tensors: dict[str, np.ndarray] = {}
    structures: dict[str, TreeDef] = {}
    owners: set[str] = set()
    for section, tree in zip(SECTIONS, (params, opt_state)):
        leaves, treedef = tree_flatten(tree)
        check_keys(treedef, section)
        structures[section] = treedef
        for name, leaf in zip(leaf_names(treedef, section), leaves):
            tensors[name], owner = leaf_to_numpy(leaf, name)
            owners.add(owner)
    header_metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "library_version": library_version(),
        "backend": saving_backend_name(owners),
        "params_structure": json.dumps(structure_to_json(structures["params"]), separators=(",", ":")),
        "opt_state_structure": json.dumps(structure_to_json(structures["opt_state"]), separators=(",", ":")),
        "optimizer": to_json(describe_optimizer(optimizer), "optimizer"),
        "step": json.dumps(step_of(tensors)),
        "metadata": to_json(user_metadata(metadata), "metadata"),
        CHECKSUMS_KEY: json.dumps({name: checksum(array) for name, array in tensors.items()}, separators=(",", ":")),
    }
    check_folder(target)
    data = safetensors.numpy.save(tensors, metadata=header_metadata)
    try:
        atomic.write_atomically(target, data)
    except OSError as error:
        raise CheckpointError(f"could not write the checkpoint {target}: {error}") from error
    return target


def load(
    path: str | os.PathLike,
    backend: Backend | str | None = None,
    *,
    like: Any = None,
    opt_state_like: Any = None,
    device: str | None = None,
) -> Checkpoint:
    """Read the checkpoint at ``path`` into arrays of ``backend``.

    Args:
        path: a file written by :func:`save`.
        backend: a Backend or a backend's name; None takes the default backend, as
            ``portable_dl.backend()`` chooses it.
        like: if given, a pytree the params must match in structure (every key, list or
            tuple, None), and in the shape and dtype of every leaf. Its leaves are arrays of
            any backend, NumPy arrays, or any objects with ``.shape`` and ``.dtype``.
        opt_state_like: the same for the optimizer state.
        device: the device to put the arrays on (default: the backend's).

    Returns:
        a :class:`Checkpoint`. The file is read and every check done before the first array
        is created; nothing the caller passed is changed.

    Raises:
        CheckpointError: naming the file and the problem: it does not exist or cannot be
            read, is truncated, is corrupted (a tensor whose data does not match its
            checksum, a header whose step disagrees with the optimizer state), is not a
            portable_dl checkpoint, was written by a newer portable_dl, holds a dtype the
            backend lacks (float64 on JAX without 64-bit mode, bfloat16 where the backend has
            none) or bfloat16 arrays without ml_dtypes installed, or does not match ``like`` /
            ``opt_state_like`` (every missing and extra key and every wrong shape or dtype listed).
    """
    path = pathlib.Path(path)
    backend = _resolve_backend(backend, device)
    data = read_file(path)
    contents = parse(data, path)
    verify_checksums(data, contents.data_start, contents.tensors, contents.checksums, path)
    problems = []
    for section, expected in (("params", like), ("opt_state", opt_state_like)):
        if expected is not None:
            problems += mismatches(contents.structures[section], contents.tensors, section, expected, backend)
    if problems:
        raise CheckpointError(f"the checkpoint {path} does not match what was expected:\n  " + "\n  ".join(problems))
    dtypes = loaded_dtypes(contents.tensors, backend, path)
    decoded = decode_tensors(data, contents.tensors, path)
    check_step(contents.step, decoded, path)
    arrays = {name: narrowed(array, dtypes[name], name, backend, path) for name, array in decoded.items()}
    # Only now, with every check passed, are arrays of the backend created.
    trees = {
        section: tree_unflatten(
            contents.structures[section],
            [backend.asarray(arrays[name], dtypes[name]) for name in leaf_names(contents.structures[section], section)],
        )
        for section in SECTIONS
    }
    return Checkpoint(params=trees["params"], opt_state=trees["opt_state"], **contents.header_fields())


def read_metadata(path: str | os.PathLike) -> dict:
    """Everything in the checkpoint at ``path`` but the tensor data, reading only its header.

    Returns ``{"metadata": <the user's dict>, "optimizer": ..., "step": ...,
    "format_version": ..., "library_version": ..., "backend_name": ..., "tensors": {name:
    {"dtype": "float32", "shape": (784, 16)}, ...}}``: the fields of :class:`Checkpoint`
    without the arrays, and each tensor's dtype and shape. Raises :class:`CheckpointError`
    for every problem of the file that :func:`load` finds without reading the tensor data.
    """
    path = pathlib.Path(path)
    contents = read_header(path)
    return {
        **contents.header_fields(),
        "tensors": {name: {"dtype": entry.dtype, "shape": entry.shape} for name, entry in contents.tensors.items()},
    }


def _resolve_backend(backend: Backend | str | None, device: str | None) -> Backend:
    if isinstance(backend, Backend):
        return (
            backend
            if device is None or backend.canonical_device(device) == backend.device
            else get_backend(backend.name, device)
        )
    return get_backend(backend, device)
