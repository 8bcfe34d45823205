"""Gradient clipping on every backend against the same operations in NumPy float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, float_dtypes

from portable_dl.clipping import clip_by_global_norm, clip_by_value, global_norm

_rng = np.random.default_rng(7)
GRADS = {"W": _rng.normal(size=(3, 2)), "layers": [_rng.normal(size=(4,)), None, _rng.normal(size=())]}
NORM = math.sqrt(sum(float(np.sum(g**2)) for g in (GRADS["W"], GRADS["layers"][0], GRADS["layers"][2])))


def on_backend(backend, tree, dtype):
    return backend.tree_asarray(tree, dtype)


def test_global_norm_against_numpy(backend):
    for dtype in float_dtypes(backend):
        norm = global_norm(on_backend(backend, GRADS, dtype))
        assert tuple(norm.shape) == () and backend.dtype_name(norm.dtype) == dtype
        assert_close(backend.to_numpy(norm), NORM, dtype, scale=4)


@pytest.mark.parametrize("max_norm", [0.5 * NORM, 2.0 * NORM], ids=["clipped", "within"])
def test_clip_by_global_norm_against_numpy(backend, max_norm):
    # torch.nn.utils.clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6)).
    factor = min(1.0, max_norm / (NORM + 1e-6))
    for dtype in float_dtypes(backend):
        clipped, norm = clip_by_global_norm(on_backend(backend, GRADS, dtype), max_norm)
        assert_close(backend.to_numpy(norm), NORM, dtype, scale=4, what="norm before clipping")
        assert clipped["layers"][1] is None
        assert_close(backend.to_numpy(clipped["W"]), GRADS["W"] * factor, dtype, scale=4)
        assert_close(backend.to_numpy(clipped["layers"][0]), GRADS["layers"][0] * factor, dtype, scale=4)
        assert_close(backend.to_numpy(clipped["layers"][2]), GRADS["layers"][2] * factor, dtype, scale=4)
        assert backend.dtype_name(clipped["W"].dtype) == dtype
        assert_close(backend.to_numpy(global_norm(clipped)), NORM * factor, dtype, scale=4, what="norm after")


def test_zero_gradients_stay_zero(backend):
    zeros = on_backend(backend, {"W": np.zeros((2, 2))}, "float32")
    clipped, norm = clip_by_global_norm(zeros, 1.0)
    assert float(backend.to_numpy(norm)) == 0.0
    np.testing.assert_array_equal(backend.to_numpy(clipped["W"]), np.zeros((2, 2), "float32"))


def test_mixed_dtypes_take_the_norm_in_the_wider_one(backend):
    if "float64" not in float_dtypes(backend):
        pytest.skip(f"{backend.name} on {backend.device} has no float64")
    grads = {"a": backend.asarray(GRADS["W"], "float32"), "b": backend.asarray(GRADS["layers"][0], "float64")}
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert backend.dtype_name(norm.dtype) == "float64"
    assert backend.dtype_name(clipped["a"].dtype) == "float32" and backend.dtype_name(clipped["b"].dtype) == "float64"
    expected_norm = math.sqrt(
        float(np.sum(GRADS["W"].astype("float32").astype("float64") ** 2) + np.sum(GRADS["layers"][0] ** 2))
    )
    assert_close(backend.to_numpy(norm), expected_norm, "float64", scale=4)


def test_clip_by_value_against_numpy(backend):
    for dtype in float_dtypes(backend):
        clipped = clip_by_value(on_backend(backend, GRADS, dtype), 0.5)
        assert clipped["layers"][1] is None
        assert_close(backend.to_numpy(clipped["W"]), np.clip(GRADS["W"], -0.5, 0.5), dtype)
        assert_close(backend.to_numpy(clipped["layers"][0]), np.clip(GRADS["layers"][0], -0.5, 0.5), dtype)
        assert backend.dtype_name(clipped["W"].dtype) == dtype


def test_clipping_compiles(backend):
    grads = on_backend(backend, {"W": GRADS["W"]}, "float32")
    compiled = backend.compile(lambda g: clip_by_global_norm(clip_by_value(g, 1.0), 0.5))
    clipped, norm = compiled(grads)
    by_value = np.clip(GRADS["W"], -1.0, 1.0)
    expected_norm = float(np.sqrt(np.sum(by_value**2)))
    assert_close(backend.to_numpy(norm), expected_norm, "float32", scale=4)
    assert_close(backend.to_numpy(clipped["W"]), by_value * min(1.0, 0.5 / (expected_norm + 1e-6)), "float32", scale=4)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_invalid_limits_raise_value_error(backend, bad):
    grads = on_backend(backend, {"W": GRADS["W"]}, "float32")
    with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
        clip_by_global_norm(grads, bad)
    with pytest.raises(ValueError, match="limit must be a positive finite number"):
        clip_by_value(grads, bad)


def test_tree_without_arrays_is_refused():
    with pytest.raises(ValueError, match="at least one array"):
        global_norm({"W": None})
