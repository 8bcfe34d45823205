"""The step calls of one :func:`portable_dl.fit` epoch, and the batches each one takes.

An epoch is the seeded permutation of the N examples cut into batches of ``batch_size``
(the last one short), exactly as :func:`portable_dl.data.batches` cuts it. With
``steps_per_call=k`` the calls are (:func:`call_plan`): k consecutive full batches stacked
into one call of the k-step function, ``(k, b, ...)``, as long as k full batches are left;
then one single step per batch for the rest (the full batches left over and the short last
one). Every call takes the same batches, in the same order, as k = 1 does.

The batches are cut where the data lives (:func:`placed_data` decides; ``"auto"`` moves
the data to an accelerator, never to the CPU, see :func:`moves_data`):

- :class:`HostData`: the NumPy arrays stay on the host; each call's rows are gathered and
  cast in NumPy and moved with ``backend.asarray`` (one host-to-device copy per call).
- :class:`DeviceData`: ``x`` and ``y`` are moved to the device once per fit call; each
  call moves only its row indices and gathers the rows there with ``xp.take``. The rows are
  copied, not computed, so the batches are bit-identical to the host path's.

This module imports no framework.
"""

from __future__ import annotations

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
]

#: ``data_on_device="auto"`` moves the training set to a device other than the CPU when ``x``
#: (in the model's dtype) and ``y`` take at most this many bytes together. A fixed figure
#: because the Backend contract does not report the device's free memory; 1 GiB leaves room
#: for the model and its activations on any accelerator fit runs on, and holds MNIST
#: (60000 x 784 float32, 188 MB) five times.
DEVICE_DATA_LIMIT = 1 << 30


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
    """The calls of one epoch from batch ``skip`` (see :func:`call_plan`). The permutation is
    drawn from ``generator`` when iteration starts, as :func:`portable_dl.data.batches` draws
    it, even when no batch is left: the generator then moves on exactly as there."""
    order = shuffled_order(data.count, shuffle, generator)
    for start, steps, rows in call_plan(data.count, batch_size, steps_per_call, skip):
        yield Call(data.cut(order, start, steps, rows), steps, rows)


class HostData:
    """The training set as NumPy arrays, cut and moved one call at a time.

    ``x`` (N, ...) of any dtype, cast to ``dtype_name`` per batch; ``y`` (N, ...) as it goes
    to the device (:func:`portable_dl.fit_data.targets_as_moved`)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, backend: Any, dtype_name: str):
        self.x, self.y, self.backend, self.dtype_name = x, y, backend, dtype_name
        self.count = x.shape[0]

    def cut(self, order: np.ndarray | None, start: int, steps: int, rows: int) -> tuple[Any, Any]:
        """Rows ``start .. start + steps * rows`` of the epoch's ``order`` (None: the given
        order), as ``(b, ...)`` arrays for one step or ``(k, b, ...)`` for k."""
        stop = start + steps * rows
        index = order[start:stop] if order is not None else slice(start, stop)
        x, y = self.x[index].astype(self.dtype_name, copy=False), self.y[index]
        if steps > 1:
            x, y = x.reshape((steps, rows, *x.shape[1:])), y.reshape((steps, rows, *y.shape[1:]))
        return self.backend.asarray(x), self.backend.asarray(y)


class DeviceData:
    """The training set moved to the device once; each call gathers its rows there.

    Per call only the row indices (``steps * rows`` int64) cross to the device, instead of
    the rows themselves."""

    def __init__(self, x: np.ndarray, y: np.ndarray, backend: Any, dtype_name: str):
        self.backend = backend
        self.count = x.shape[0]
        self.x = backend.asarray(x.astype(dtype_name, copy=False))
        self.y = backend.asarray(y)
        self._inner_x, self._inner_y = tuple(x.shape[1:]), tuple(y.shape[1:])
        self._in_order = np.arange(self.count)  # the rows' indices without shuffling

    def cut(self, order: np.ndarray | None, start: int, steps: int, rows: int) -> tuple[Any, Any]:
        """As :meth:`HostData.cut`, gathered on the device with ``xp.take``."""
        xp = self.backend.xp
        stop = start + steps * rows
        index = self.backend.asarray((order if order is not None else self._in_order)[start:stop])
        x, y = xp.take(self.x, index, axis=0), xp.take(self.y, index, axis=0)
        if steps > 1:
            x, y = xp.reshape(x, (steps, rows, *self._inner_x)), xp.reshape(y, (steps, rows, *self._inner_y))
        return x, y


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
