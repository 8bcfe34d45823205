"""The fused eager optimizer update (``Backend.fused_update``; torch's multi-tensor kernels).

The fused path must compute exactly what the pure per-parameter rule computes: it performs
the same correctly rounded operations in the same order, so params and state agree bit for
bit (signs of zeros included), over several steps, for every option it takes. Where a
backend has no fused path (or declines), ``update`` and ``update(fused=False)`` run the same
rule, and the comparison holds trivially; the tests that need a fused path skip there.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from portable_dl import optimizers as o
from portable_dl import schedules
from portable_dl.tree import tree_leaves

#: name -> optimizer; every option the fused paths take, and their combinations
CONFIGURATIONS = {
    "Adam": lambda: o.Adam(lr=0.01),
    "Adam amsgrad L2": lambda: o.Adam(lr=0.01, amsgrad=True, weight_decay=0.1),
    "AdamW": lambda: o.AdamW(lr=0.01, weight_decay=0.1),
    "AdamW schedule": lambda: o.AdamW(lr=schedules.cosine(0.01, total_steps=4), weight_decay=0.2),
    "Adam clipping schedule": lambda: o.Adam(
        lr=schedules.linear_warmup(schedules.cosine(0.02, total_steps=4), 2), clip_norm=0.5, clip_value=0.8
    ),
    "Adam betas eps": lambda: o.Adam(lr=0.003, betas=(0.5, 0.75), eps=1e-3),
    "SGD": lambda: o.SGD(lr=0.1),
    "SGD L2 schedule": lambda: o.SGD(lr=schedules.cosine(0.1, total_steps=4), weight_decay=0.05),
    "SGD momentum": lambda: o.SGD(lr=0.1, momentum=0.9),
    "SGD nesterov L2": lambda: o.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "SGD dampening clip": lambda: o.SGD(lr=0.1, momentum=0.8, dampening=0.3, clip_norm=1.0),
}
STEPS = 4
SHAPES = {"W": (7, 5), "b": (5,), "conv": (3, 4, 2), "scale": ()}


def _draw(backend, rng, dtype, scale=1.0):
    """A tree with a 0-d leaf, a matrix, a vector and a 3-d array; signed zeros and ties planted."""
    tree = {}
    for name, shape in SHAPES.items():
        values = (scale * rng.standard_normal(shape)).astype(dtype)
        if values.ndim:
            values.flat[0] = -0.0  # a negative zero: a sign a careless fused kernel could lose
            values.flat[-1] = values.flat[1 if values.size > 1 else 0]  # a tie
        tree[name] = backend.asarray(values, dtype)
    return tree


def _bits(backend, tree) -> list[np.ndarray]:
    return [np.asarray(backend.to_numpy(leaf)) for leaf in tree_leaves(tree)]


def _assert_identical(backend, actual, expected, what: str) -> None:
    got, want = _bits(backend, actual), _bits(backend, expected)
    assert len(got) == len(want), what
    for index, (a, e) in enumerate(zip(got, want)):
        assert a.dtype == e.dtype and a.shape == e.shape, f"{what}: leaf {index}"
        # Bitwise equality: NaN, infinities and the sign of zero included.
        np.testing.assert_array_equal(
            a.view(f"u{a.itemsize}"), e.view(f"u{e.itemsize}"), err_msg=f"{what}: leaf {index}"
        )


def _fused_available(backend, optimizer) -> bool:
    return backend.fused_update(optimizer) is not None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_fused_update_equals_pure_update_bit_for_bit(backend, name, dtype):
    if not backend.supports(dtype):
        pytest.skip(f"{backend.name} on {backend.device} does not support {dtype}")
    optimizer = CONFIGURATIONS[name]()
    rng = np.random.default_rng(7)
    params = _draw(backend, rng, dtype)
    state = optimizer.init(params)
    for step in range(STEPS):
        grads = _draw(backend, rng, dtype, scale=0.5 + step)
        fused_params, fused_state = optimizer.update(grads, state, params)
        pure_params, pure_state = optimizer.update(grads, state, params, fused=False)
        _assert_identical(backend, fused_params, pure_params, f"{name} params after update {step + 1}")
        _assert_identical(backend, fused_state, pure_state, f"{name} state after update {step + 1}")
        assert backend.dtype_name(fused_state["step"].dtype) == "int32"
        assert int(backend.to_numpy(fused_state["step"])) == step + 1
        params, state = fused_params, fused_state  # the fused path fed its own state


def test_fast_path_is_taken_on_backends_that_have_one(backend, monkeypatch):
    optimizer = o.Adam(lr=0.01)
    if not _fused_available(backend, optimizer):
        pytest.skip(f"{backend.name} has no fused optimizer update")
    calls = []
    original = type(backend).fused_update

    def counting(self, opt):
        fused = original(self, opt)

        def run(*args):
            result = fused(*args)
            calls.append(result is not None)
            return result

        return run

    monkeypatch.setattr(type(backend), "fused_update", counting)
    params = _draw(backend, np.random.default_rng(0), "float32")
    optimizer.update(params, optimizer.init(params), params)
    assert calls == [True]
    optimizer.update(params, optimizer.init(params), params, fused=False)
    assert calls == [True]  # fused=False never asks


def test_fused_adam_matches_a_float64_numpy_adam(backend):
    """Two AdamW steps (decoupled decay, bias corrections) against the formula in NumPy float64."""
    optimizer = o.AdamW(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.3)
    # float64 where the backend has it (JAX without x64 has not): then a dozen roundings of 2^-53
    dtype, rtol = ("float64", 1e-13) if backend.supports("float64") else ("float32", 1e-5)
    rng = np.random.default_rng(3)
    theta = rng.standard_normal((4, 3)).astype(dtype).astype(np.float64)
    gradients = [rng.standard_normal((4, 3)).astype(dtype).astype(np.float64) for _ in range(2)]
    params = {"W": backend.asarray(theta, dtype)}
    state = optimizer.init(params)
    m = v = np.zeros_like(theta)
    for t, g in enumerate(gradients, start=1):
        params, state = optimizer.update({"W": backend.asarray(g, dtype)}, state, params)
        theta = theta * (1 - 0.05 * 0.3)
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        theta = theta - 0.05 / (1 - 0.8**t) * m / (np.sqrt(v / (1 - 0.9**t)) + 1e-6)
    np.testing.assert_allclose(backend.to_numpy(params["W"]), theta, rtol=rtol, atol=0)
    np.testing.assert_allclose(backend.to_numpy(state["slots"]["W"]["exp_avg_sq"]), v, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", ["Adam amsgrad L2", "AdamW schedule", "SGD nesterov L2"])
def test_update_leaves_its_inputs_unchanged(backend, name):
    optimizer = CONFIGURATIONS[name]()
    rng = np.random.default_rng(11)
    params = _draw(backend, rng, "float32")
    state = optimizer.init(params)
    params, state = optimizer.update(_draw(backend, rng, "float32"), state, params)  # slots not all zero
    grads = _draw(backend, rng, "float32")
    before = [_bits(backend, tree) for tree in (params, state, grads)]
    versions = [getattr(leaf, "_version", None) for leaf in tree_leaves((params, state, grads))]
    optimizer.update(grads, state, params)
    for tree, saved in zip((params, state, grads), before):
        for now, then in zip(_bits(backend, tree), saved):
            np.testing.assert_array_equal(now.view(f"u{now.itemsize}"), then.view(f"u{then.itemsize}"))
    # torch counts in-place writes to a tensor: none happened, not even of equal values
    assert [getattr(leaf, "_version", None) for leaf in tree_leaves((params, state, grads))] == versions


def test_frozen_leaves_pass_through(backend):
    optimizer = o.Adam(lr=0.01, weight_decay=0.1)
    rng = np.random.default_rng(5)
    params = _draw(backend, rng, "float32")
    state = optimizer.init(params)
    frozen_param, frozen_slots = params["conv"], state["slots"]["conv"]
    grads = dict(_draw(backend, rng, "float32"), conv=None)
    new_params, new_state = optimizer.update(grads, state, params)
    assert new_params["conv"] is frozen_param and new_state["slots"]["conv"] is frozen_slots
    pure_params, pure_state = optimizer.update(grads, state, params, fused=False)
    _assert_identical(backend, new_params, pure_params, "params")
    _assert_identical(backend, new_state, pure_state, "state")
    # None in params: a frozen parameter of a partitioned tree
    params_with_none = dict(params, conv=None)
    new_params, _ = optimizer.update(dict(grads, conv=None), optimizer.init(params_with_none), params_with_none)
    assert new_params["conv"] is None


@dataclasses.dataclass(eq=False, repr=False, frozen=True)
class _AdamVariant(o.Adam):
    """A subclass may change the rule: the fused path must not assume it is Adam's."""

    def update_single(self, param, grad, slots, lr, t, xp):
        new_param, new_slots = super().update_single(param, grad, slots, lr, t, xp)
        return new_param - 1.0, new_slots


@pytest.mark.parametrize(
    "optimizer",
    [o.NAdam(lr=0.01), o.RMSprop(lr=0.01, momentum=0.5), o.Adagrad(lr=0.1), _AdamVariant(lr=0.01)],
    ids=["NAdam", "RMSprop", "Adagrad", "Adam subclass"],
)
def test_optimizers_without_a_fused_rule_fall_back(backend, optimizer):
    assert backend.fused_update(optimizer) is None
    rng = np.random.default_rng(2)
    params = _draw(backend, rng, "float32")
    state = optimizer.init(params)
    grads = _draw(backend, rng, "float32")
    got = optimizer.update(grads, state, params)
    _assert_identical(backend, got, optimizer.update(grads, state, params, fused=False), "fallback")
    if isinstance(optimizer, _AdamVariant):  # its own rule ran
        plain = o.Adam(lr=0.01).update(grads, state, params, fused=False)[0]
        np.testing.assert_array_equal(backend.to_numpy(got[0]["W"]), backend.to_numpy(plain["W"]) - np.float32(1.0))


def test_mixed_dtypes_fall_back_to_the_pure_rule(backend, monkeypatch):
    optimizer = o.Adam(lr=0.01)
    if not _fused_available(backend, optimizer):
        pytest.skip(f"{backend.name} has no fused optimizer update")
    monkeypatch.setattr(type(backend), "fused_update", lambda self, opt: pytest.fail("fused path asked"))
    params = {"a": backend.asarray(np.ones(3), "float32"), "b": backend.asarray(np.ones(2), "float64")}
    grads = {"a": backend.asarray(np.full(3, 0.5), "float32"), "b": backend.asarray(np.full(2, 0.5), "float64")}
    new_params, _ = optimizer.update(grads, optimizer.init(params), params)
    # Adam's first step moves each element by lr (m_hat / sqrt(v_hat) = 1, up to eps)
    np.testing.assert_allclose(backend.to_numpy(new_params["b"]), 1 - 0.01 / (1 + 1e-8 / 0.5), rtol=1e-15)
    assert backend.dtype_name(new_params["a"].dtype) == "float32"


def test_torch_declines_arrays_that_autograd_records(backend):
    if backend.name != "torch":
        pytest.skip("torch's autograd records tensors; other frameworks have no such flag")
    import torch

    optimizer = o.SGD(lr=0.5, momentum=0.9)
    param = torch.tensor([1.0, -2.0], requires_grad=True)
    grad = torch.tensor([0.25, 0.5])
    fused = backend.fused_update(optimizer)
    assert fused([param], [grad], [{"momentum_buffer": torch.zeros(2)}], 0.5, torch.tensor(1.0)) is None
    new_params, _ = optimizer.update({"w": grad}, optimizer.init({"w": param.detach()}), {"w": param})
    # the pure rule ran and kept the graph: d(new w)/dw = 1
    (derivative,) = torch.autograd.grad(new_params["w"].sum(), param)
    np.testing.assert_array_equal(derivative.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(new_params["w"].detach().numpy(), [0.875, -2.25])


def test_torch_compiled_update_uses_the_pure_rule(backend, monkeypatch):
    if backend.name != "torch":
        pytest.skip("torch.compile only")
    asked = []
    original = type(backend).fused_update
    monkeypatch.setattr(type(backend), "fused_update", lambda self, opt: asked.append(opt) or original(self, opt))
    optimizer = o.SGD(lr=0.25, momentum=0.5)
    params = {"w": backend.asarray(np.array([1.0, -2.0, 4.0]), "float32")}
    grads = {"w": backend.asarray(np.array([0.5, 0.25, -1.0]), "float32")}
    state = optimizer.init(params)
    compiled = backend.compile(lambda g, s, p: optimizer.update(g, s, p))
    new_params, new_state = compiled(grads, state, params)
    assert asked == []  # never under the compiler
    # t = 1: the buffer is the gradient itself; w - 0.25 g, exact in binary
    np.testing.assert_array_equal(backend.to_numpy(new_params["w"]), [0.875, -2.0625, 4.25])
    np.testing.assert_array_equal(backend.to_numpy(new_state["slots"]["w"]["momentum_buffer"]), [0.5, 0.25, -1.0])
