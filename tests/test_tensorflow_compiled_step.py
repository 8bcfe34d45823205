"""A compiled step keeps the pure contract while its calls skip ``tf.function``'s dispatch.

TensorFlow's ``Backend.compile`` calls the traced function with a flat list of tensors
(backends/tensorflow/compiled_step.py) and picks the trace by its own key. The first tests hold
every backend's compiled step to the contract that key must not break: a new batch shape, dtype
or tree gives the right numbers (a new trace, never a trace that does not fit); an old params
dict stays valid and unchanged after a step; a step that raises leaves its inputs as they were;
the trajectory is the eager step's. References are NumPy float64 and the eager step (another code
path: no tracing, no XLA). The last tests look at the TensorFlow machinery itself: how many
traces it makes, the arguments it leaves to ``tf.function``, gradients through it.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

from portable_dl.errors import ShapeError
from portable_dl.losses import cross_entropy
from portable_dl.nn import MLP
from portable_dl.optimizers import Adam
from portable_dl.train_step import make_train_step
from portable_dl.tree import tree_leaves, tree_map, tree_paths

MODEL = MLP([5, 7, 4])  # small: MLX matmul on a Linux CPU is slow


def loss_fn(params, batch):
    x, y = batch
    return cross_entropy(MODEL.apply(params, x), y)


def batch_of(backend, size, seed, dtype="float32"):
    """``size`` examples: x (size, 5) normal, y (size,) int32 labels in [0, 4)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 5)).astype(dtype)
    y = rng.integers(0, 4, size=size).astype("int32")
    return backend.asarray(x), backend.asarray(y)


def as_numpy(backend, tree):
    """The leaves as NumPy arrays, ordered by their paths: dicts are matched by key, and a
    compiler may hand a dict back in another key order (``jax.jit`` sorts them)."""
    named = sorted(zip(tree_paths(tree), tree_leaves(tree)), key=lambda item: item[0])
    return [np.array(backend.to_numpy(leaf)) for _, leaf in named]


# --------------------------------------------------------------- every backend's compile
def weighted_sums_numpy(tree, scale):
    """The float64 reference of the function under test below."""
    leaves = [np.asarray(leaf, dtype=np.float64) for leaf in tree_leaves(tree)]
    return {
        "total": scale * sum((index + 1) * leaf.sum() for index, leaf in enumerate(leaves)),
        "first": 2.0 * leaves[0],
    }


def test_compiled_function_retraces_for_a_new_shape_dtype_tree_and_python_scalar(backend):
    xp = backend.xp

    def f(tree, scale):
        leaves = tree_leaves(tree)
        total = sum(float(index + 1) * xp.sum(leaf) for index, leaf in enumerate(leaves))
        return {"total": total * scale, "first": leaves[0] * 2.0}

    compiled = backend.compile(f)
    rng = np.random.default_rng(3)
    a, b, c = (rng.normal(size=shape) for shape in [(2, 3), (3,), (4, 1)])
    calls = [
        ({"a": a, "b": b}, 1.5, "float32"),
        ({"a": a[:1], "b": b}, 1.5, "float32"),  # a new shape
        ({"a": c, "b": b[:2]}, 1.5, "float32"),  # other shapes again
        ({"a": a, "b": b}, -0.5, "float32"),  # a new Python scalar
        ({"a": a, "b": [b, c]}, 1.5, "float32"),  # a new tree
        ({"a": a, "b": (b, c)}, 1.5, "float32"),  # a tuple where the last had a list
        ({"a": a, "b": b}, 1.5, "float64"),  # a new dtype
        ({"a": a, "b": b}, 1.5, "float32"),  # the first call again
    ]
    for tree, scale, dtype in calls:
        if not backend.supports(dtype):
            continue
        expected = weighted_sums_numpy(tree, scale)
        got = compiled(tree_map(lambda leaf: backend.asarray(leaf.astype(dtype)), tree), scale)
        what = f"{list(tree)} {[np.shape(v) for v in tree_leaves(tree)]} scale {scale} {dtype}"
        assert sorted(got) == ["first", "total"], what
        assert backend.dtype_name(got["first"].dtype) == dtype, what
        assert_close(backend.to_numpy(got["total"]), expected["total"], dtype, what=what)
        assert_close(backend.to_numpy(got["first"]), expected["first"], dtype, what=what)


def test_compiled_step_keeps_old_params_valid_and_follows_the_eager_trajectory_across_batch_sizes(backend):
    # Two batch sizes, as a last partial batch gives: the compiled step retraces for the second.
    batches = [batch_of(backend, size, seed) for seed, size in enumerate([6, 6, 3, 6])]
    results = {}
    for compile in (False, True):
        step = make_train_step(loss_fn, Adam(0.05), backend, compile=compile)
        params = MODEL.init(1, backend)
        state = step.init(params)
        history = [(params, state, as_numpy(backend, params), as_numpy(backend, state))]
        losses = []
        for batch in batches:
            params, state, loss = step(params, state, batch)
            losses.append(float(backend.to_numpy(loss)))
            history.append((params, state, as_numpy(backend, params), as_numpy(backend, state)))
        # Every params and state a step was given or gave is still readable and unchanged.
        for index, (old_params, old_state, params_then, state_then) in enumerate(history):
            for now, then in zip(
                as_numpy(backend, old_params) + as_numpy(backend, old_state), params_then + state_then
            ):
                assert now.tobytes() == then.tobytes(), f"compile={compile}: the arrays of step {index} changed"
        assert not np.array_equal(history[0][2][0], history[-1][2][0]), "the steps moved nothing"
        results[compile] = (losses, history[-1][2], history[-1][3])
    eager, compiled = results[False], results[True]
    assert_close(compiled[0], eager[0], "float32", what="losses")
    for name, got, expected in zip(sorted(tree_paths(MODEL.init(1, backend))), compiled[1], eager[1]):
        assert_close(got, expected, "float32", what=f"params {name}")
    for got, expected in zip(compiled[2], eager[2]):
        assert_close(got, expected, "float32", what="optimizer state")


def test_a_compiled_step_that_raises_leaves_its_inputs_unchanged_and_usable(backend):
    step = make_train_step(loss_fn, Adam(0.05), backend, compile=True)
    params = MODEL.init(1, backend)
    state = step.init(params)
    good = batch_of(backend, 6, 0)
    params, state, _ = step(params, state, good)  # one good call first: a trace exists
    before = as_numpy(backend, (params, state))
    rng = np.random.default_rng(1)
    wrong = (backend.asarray(rng.normal(size=(6, 3)).astype("float32")), good[1])  # 3 features, not 5
    with pytest.raises(ShapeError, match=r"Dense\(5, 7\) needs inputs of shape \(N, 5\), got \(6, 3\)"):
        step(params, state, wrong)
    assert [a.tobytes() for a in as_numpy(backend, (params, state))] == [a.tobytes() for a in before]
    # The same inputs still step, to what a fresh step from them gives.
    fresh = make_train_step(loss_fn, Adam(0.05), backend, compile=False)
    new_params, _, loss = step(params, state, good)
    expected_params, _, expected_loss = fresh(params, state, good)
    assert_close(backend.to_numpy(loss), backend.to_numpy(expected_loss), "float32", what="loss after the error")
    for got, expected in zip(as_numpy(backend, new_params), as_numpy(backend, expected_params)):
        assert_close(got, expected, "float32", what="params after the error")


# ------------------------------------------------------------- TensorFlow's flat calls
@pytest.fixture
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture
def flat_compiled(tf):
    from portable_dl.backends.tensorflow.compiled_step import FlatCompiled

    return FlatCompiled


def test_one_trace_per_structure_dtype_and_shape_and_none_for_a_repeat(tf, flat_compiled):
    traced = []

    def f(params, batch):
        traced.append(1)  # runs only while TensorFlow traces
        return {"y": tf.matmul(batch, params["W"]) + params["b"], "n": batch.shape[0]}

    compiled = flat_compiled(f)
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 2)), rng.normal(size=(2,))
    params = {"W": tf.constant(W, tf.float32), "b": tf.constant(b, tf.float32)}
    for size, expected_traces in [(4, 1), (4, 1), (5, 2), (4, 2), (1, 3)]:
        x = rng.normal(size=(size, 3))
        result = compiled(params, tf.constant(x, tf.float32))
        np.testing.assert_allclose(result["y"].numpy(), x @ W + b, rtol=1e-5, atol=1e-6)
        # A Python value computed from a shape comes back as the value of this call's shape.
        assert result["n"] == size
        assert compiled.trace_count == expected_traces
    params64 = {"W": tf.constant(W, tf.float64), "b": tf.constant(b, tf.float64)}
    x = rng.normal(size=(4, 3))
    result = compiled(params64, tf.constant(x, tf.float64))
    assert result["y"].dtype == tf.float64 and compiled.trace_count == 4
    np.testing.assert_allclose(result["y"].numpy(), x @ W + b, rtol=1e-12)
    calls_traced = len(traced)
    compiled(params64, tf.constant(x, tf.float64))
    assert len(traced) == calls_traced, "a repeated call traced again"


def test_a_dict_in_another_key_order_is_another_tree(tf, flat_compiled):
    # tree_flatten keeps a dict's insertion order, and the flat call hands the tensors over in
    # that order: the same keys in another order must not reuse the first trace's positions.
    def f(tree):
        leaves = tree_leaves(tree)
        return {"weighted": leaves[0] * 1.0 + leaves[1] * 10.0, "keys": list(tree)}

    compiled = flat_compiled(f)
    a, b = tf.constant([1.0, 2.0]), tf.constant([-3.0, 0.5])
    first = compiled({"a": a, "b": b})
    second = compiled({"b": b, "a": a})
    np.testing.assert_array_equal(first["weighted"].numpy(), [-29.0, 7.0])  # a + 10 b
    np.testing.assert_array_equal(second["weighted"].numpy(), [7.0, 20.5])  # b + 10 a
    assert first["keys"] == ["a", "b"] and second["keys"] == ["b", "a"]
    assert compiled.trace_count == 2


def test_an_argument_returned_as_it_is_comes_back_as_the_same_tensor(tf, flat_compiled):
    def f(frozen, trained):
        return {"frozen": frozen, "trained": trained * 3.0, "none": None, "tag": "step"}

    frozen, trained = tf.constant([1.0, -2.0]), tf.constant([0.5, 4.0])
    result = flat_compiled(f)(frozen, trained)
    assert result["frozen"] is frozen
    np.testing.assert_array_equal(result["trained"].numpy(), [1.5, 12.0])
    assert result["none"] is None and result["tag"] == "step"
    assert list(result) == ["frozen", "trained", "none", "tag"]


def test_arguments_it_cannot_key_go_through_tf_function(tf, flat_compiled):
    def f(a, b):
        return a * 2.0 + b

    compiled = flat_compiled(f)
    variable = tf.Variable([1.0, 2.0])
    np.testing.assert_array_equal(compiled(variable, tf.constant([0.5, 0.25])).numpy(), [2.5, 4.25])
    np.testing.assert_array_equal(
        compiled(np.array([3.0, 1.0], np.float32), tf.constant([1.0, 1.0])).numpy(), [7.0, 3.0]
    )
    assert compiled.trace_count == 0
    # Inside another traced function the call is traced into it.
    outer = tf.function(lambda a, b: compiled(a, b) + 1.0)
    np.testing.assert_array_equal(outer(tf.constant([1.0, -1.0]), tf.constant([0.0, 0.0])).numpy(), [3.0, -1.0])


def test_a_gradient_tape_sees_through_a_flat_call(tf, flat_compiled):
    compiled = flat_compiled(lambda w, x: {"loss": tf.reduce_sum(tf.sin(w) * x)})
    w, x = tf.constant([0.3, -1.2, 2.0]), tf.constant([1.0, 2.0, -3.0])
    with tf.GradientTape() as tape:
        tape.watch(w)
        loss = compiled(w, x)["loss"]
    # d/dw sum(sin(w) x) = cos(w) x, by hand
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), np.cos([0.3, -1.2, 2.0]) * [1.0, 2.0, -3.0], rtol=1e-6)


def test_a_trace_that_raises_leaves_no_trace_behind(tf, flat_compiled):
    def f(x):
        if x.shape[-1] != 2:
            raise ShapeError(f"needs 2 columns, got {x.shape[-1]}")
        return x * 2.0

    compiled = flat_compiled(f)
    with pytest.raises(ShapeError, match="needs 2 columns, got 3"):
        compiled(tf.ones((1, 3)))
    assert compiled.trace_count == 0
    np.testing.assert_array_equal(compiled(tf.constant([[1.0, -4.0]])).numpy(), [[2.0, -8.0]])
    with pytest.raises(ShapeError, match="needs 2 columns, got 3"):
        compiled(tf.ones((1, 3)))
    assert compiled.trace_count == 1


def test_results_of_every_nesting_come_back_whole_and_in_order(tf, flat_compiled):
    # The result is rebuilt by an expression written out per trace; nestings too deep for one
    # Python expression (over 200 brackets) take the general path. Both must give f's nesting
    # exactly: container types, dict key order and keys of any type, Python values, None.
    def f(x, y, depth):
        deep = x * 4.0
        for _ in range(depth):
            deep = [deep]
        return (
            {2: x + y, "b": (), "a": [], "z": {}, (1, "k"): (y,), "none": None},
            [x * y, "tag", 0.25, (x,)],
            deep,
        )

    compiled = flat_compiled(f)
    x, y = tf.constant([1.5, -2.0]), tf.constant([4.0, 0.5])
    for depth in (3, 260):
        mapping, sequence, deep = compiled(x, y, depth)
        assert list(mapping) == [2, "b", "a", "z", (1, "k"), "none"]
        np.testing.assert_array_equal(mapping[2].numpy(), [5.5, -1.5])
        assert mapping["b"] == () and mapping["a"] == [] and mapping["z"] == {} and mapping["none"] is None
        assert type(mapping[(1, "k")]) is tuple and len(mapping[(1, "k")]) == 1 and mapping[(1, "k")][0] is y
        assert type(sequence) is list and sequence[1:3] == ["tag", 0.25] and sequence[3][0] is x
        np.testing.assert_array_equal(sequence[0].numpy(), [6.0, -1.0])
        for _ in range(depth):
            assert type(deep) is list and len(deep) == 1
            deep = deep[0]
        np.testing.assert_array_equal(deep.numpy(), [6.0, -8.0])
    assert compiled.trace_count == 2


def test_a_tape_or_accumulator_watching_a_derived_tensor_records_the_flat_call(tf, flat_compiled):
    # A call that no tape can record takes a shorter path; a tensor computed from a watched one
    # must still be recorded, in reverse and in forward mode.
    compiled = flat_compiled(lambda v, x: {"loss": tf.reduce_sum(v * v * x)})
    w, x = tf.constant([0.5, -1.5, 3.0]), tf.constant([2.0, -1.0, 0.25])
    # loss = sum((3 w)^2 x): d loss / dw = 18 w x, by hand
    with tf.GradientTape() as tape:
        tape.watch(w)
        loss = compiled(w * 3.0, x)["loss"]
    w_by_x = np.array([0.5, -1.5, 3.0]) * [2.0, -1.0, 0.25]
    np.testing.assert_allclose(loss.numpy(), 9.0 * (0.25 * 2.0 - 2.25 + 9.0 * 0.25), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), 18.0 * w_by_x, rtol=1e-6)
    tangent = tf.constant([1.0, 0.0, -2.0])
    with tf.autodiff.ForwardAccumulator(w, tangent) as accumulator:
        loss = compiled(w * 3.0, x)["loss"]
    # the directional derivative: sum(18 w x t) = 18 (0.5 * 2 * 1 + 3 * 0.25 * -2)
    np.testing.assert_allclose(accumulator.jvp(loss).numpy(), 18.0 * (1.0 - 1.5), rtol=1e-6)
    # with nothing watching, the same numbers
    np.testing.assert_allclose(compiled(w * 3.0, x)["loss"].numpy(), loss.numpy(), rtol=1e-7)
