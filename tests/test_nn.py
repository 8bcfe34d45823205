"""Layers, initializers, parameter counting and freezing on every backend: forward values
and gradients against NumPy float64, bit-identical initial weights across backends,
initializer statistics within their sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FINITE_DIFFERENCE_TOLERANCE, assert_matches, central_difference, float_dtypes, ulps

import portable_dl
from portable_dl import losses, nn
from portable_dl.tree import tree_leaves, tree_paths


def numpy_params(backend, params):
    return backend.tree_to_numpy(params)


def reference_mlp(params, x):
    """relu hidden layers, linear output, in NumPy float64."""
    layers = params["layers"]
    for index, layer in enumerate(layers):
        x = x @ layer["W"].astype(np.float64) + layer["b"].astype(np.float64)
        if index < len(layers) - 1:
            x = x * (x > 0)
    return x


# ------------------------------------------------------------------- layers
def test_dense_forward_and_gradient(backend):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(4, 3))
    upstream = rng.normal(size=(4, 2))
    layer = nn.Dense(3, 2)
    xp = backend.xp
    for dtype in float_dtypes(backend):
        params = layer.init(0, backend, dtype)
        assert set(params) == {"W", "b"} and tuple(params["W"].shape) == (3, 2) and tuple(params["b"].shape) == (2,)
        values = numpy_params(backend, params)
        np.testing.assert_array_equal(values["b"], np.zeros(2, dtype=dtype))
        xx = backend.asarray(x, dtype)
        y = layer.apply(params, xx)
        assert backend.dtype_name(y.dtype) == dtype
        x64 = x.astype(dtype).astype(np.float64)
        assert_matches(backend.to_numpy(y), x64 @ values["W"].astype(np.float64), dtype)
        g = backend.asarray(upstream, dtype)
        _, grads = backend.value_and_grad(lambda p: xp.sum(xp.multiply(layer.apply(p, xx), g)))(params)
        u64 = upstream.astype(dtype).astype(np.float64)
        assert_matches(backend.to_numpy(grads["W"]), x64.T @ u64, dtype)  # dL/dW = x^T g
        assert_matches(backend.to_numpy(grads["b"]), u64.sum(axis=0), dtype)  # dL/db = sum_n g


def test_dense_without_bias(backend):
    layer = nn.Dense(3, 2, bias=False)
    params = layer.init(1, backend)
    assert set(params) == {"W"}
    x = np.ones((2, 3), dtype="float32")
    y = backend.to_numpy(layer.apply(params, backend.asarray(x)))
    np.testing.assert_allclose(y, x @ backend.to_numpy(params["W"]), rtol=ulps("float32", 8))


def test_mlp_forward_and_gradient_against_finite_differences(backend):
    rng = np.random.default_rng(11)
    model = nn.MLP([3, 5, 4, 2])
    assert model.layer_sizes == (3, 5, 4, 2) and model.in_features == 3 and model.out_features == 2
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    for dtype in float_dtypes(backend):
        params = model.init(3, backend, dtype)
        values = numpy_params(backend, params)
        out = model.apply(params, backend.asarray(x, dtype))
        assert tuple(out.shape) == (6, 2)
        assert_matches(backend.to_numpy(out), reference_mlp(values, x.astype(dtype).astype(np.float64)), dtype)
        if dtype != "float64":
            continue
        xx, yy = backend.asarray(x, dtype), backend.asarray(y, dtype)
        _, grads = backend.value_and_grad(lambda p: losses.mse(model.apply(p, xx), yy))(params)
        for index in range(3):
            for key in ("W", "b"):

                def loss_of(value, index=index, key=key):
                    changed = {"layers": [dict(layer) for layer in values["layers"]]}
                    changed["layers"][index][key] = value
                    return np.mean((reference_mlp(changed, x) - y) ** 2)

                expected = central_difference(loss_of, values["layers"][index][key])
                np.testing.assert_allclose(
                    backend.to_numpy(grads["layers"][index][key]), expected, atol=FINITE_DIFFERENCE_TOLERANCE
                )


def test_mlp_activations(backend):
    model = nn.MLP([2, 3, 2], activation="tanh", output_activation="softmax")
    params = model.init(4, backend, "float32")
    values = numpy_params(backend, params)
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    hidden = np.tanh(x @ values["layers"][0]["W"] + values["layers"][0]["b"])
    logits = hidden @ values["layers"][1]["W"] + values["layers"][1]["b"]
    expected = np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
    assert_matches(backend.to_numpy(model.apply(params, backend.asarray(x, "float32"))), expected, "float32")


def test_wrong_input_width_is_a_shape_error(backend):
    model = nn.MLP([3, 4, 2])
    params = model.init(0, backend)
    with pytest.raises(portable_dl.ShapeError, match=r"\(N, 3\).*\(5, 4\)"):
        model.apply(params, backend.asarray(np.zeros((5, 4), dtype="float32")))
    with pytest.raises(portable_dl.ShapeError, match=r"W of shape \(3, 2\)"):
        nn.Dense(3, 2).apply(
            {"W": params["layers"][0]["W"], "b": params["layers"][0]["b"]},
            backend.asarray(np.zeros((5, 3), dtype="float32")),
        )


def test_invalid_layer_arguments():
    with pytest.raises(ValueError, match="in_features"):
        nn.Dense(0, 2)
    with pytest.raises(ValueError, match="sizes"):
        nn.MLP([3])
    with pytest.raises(ValueError, match="unknown activation"):
        nn.MLP([3, 2], activation="swish2")
    with pytest.raises(ValueError, match="unknown initializer"):
        nn.Dense(3, 2, init="orthogonal2")


def test_compiled_step_matches_eager(backend):
    model = nn.MLP([3, 4, 2])
    params = model.init(5, backend)
    x = backend.asarray(np.random.default_rng(12).normal(size=(4, 3)), "float32")
    y = backend.asarray(np.array([0, 1, 1, 0]))
    step = backend.value_and_grad(lambda p, x_, y_: losses.cross_entropy(model.apply(p, x_), y_))
    (value, grads), (eager_value, eager_grads) = backend.compile(step)(params, x, y), step(params, x, y)
    assert_matches(backend.to_numpy(value), backend.to_numpy(eager_value), "float32", count=8)
    for leaf, eager_leaf in zip(tree_leaves(grads), tree_leaves(eager_grads)):
        assert_matches(backend.to_numpy(leaf), backend.to_numpy(eager_leaf), "float32", count=8)


# ------------------------------------------------------- reproducible weights
@pytest.mark.parametrize(
    "init", ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "normal"]
)
def test_same_seed_same_weights_on_every_backend(backend, init):
    """The same seed gives bit-identical weights to the NumPy backend's, and to drawing
    from numpy.random.default_rng directly, layer after layer."""
    model = nn.MLP([4, 3, 2], init=init)
    reference = portable_dl.backend("numpy")
    initializer = nn.get_initializer(init)
    rng = np.random.default_rng(7)
    drawn = [initializer(rng, (4, 3), 4, 3), initializer(rng, (3, 2), 3, 2)]
    for dtype in float_dtypes(backend):
        params = numpy_params(backend, model.init(7, backend, dtype))
        expected = numpy_params(reference, model.init(7, reference, dtype))
        for layer, expected_layer, weights in zip(params["layers"], expected["layers"], drawn):
            assert layer["W"].dtype == np.dtype(dtype)
            np.testing.assert_array_equal(layer["W"], expected_layer["W"])
            np.testing.assert_array_equal(layer["W"], weights.astype(dtype))
            np.testing.assert_array_equal(layer["b"], np.zeros_like(layer["b"]))


# --------------------------------------------------------------- initializers
FAN_IN, FAN_OUT = 300, 200
SAMPLES = FAN_IN * FAN_OUT
SIGMAS = 5  # a correct initializer fails a 5-sigma bound about once in 1.7 million runs

#: name -> (expected standard deviation, is the distribution uniform)
EXPECTED_SCALE = {
    "he_normal": (math.sqrt(2 / FAN_IN), False),
    "he_uniform": (math.sqrt(2 / FAN_IN), True),  # limit sqrt(6/fan_in): variance limit^2/3
    "glorot_normal": (math.sqrt(2 / (FAN_IN + FAN_OUT)), False),
    "glorot_uniform": (math.sqrt(2 / (FAN_IN + FAN_OUT)), True),
    "lecun_normal": (math.sqrt(1 / FAN_IN), False),
    "normal": (0.01, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SCALE))
def test_initializer_statistics(name):
    std, uniform = EXPECTED_SCALE[name]
    values = nn.get_initializer(name)(np.random.default_rng(13), (FAN_IN, FAN_OUT), FAN_IN, FAN_OUT)
    assert values.shape == (FAN_IN, FAN_OUT) and values.dtype == np.float64
    # The sample mean has standard error std/sqrt(n); the sample standard deviation has
    # standard error std * sqrt((kurtosis - 1) / (4 n)): kurtosis 3 (normal), 9/5 (uniform).
    kurtosis = 9 / 5 if uniform else 3.0
    assert abs(values.mean()) < SIGMAS * std / math.sqrt(SAMPLES)
    assert abs(values.std() - std) < SIGMAS * std * math.sqrt((kurtosis - 1) / (4 * SAMPLES))
    if uniform:
        limit = std * math.sqrt(3)
        assert np.all(np.abs(values) <= limit)
        # The largest of n draws falls short of the limit by about limit * 2 / n.
        assert values.max() > limit * (1 - 20 / SAMPLES) and values.min() < -limit * (1 - 20 / SAMPLES)


def test_zeros_and_lookup():
    np.testing.assert_array_equal(nn.zeros(np.random.default_rng(0), (2, 3), 2, 3), np.zeros((2, 3)))
    assert nn.get_initializer("he_normal") is nn.he_normal
    assert nn.get_initializer("xavier_uniform") is nn.glorot_uniform
    with pytest.raises(ValueError, match="unknown initializer"):
        nn.get_initializer("he")
    with pytest.raises(ValueError, match="stddev"):
        nn.normal(0.0)


# ---------------------------------------------------- counting and freezing
def test_count_parameters(backend):
    params = nn.MLP([3, 4, 2]).init(0, backend)
    assert nn.count_parameters(params) == 3 * 4 + 4 + 4 * 2 + 2
    assert nn.count_parameters({"a": params["layers"][0], "frozen": None}) == 16
    assert nn.count_parameters(nn.Dense(5, 7, bias=False).init(0, backend)) == 35


def test_trainable_mask_by_paths_and_predicate(backend):
    params = nn.MLP([3, 4, 4, 2]).init(0, backend)
    assert tree_paths(params)[:2] == ["layers.0.W", "layers.0.b"]
    mask = nn.trainable_mask(params, frozen=["layers.0", "layers.2.b"])
    assert mask == {"layers": [{"W": False, "b": False}, {"W": True, "b": True}, {"W": True, "b": False}]}
    assert nn.trainable_mask(params, frozen="layers.1.W")["layers"][1] == {"W": False, "b": True}
    biases_frozen = nn.trainable_mask(params, frozen=lambda path: path.endswith(".b"))
    assert [layer["b"] for layer in biases_frozen["layers"]] == [False, False, False]
    assert all(layer["W"] for layer in biases_frozen["layers"])
    assert all(tree_leaves(nn.trainable_mask(params)))
    with pytest.raises(ValueError, match="layers.9"):
        nn.trainable_mask(params, frozen=["layers.9"])
    with pytest.raises(ValueError, match="layers.0.W"):  # a prefix of a name is not a path
        nn.trainable_mask(params, frozen=["layers.0.W2"])


def test_partition_and_merge_round_trip(backend):
    params = nn.MLP([3, 4, 2]).init(0, backend)
    mask = nn.trainable_mask(params, frozen=["layers.0.W"])
    trainable, frozen = nn.partition(params, mask)
    assert trainable["layers"][0]["W"] is None and trainable["layers"][0]["b"] is params["layers"][0]["b"]
    assert frozen["layers"][0]["W"] is params["layers"][0]["W"] and frozen["layers"][1] == {"W": None, "b": None}
    assert nn.count_parameters(trainable) + nn.count_parameters(frozen) == nn.count_parameters(params)
    merged = nn.merge(trainable, frozen)
    assert tree_paths(merged) == tree_paths(params)
    for leaf, original in zip(tree_leaves(merged), tree_leaves(params)):
        assert leaf is original
    with pytest.raises(ValueError, match="exactly one part"):
        nn.merge(params, frozen)


def test_merge_errors_name_the_path():
    """merge is built on the one tree walk: its errors are TreeStructureErrors naming the path."""
    W, b = np.ones((2, 2)), np.zeros(2)
    with pytest.raises(portable_dl.TreeStructureError, match=r"both parts hold a value at 'layers\.0\.b'") as raised:
        nn.merge({"layers": [{"W": W, "b": b}]}, {"layers": [{"W": None, "b": b}]})
    assert raised.value.path == ("layers", 0, "b")
    with pytest.raises(
        portable_dl.TreeStructureError, match=r"at 'layers': the first tree has a list of 1, tree 2 has a tuple"
    ):
        nn.merge({"layers": [{"W": W}]}, {"layers": ({"W": None},)})
    with pytest.raises(portable_dl.TreeStructureError, match=r"at 'layers\.0': .*keys \['W'\], tree 2 .*keys \['V'\]"):
        nn.merge({"layers": [{"W": W}]}, {"layers": [{"V": None}]})
    # A whole subtree may be None in either part; keys may come in another order.
    merged = nn.merge({"a": None, "b": {"x": W}}, {"b": None, "a": {"y": b}})
    assert list(merged) == ["a", "b"] and merged["a"]["y"] is b and merged["b"]["x"] is W


def test_gradient_of_trainable_part_only(backend):
    """Differentiating only the trainable part (as a training step does) gives the full
    gradient's values there and None where frozen."""
    model = nn.MLP([3, 4, 2])
    params = model.init(2, backend, "float32")
    x = backend.asarray(np.random.default_rng(14).normal(size=(5, 3)), "float32")
    y = backend.asarray(np.random.default_rng(15).normal(size=(5, 2)), "float32")
    trainable, frozen = nn.partition(params, nn.trainable_mask(params, frozen=["layers.0"]))
    _, partial = backend.value_and_grad(lambda t: losses.mse(model.apply(nn.merge(t, frozen), x), y))(trainable)
    _, full = backend.value_and_grad(lambda p: losses.mse(model.apply(p, x), y))(params)
    assert partial["layers"][0] == {"W": None, "b": None}
    for key in ("W", "b"):
        np.testing.assert_array_equal(
            backend.to_numpy(partial["layers"][1][key]), backend.to_numpy(full["layers"][1][key])
        )
