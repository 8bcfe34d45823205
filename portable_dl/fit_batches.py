"""The step calls of one :func:`portable_dl.fit` epoch, and the batches each one takes.

An epoch is the seeded permutation of the N examples cut into batches of ``batch_size``
(the last one short), exactly as :func:`portable_dl.data.batches` cuts it. With
``steps_per_call=k`` the calls are (:func:`call_plan`): k consecutive full batches stacked
into one call of the k-step function, ``(k, b, ...)``, as long as k full batches are left;
then one single step per batch for the rest (the full batches left over and the short last
one). Every call takes the same batches, in the same order, as k = 1 does.

The batches are cut where the data lives (:func:`placed_data` decides; ``"auto"`` moves
the data to an accelerator, never to the CPU, see :func:`moves_data`):

- :class:`HostData`: the NumPy arrays stay on the host; the rows are gathered and cast in
  NumPy and moved with ``backend.asarray``.
- :class:`DeviceData`: ``x`` and ``y`` are moved to the device once per fit call; only the
  row indices cross, and the rows are gathered there with ``xp.take``.

Either way the batches of several consecutive calls of one shape are cut together, as one
gather and one move of an array ``(calls, ...)`` that ``xp.unstack`` splits into the calls'
batches (:func:`chunk_calls` says how many: at most :data:`CHUNK_BYTES` of rows and
:data:`MAX_CHUNK_CALLS` calls). At batch 10 moving a batch costs more than the step's
arithmetic: JAX's ``device_put`` of a small NumPy array takes about 80 µs on a CPU, an
``unstack`` of 64 batches one dispatch (bench/README.md, "fit at batch 10"). The rows are
copied, not computed, so the batches are bit-identical however they are grouped.

This module imports no framework.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from .data import shuffled_order

__all__ = [
    "Call",
    "call_plan",
    "epoch_calls",
    "HostData",
    "DeviceData",
    "placed_data",
    "moves_data",
    "DEVICE_DATA_LIMIT",
    "CHUNK_BYTES",
    "MAX_CHUNK_CALLS",
    "chunk_calls",
]

#: ``data_on_device="auto"`` moves the training set to a device other than the CPU when ``x``
#: (in the model's dtype) and ``y`` take at most this many bytes together. A fixed figure
#: because the Backend contract does not report the device's free memory; 1 GiB leaves room
#: for the model and its activations on any accelerator fit runs on, and holds MNIST
#: (60000 x 784 float32, 188 MB) five times.
DEVICE_DATA_LIMIT = 1 << 30

#: The most bytes of rows (x in the model's dtype, and y) cut and moved at once: the calls cut
#: together wait on the device (or the host) until they run, so their size is bounded; 4 MiB
#: holds 64 MNIST batches of 10 and leaves a batch of a few MB alone in its chunk.
CHUNK_BYTES = 4 << 20

#: The most calls cut at once: past a few dozen, the fixed cost of a move is already spread
#: thin, and a longer wait for the first batch of a chunk buys nothing.
MAX_CHUNK_CALLS = 64


class Call(NamedTuple):
    """One call of a step function in an epoch."""

    batch: tuple[Any, Any]  # (x, y) backend arrays: (b, ...) for a single step, (k, b, ...) for k steps
    steps: int  # the single steps the call makes: 1, or k stacked batches
    examples: int  # examples in each of its batches (b, or fewer for the short last batch)


def call_plan(count: int, batch_size: int, steps_per_call: int, skip: int = 0) -> Iterator[tuple[int, int, int]]:
    """``(first row, steps, rows per batch)`` of each call over ``count`` examples, from batch
    ``skip`` of the epoch: groups of ``steps_per_call`` full batches while that many full
    batches are left, then single steps. Grouping starts at ``skip`` (a run resumed
    mid-epoch, possibly saved with another k), which changes no batch."""
    full = count // batch_size
    batch = skip
    if steps_per_call > 1:
        while batch + steps_per_call <= full:
            yield batch * batch_size, steps_per_call, batch_size
            batch += steps_per_call
    while batch * batch_size < count:
        start = batch * batch_size
        yield start, 1, min(batch_size, count - start)
        batch += 1


def epoch_calls(
    data: HostData | DeviceData,
    batch_size: int,
    steps_per_call: int,
    *,
    shuffle: bool,
    generator: np.random.Generator,
    skip: int = 0,
) -> Iterator[Call]:
    """The calls of one epoch from batch ``skip`` (see :func:`call_plan`), their batches cut
    a chunk of calls at a time (:func:`chunk_calls`). The permutation is drawn from
    ``generator`` when iteration starts, as :func:`portable_dl.data.batches` draws it, even
    when no batch is left: the generator then moves on exactly as there."""
    order = shuffled_order(data.count, shuffle, generator)
    plan = list(call_plan(data.count, batch_size, steps_per_call, skip))
    for start, calls, steps, rows in chunk_calls(plan, data.row_bytes):
        for batch in data.cut_calls(order, start, calls, steps, rows):
            yield Call(batch, steps, rows)


def chunk_calls(plan: list[tuple[int, int, int]], row_bytes: int) -> Iterator[tuple[int, int, int, int]]:
    """``(first row, calls, steps, rows per batch)``: the calls of ``plan`` (``(first row,
    steps, rows)`` each, as :func:`call_plan` gives them, contiguous) grouped into runs of
    consecutive calls of the same ``steps`` and ``rows``, each of at most
    :data:`MAX_CHUNK_CALLS` calls and :data:`CHUNK_BYTES` bytes (``row_bytes`` per row), and
    at least one call."""
    index = 0
    while index < len(plan):
        start, steps, rows = plan[index]
        limit = max(1, min(MAX_CHUNK_CALLS, CHUNK_BYTES // max(1, steps * rows * row_bytes)))
        calls = 1
        while calls < limit and index + calls < len(plan) and plan[index + calls][1:] == (steps, rows):
            calls += 1
        yield start, calls, steps, rows
        index += calls


class _PlacedData:
    """What :class:`HostData` and :class:`DeviceData` share: one call's batch is the first of
    :meth:`cut_calls` for one call."""

    def cut_calls(self, order: np.ndarray | None, start: int, calls: int, steps: int, rows: int) -> list:
        raise NotImplementedError

    def cut(self, order: np.ndarray | None, start: int, steps: int, rows: int) -> tuple[Any, Any]:
        """Rows ``start .. start + steps * rows`` of the epoch's ``order`` (None: the given
        order), as ``(b, ...)`` arrays for one step or ``(k, b, ...)`` for k."""
        return self.cut_calls(order, start, 1, steps, rows)[0]


class HostData(_PlacedData):
    """The training set as NumPy arrays, cut and moved one call at a time.

    ``x`` (N, ...) of any dtype, cast to ``dtype_name`` per batch; ``y`` (N, ...) as it goes
    to the device (:func:`portable_dl.fit_data.targets_as_moved`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, backend: Any, dtype_name: str):
        self.x, self.y, self.backend, self.dtype_name = x, y, backend, dtype_name
        self.count = x.shape[0]
        self.row_bytes = _row_bytes(x, y, dtype_name)

    def cut_calls(self, order: np.ndarray | None, start: int, calls: int, steps: int, rows: int) -> list:
        """The batches of ``calls`` consecutive calls from row ``start`` (each as ``cut``
        gives it), gathered and cast in one NumPy operation and moved in one
        ``backend.asarray`` per array."""
        stop = start + calls * steps * rows
        index = order[start:stop] if order is not None else slice(start, stop)
        x, y = self.x[index].astype(self.dtype_name, copy=False), self.y[index]
        return _split_calls(self.backend, x, y, calls, steps, rows, self.backend.asarray)


class DeviceData(_PlacedData):
    """The training set moved to the device once; each call gathers its rows there.

    Per call only the row indices (``steps * rows`` int64) cross to the device, instead of
    the rows themselves."""

    def __init__(self, x: np.ndarray, y: np.ndarray, backend: Any, dtype_name: str):
        self.backend = backend
        self.count = x.shape[0]
        self.row_bytes = _row_bytes(x, y, dtype_name)
        self.x = backend.asarray(x.astype(dtype_name, copy=False))
        self.y = backend.asarray(y)
        self._in_order = np.arange(self.count)  # the rows' indices without shuffling

    def cut_calls(self, order: np.ndarray | None, start: int, calls: int, steps: int, rows: int) -> list:
        """As :meth:`HostData.cut_calls`: one move of the indices and one ``xp.take`` per array."""
        xp = self.backend.xp
        stop = start + calls * steps * rows
        index = self.backend.asarray((order if order is not None else self._in_order)[start:stop])
        x, y = xp.take(self.x, index, axis=0), xp.take(self.y, index, axis=0)
        return _split_calls(self.backend, x, y, calls, steps, rows, lambda array: array)


def _split_calls(backend: Any, x: Any, y: Any, calls: int, steps: int, rows: int, move: Any) -> list:
    """``x`` (calls * steps * rows, ...) and ``y`` alike, NumPy or backend arrays, as the list
    of ``calls`` batches ``(x, y)``, each ``(rows, ...)`` for single steps or ``(steps, rows,
    ...)``: reshaped, moved with ``move``, and split with one ``xp.unstack`` per array (no
    split for a single call)."""
    xp = backend.xp
    batch = (steps, rows) if steps > 1 else (rows,)
    shaped = []
    for array in (x, y):
        inner = tuple(array.shape[1:])
        shape = (*batch, *inner) if calls == 1 else (calls, *batch, *inner)
        shaped.append(move(array.reshape(shape) if isinstance(array, np.ndarray) else xp.reshape(array, shape)))
    if calls == 1:
        return [tuple(shaped)]
    return list(zip(xp.unstack(shaped[0], axis=0), xp.unstack(shaped[1], axis=0)))


def _row_bytes(x: np.ndarray, y: np.ndarray, dtype_name: str) -> int:
    """Bytes of one example as cut: its ``x`` row in ``dtype_name`` and its ``y`` row."""
    try:
        itemsize = np.dtype(dtype_name).itemsize
    except TypeError:  # a dtype NumPy lacks (bfloat16): counted at x's own size
        itemsize = x.dtype.itemsize
    return math.prod(x.shape[1:]) * itemsize + math.prod(y.shape[1:]) * y.dtype.itemsize


def placed_data(
    x: np.ndarray, y: np.ndarray, backend: Any, dtype_name: str, data_on_device: bool | str
) -> HostData | DeviceData:
    """The training set where ``data_on_device`` says (True, False or ``"auto"``, see
    :func:`moves_data`)."""
    if data_on_device == "auto":
        try:
            itemsize = np.dtype(dtype_name).itemsize
        except TypeError:  # a dtype NumPy lacks (bfloat16): counted at x's own size
            itemsize = x.dtype.itemsize
        data_on_device = moves_data(str(backend.device), x.size * itemsize + y.nbytes)
    return (DeviceData if data_on_device else HostData)(x, y, backend, dtype_name)


def moves_data(device: str, nbytes: int) -> bool:
    """What ``data_on_device="auto"`` decides for a training set of ``nbytes`` (x in the
    model's dtype, and y) on ``device``: move it when the device is not the CPU and the set
    takes at most :data:`DEVICE_DATA_LIMIT` bytes.

    Not on the CPU: there the "device" memory is the host's, so there is no copy per step to
    save, only NumPy's gather traded for ``xp.take``; measured on CPUs (MNIST-sized data,
    batches of 10 and 128) that trade was mixed: faster on JAX at batch 10, 2-6 times slower
    per call on TensorFlow (whose ``take`` checks its indices), within noise elsewhere."""
    return not device.lower().startswith("cpu") and nbytes <= DEVICE_DATA_LIMIT
