"""make_train_step(..., steps_per_call=k): k updates in one call give the trajectory of k single steps.

The reference is the single step (steps_per_call=1) called k times on the same batches: another
code path (no scan, no stacking), itself checked against NumPy float64 in test_training.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

from portable_dl.errors import ShapeError
from portable_dl.losses import cross_entropy
from portable_dl.nn import MLP, trainable_mask
from portable_dl.optimizers import SGD, Adam
from portable_dl.train_step import TrainStep, make_train_step
from portable_dl.tree import tree_leaves, tree_paths

K = 3
MODEL = MLP([5, 7, 4])  # small: MLX matmul on a Linux CPU is slow
OPTIMIZERS = {
    "adam": lambda: Adam(0.05),
    "sgd_momentum": lambda: SGD(0.1, momentum=0.9),
}


def loss_fn(params, batch):
    x, y = batch
    return cross_entropy(MODEL.apply(params, x), y)


def stacked_batches(k=K, b=6, seed=0):
    """k distinct batches stacked on a leading axis: x (k, b, 5) float32, y (k, b) int labels.
    Distinct batches make a reordered or repeated batch show in the trajectory."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(k, b, 5)).astype("float32")
    y = rng.integers(0, 4, size=(k, b)).astype("int32")
    return x, y


def run_single_steps(backend, optimizer, compile, x, y, trainable=None):
    step = make_train_step(loss_fn, optimizer, backend, compile=compile, trainable=trainable)
    params = MODEL.init(1, backend)
    state = step.init(params)
    losses = []
    for i in range(x.shape[0]):
        params, state, loss = step(params, state, (backend.asarray(x[i]), backend.asarray(y[i])))
        losses.append(backend.to_numpy(loss))
    return params, state, np.stack(losses)


def assert_same_trees(backend, actual, expected, exact, what):
    assert tree_paths(actual) == tree_paths(expected), what
    for name, a, e in zip(tree_paths(actual), tree_leaves(actual), tree_leaves(expected)):
        a, e = backend.to_numpy(a), backend.to_numpy(e)
        assert a.dtype == e.dtype and a.shape == e.shape, f"{what} {name}"
        if exact:
            assert a.tobytes() == e.tobytes(), f"{what} {name}: not bit-identical"
        else:
            assert_close(a, e, "float32", scale=5, what=f"{what} {name}")


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_k_steps_in_one_call_equal_k_single_steps(backend, optimizer, compile):
    x, y = stacked_batches()
    expected_params, expected_state, expected_losses = run_single_steps(backend, OPTIMIZERS[optimizer](), compile, x, y)
    step = make_train_step(loss_fn, OPTIMIZERS[optimizer](), backend, compile=compile, steps_per_call=K)
    params = MODEL.init(1, backend)
    state = step.init(params)
    params, state, losses = step(params, state, (backend.asarray(x), backend.asarray(y)))

    losses = backend.to_numpy(losses)
    assert losses.shape == (K,)
    # numpy runs the very same operations in the same order: bit-identical.
    exact = backend.name == "numpy"
    if exact:
        assert losses.tobytes() == expected_losses.tobytes()
    else:
        assert_close(losses, expected_losses, "float32", scale=5, what="losses")
    assert_same_trees(backend, params, expected_params, exact, "params")
    assert_same_trees(backend, state, expected_state, exact, "opt_state")
    assert int(backend.to_numpy(state["step"])) == K

    # A second call continues the trajectory: 2k steps in all.
    x2, y2 = stacked_batches(seed=5)
    params, state, losses2 = step(params, state, (backend.asarray(x2), backend.asarray(y2)))
    all_x, all_y = np.concatenate([x, x2]), np.concatenate([y, y2])
    expected_params, _, expected_losses = run_single_steps(backend, OPTIMIZERS[optimizer](), compile, all_x, all_y)
    assert_close(backend.to_numpy(losses2), expected_losses[K:], "float32", scale=5, what="second call losses")
    assert_same_trees(backend, params, expected_params, exact, "params after two calls")


def test_losses_move_between_steps(backend):
    """The k losses are each step's own (not one loss repeated): with lr 0 and distinct batches
    they are the losses of the initial parameters on each batch, computed one by one."""
    x, y = stacked_batches()
    step = make_train_step(loss_fn, SGD(0.0), backend, steps_per_call=K)
    params = MODEL.init(1, backend)
    _, _, losses = step(params, step.init(params), (backend.asarray(x), backend.asarray(y)))
    expected = [
        float(backend.to_numpy(loss_fn(params, (backend.asarray(x[i]), backend.asarray(y[i]))))) for i in range(K)
    ]
    assert len(set(expected)) == K
    assert_close(backend.to_numpy(losses), expected, "float32", what="losses at lr 0")


def test_trainable_mask_with_k_steps(backend):
    x, y = stacked_batches()
    probe = MODEL.init(1, backend)
    mask = trainable_mask(probe, frozen=["layers.0"])
    expected_params, expected_state, expected_losses = run_single_steps(backend, Adam(0.05), True, x, y, mask)
    step = make_train_step(loss_fn, Adam(0.05), backend, trainable=mask, steps_per_call=K)
    params = MODEL.init(1, backend)
    frozen_before = [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(params["layers"][0])]
    params, state, losses = step(params, step.init(params), (backend.asarray(x), backend.asarray(y)))
    assert [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(params["layers"][0])] == frozen_before
    exact = backend.name == "numpy"
    assert_same_trees(backend, params, expected_params, exact, "params")
    assert_same_trees(backend, state, expected_state, exact, "opt_state")
    assert_close(backend.to_numpy(losses), expected_losses, "float32", scale=5, what="losses")


def test_one_step_per_call_is_the_existing_step(backend):
    step = make_train_step(loss_fn, Adam(0.05), backend, steps_per_call=1)
    assert type(step) is TrainStep


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "3", None])
def test_bad_steps_per_call_is_a_value_error_naming_it(backend, bad):
    with pytest.raises(ValueError, match="steps_per_call"):
        make_train_step(loss_fn, Adam(0.05), backend, steps_per_call=bad)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_wrong_leading_length_is_a_shape_error_before_anything_changes(backend, compile):
    x, y = stacked_batches(k=K + 1)
    step = make_train_step(loss_fn, Adam(0.05), backend, compile=compile, steps_per_call=K)
    params = MODEL.init(1, backend)
    state = step.init(params)
    params_before = [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(params)]
    state_before = [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(state)]
    with pytest.raises(ShapeError, match=rf"steps_per_call={K}.*length {K + 1}"):
        step(params, state, (backend.asarray(x), backend.asarray(y)))
    # Only y stacked wrongly: caught too, naming y's leading length.
    x_ok, _ = stacked_batches()
    with pytest.raises(ShapeError, match=rf"steps_per_call={K}.*length {K + 1}"):
        step(params, state, (backend.asarray(x_ok), backend.asarray(y)))
    assert [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(params)] == params_before
    assert [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(state)] == state_before


def test_world_of_several_processes_is_not_yet_supported(backend):
    class TwoRanks:  # the only thing make_train_step reads of a world before refusing
        size = 2

    with pytest.raises(ValueError, match="not yet"):
        make_train_step(loss_fn, Adam(0.05), backend, world=TwoRanks(), steps_per_call=K)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_backend_scan_threads_the_carry_and_stacks_the_outputs(backend, compile):
    """The contract method itself, against NumPy's cumulative sum: a pytree carry, a pytree of
    inputs of two dtypes, a pytree of outputs stacked on a new leading axis, in order."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 3))
    n = np.array([3, -1, 7, 2], dtype="int32")

    def body(carry, x):
        total = carry["total"] + x["a"]
        return {"total": total, "count": carry["count"] + 1}, (2.0 * total, x["n"] * x["n"])

    def run(carry, xs):
        return backend.scan(body, carry, xs)

    run = backend.compile(run) if compile else run
    carry0 = {"total": backend.asarray(np.zeros(3, "float32")), "count": backend.asarray(np.int32(0))}
    carry, (doubled, squares) = run(carry0, {"a": backend.asarray(a.astype("float32")), "n": backend.asarray(n)})
    assert_close(backend.to_numpy(carry["total"]), a.sum(axis=0), "float32", what="carry")
    assert int(backend.to_numpy(carry["count"])) == 4
    assert_close(backend.to_numpy(doubled), 2.0 * np.cumsum(a, axis=0), "float32", what="stacked outputs")
    squares = backend.to_numpy(squares)
    assert squares.dtype == np.int32 and squares.tolist() == [9, 1, 49, 4]


def test_scan_returns_the_carry_in_the_callers_key_order_when_the_body_reorders_it(backend):
    """A body that rebuilds a dict carry in another key order (as a framework's own pytrees,
    which sort keys, do) still gives the carry back in the caller's order, each value under its
    own key. Reference: the same loop by hand in NumPy."""
    xs = np.array([1.0, 2.0, 4.0], dtype="float32")

    def body(carry, x):
        # "zeta" first here, "alpha" first in the caller's carry
        return {"zeta": carry["zeta"] * 2.0, "alpha": carry["alpha"] + x}, carry["alpha"]

    compiled = backend.compile(lambda carry, xs_: backend.scan(body, carry, xs_))
    carry = {"alpha": backend.asarray(np.float32(0.5)), "zeta": backend.asarray(np.float32(3.0))}
    for run in (lambda c, x: backend.scan(body, c, x), compiled):
        out, ys = run(carry, backend.asarray(xs))
        assert list(out) == ["alpha", "zeta"]
        assert float(backend.to_numpy(out["alpha"])) == 0.5 + 1.0 + 2.0 + 4.0
        assert float(backend.to_numpy(out["zeta"])) == 3.0 * 8
        np.testing.assert_array_equal(backend.to_numpy(ys), np.array([0.5, 1.5, 3.5], dtype="float32"))
