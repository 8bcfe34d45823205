"""fit's batches cut a chunk of calls at a time (fit_batches.chunk_calls, cut_calls): the same
batches, bit for bit, in the same order, however the calls are grouped.

The references are the batches cut by hand in NumPy from the seeded permutation, and chunk
boundaries worked out by hand from the byte and call limits.
"""

from __future__ import annotations

import numpy as np
import pytest

from portable_dl import fit_batches
from portable_dl.data import shuffled_order
from portable_dl.fit_batches import DeviceData, HostData, call_plan, chunk_calls, epoch_calls
from portable_dl.losses import cross_entropy
from portable_dl.nn import MLP
from portable_dl.optimizers import Adam
from portable_dl.training import fit
from portable_dl.tree import tree_leaves

COUNT, BATCH = 23, 4  # 5 full batches and a short one of 3


def classification_data(count=COUNT, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, 5)).astype("float32"), rng.integers(0, 4, size=count)


# ------------------------------------------------------------------ grouping, by hand
def test_chunks_are_runs_of_one_call_shape(monkeypatch):
    monkeypatch.setattr(fit_batches, "CHUNK_BYTES", 1 << 20)
    # k = 3: one call of 3 stacked batches, two single full batches, the short one.
    plan = list(call_plan(COUNT, BATCH, 3))
    assert list(chunk_calls(plan, 10)) == [(0, 1, 3, 4), (12, 2, 1, 4), (20, 1, 1, 3)]
    # Two stacked calls in a row share a chunk; single steps never join them.
    plan = list(call_plan(30, 2, 3))  # 15 batches of 2: 5 calls of 3
    assert list(chunk_calls(plan, 10)) == [(0, 5, 3, 2)]
    assert list(chunk_calls([], 10)) == []


def test_chunks_respect_the_byte_and_call_limits(monkeypatch):
    plan = list(call_plan(40, 4, 1))  # 10 calls of 4 rows
    monkeypatch.setattr(fit_batches, "CHUNK_BYTES", 120)  # 3 calls of 4 rows of 10 bytes
    assert list(chunk_calls(plan, 10)) == [(0, 3, 1, 4), (12, 3, 1, 4), (24, 3, 1, 4), (36, 1, 1, 4)]
    monkeypatch.setattr(fit_batches, "CHUNK_BYTES", 119)  # 2 calls
    assert [calls for _, calls, _, _ in chunk_calls(plan, 10)] == [2, 2, 2, 2, 2]
    monkeypatch.setattr(fit_batches, "CHUNK_BYTES", 1)  # a call larger than the limit stays whole, alone
    assert [calls for _, calls, _, _ in chunk_calls(plan, 10)] == [1] * 10
    monkeypatch.setattr(fit_batches, "CHUNK_BYTES", 1 << 20)
    monkeypatch.setattr(fit_batches, "MAX_CHUNK_CALLS", 4)
    assert list(chunk_calls(plan, 10)) == [(0, 4, 1, 4), (16, 4, 1, 4), (32, 2, 1, 4)]


def test_row_bytes_count_x_in_the_model_dtype_and_y():
    x, y = np.zeros((6, 2, 3), dtype=np.float64), np.zeros((6,), dtype=np.int64)
    assert HostData(x, y, None, "float32").row_bytes == 2 * 3 * 4 + 8


# ------------------------------------------------------------------ the same batches
@pytest.mark.parametrize("place", [HostData, DeviceData], ids=["host", "device"])
@pytest.mark.parametrize("steps_per_call", [1, 2])
@pytest.mark.parametrize("max_calls", [1, 2, 64])
def test_epoch_calls_cut_the_batches_of_the_permutation(backend, monkeypatch, place, steps_per_call, max_calls):
    monkeypatch.setattr(fit_batches, "MAX_CHUNK_CALLS", max_calls)
    x, y = classification_data()
    data = place(x, y, backend, "float32")
    order = shuffled_order(COUNT, True, np.random.default_rng(2))
    calls = list(epoch_calls(data, BATCH, steps_per_call, shuffle=True, generator=np.random.default_rng(2)))
    assert [(call.steps, call.examples) for call in calls] == [
        (steps, rows) for _, steps, rows in call_plan(COUNT, BATCH, steps_per_call)
    ]
    start = 0
    for call in calls:
        rows = order[start : start + call.steps * call.examples]
        expected_x, expected_y = x[rows], y[rows]
        if call.steps > 1:
            expected_x = expected_x.reshape(call.steps, call.examples, 5)
            expected_y = expected_y.reshape(call.steps, call.examples)
        bx, by = backend.to_numpy(call.batch[0]), backend.to_numpy(call.batch[1])
        assert bx.dtype == np.float32 and bx.shape == expected_x.shape and bx.tobytes() == expected_x.tobytes()
        assert by.shape == expected_y.shape and np.array_equal(by, expected_y)
        start += call.steps * call.examples
    assert start == COUNT


def test_a_chunk_cut_at_once_is_its_calls_cut_one_by_one(backend):
    x, y = classification_data()
    order = shuffled_order(COUNT, True, np.random.default_rng(4))
    for data in (HostData(x, y, backend, "float32"), DeviceData(x, y, backend, "float32")):
        together = data.cut_calls(order, 4, 3, 1, BATCH)
        for index, (bx, by) in enumerate(together):
            alone_x, alone_y = data.cut(order, 4 + index * BATCH, 1, BATCH)
            assert backend.to_numpy(bx).tobytes() == backend.to_numpy(alone_x).tobytes()
            assert np.array_equal(backend.to_numpy(by), backend.to_numpy(alone_y))
            assert tuple(bx.shape) == (BATCH, 5) and tuple(by.shape) == (BATCH,)


def test_fit_gives_the_same_run_however_its_calls_are_chunked(backend, monkeypatch):
    x, y = classification_data(61, seed=1)  # 15 full batches and one of 1
    model = MLP([5, 7, 4])

    def run():
        return fit(
            model,
            model.init(1, backend),
            cross_entropy,
            Adam(0.05),
            backend,
            x,
            y,
            epochs=2,
            batch_size=BATCH,
            seed=3,
            verbose=0,
            data_on_device=False,
        )

    chunked = run()
    monkeypatch.setattr(fit_batches, "MAX_CHUNK_CALLS", 1)  # every call cut alone, as before chunks
    alone = run()
    # The same batches in the same order through the same step: bit for bit on NumPy; elsewhere
    # within float32 rounding (a compiler's cache may hand the second run another kernel, as
    # torch.compile does once it has seen the short batch).
    exact = backend.name == "numpy"
    assert chunked.history["loss"] == alone.history["loss"] or not exact
    np.testing.assert_allclose(chunked.history["loss"], alone.history["loss"], rtol=1e-6, atol=0)
    for a, b in zip(tree_leaves(chunked.params), tree_leaves(alone.params)):
        a, b = backend.to_numpy(a), backend.to_numpy(b)
        assert a.tobytes() == b.tobytes() or not exact
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
