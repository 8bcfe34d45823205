"""Precision policies: make_train_step(..., precision=...) and fit(..., precision=...).

References: the plain step (precision "float32" must be it, bit for bit); NumPy float64 on
inputs rounded to bfloat16 with ml_dtypes (mixed_bfloat16); torch.amp.GradScaler's rules,
written out by hand as the expected sequence of scales (mixed_float16); values derived by
hand for the losses and the softmax family on half-precision inputs.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from portable_dl import fit
from portable_dl.activations import log_softmax, logsumexp, softmax
from portable_dl.errors import CheckpointError
from portable_dl.losses import cross_entropy, mse
from portable_dl.optimizers import SGD, Adam
from portable_dl.precision import LossScale, Policy, get_policy
from portable_dl.train_step import make_train_step
from portable_dl.tree import tree_leaves, tree_paths


def require(backend, dtype):
    if not backend.supports(dtype):
        pytest.skip(f"{backend.name} has no {dtype} here")


# --------------------------------------------------------------- a linear model
# Values with two significant bits, so that every product and sum below is exact in bfloat16
# and float16, each perturbed by a relative 0.9 * 2**-9: below half a bfloat16 ulp (2**-9
# relative at least), so rounding to bfloat16 removes it, while float32 keeps it.
_X = np.array([[0.5, -1.0, 1.5], [2.0, 0.5, -0.5], [-1.5, 1.0, 1.0], [1.0, 2.0, -1.0]])
_W = np.array([[1.0, -0.5], [0.5, 1.5], [-1.0, 0.5]])
_B = np.array([0.5, -1.0])
_SIGNS_X = np.array([[1, -1, 1], [-1, 1, 1], [1, 1, -1], [-1, -1, 1]])
_SIGNS_W = np.array([[1, 1], [-1, 1], [1, -1]])


def _perturbed(values, signs):
    return (values * (1.0 + signs * 0.9 * 2.0**-9)).astype(np.float32)


X = _perturbed(_X, _SIGNS_X)
W = _perturbed(_W, _SIGNS_W)
B = _perturbed(_B, np.array([1, -1]))
# Targets a small residual (multiples of 1/16) away from the bfloat16 prediction: the residual
# is what the gradient is made of, and the float32 prediction differs from the bfloat16 one by
# 2-10% of it, so a step that computed in float32 is told apart.
_RESIDUAL = np.array([[0.0625, -0.125], [0.125, 0.0625], [-0.0625, 0.125], [0.125, -0.0625]])
Y = (_X @ _W + _B - _RESIDUAL).astype(np.float32)


def linear(params, x):
    xp = _xp(x)
    return xp.add(xp.matmul(x, params["W"]), params["b"])


def _xp(x):
    from portable_dl.registry import backend_of

    return backend_of(x).xp


def mse_objective(multiplier=1.0):
    def objective(params, batch):
        x, y = batch
        loss = mse(linear(params, x), y)
        return loss if multiplier == 1.0 else _xp(loss).multiply(loss, multiplier)

    return objective


def start(backend):
    params = {"W": backend.asarray(W), "b": backend.asarray(B)}
    return params, (backend.asarray(X), backend.asarray(Y))


def as_bytes(backend, tree):
    return [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(tree)]


# ------------------------------------------------------------------ float32 policy
@pytest.mark.parametrize("compile", [False, True])
def test_float32_policy_is_the_plain_step_bit_for_bit(backend, compile):
    results = []
    for precision in (None, "float32"):
        kwargs = {} if precision is None else {"precision": precision}
        step = make_train_step(mse_objective(), Adam(0.1), backend, compile=compile, **kwargs)
        params, batch = start(backend)
        state = step.init(params)
        for _ in range(2):
            params, state, loss = step(params, state, batch)
        results.append((as_bytes(backend, params), as_bytes(backend, state), as_bytes(backend, loss)))
        assert "loss_scale" not in state
    assert results[0] == results[1]


# ------------------------------------------------------------------ mixed_bfloat16
def bfloat16_reference():
    """float64 gradient of mse(x @ W + b, y) with x, W, b rounded to bfloat16, and the
    backward's half-precision values (the cotangent of the predictions, the gradients)
    rounded to bfloat16 as the casts make them; the loss, and the float32 (no cast) gradient."""

    def bf16(a):
        return np.asarray(a, np.float64).astype(ml_dtypes.bfloat16).astype(np.float64)

    def gradients(x, w, b, rounding):
        residual = x @ w + b - Y.astype(np.float64)
        cotangent = rounding(2.0 * residual / residual.size)
        return rounding(x.T @ cotangent), rounding(cotangent.sum(axis=0)), np.mean(residual**2)

    grad_w, grad_b, loss = gradients(bf16(X), bf16(W), bf16(B), bf16)
    f32_w, f32_b, _ = gradients(X.astype(np.float64), W.astype(np.float64), B.astype(np.float64), lambda a: a)
    return grad_w, grad_b, loss, (f32_w, f32_b)


@pytest.mark.parametrize("compile", [False, True])
def test_mixed_bfloat16_step_against_a_bfloat16_reference(backend, compile):
    require(backend, "bfloat16")
    grad_w, grad_b, loss_ref, (f32_w, f32_b) = bfloat16_reference()
    # Every value here is exact in bfloat16, so the step should match to float32 rounding;
    # half a bfloat16 ulp of the largest gradient leaves room for a framework that rounds an
    # intermediate differently, and stays well below the gap to the float32 gradient, which
    # the test must tell apart (checked on the next line).
    tolerance = 2.0**-9 * max(np.abs(grad_w).max(), np.abs(grad_b).max())
    assert max(np.abs(f32_w - grad_w).max(), np.abs(f32_b - grad_b).max()) > 4 * tolerance

    step = make_train_step(mse_objective(), SGD(1.0), backend, compile=compile, precision="mixed_bfloat16")
    params, batch = start(backend)
    state = step.init(params)
    new_params, new_state, loss = step(params, state, batch)
    for tree in (new_params, new_state["slots"]):
        assert all(backend.dtype_name(leaf.dtype) == "float32" for leaf in tree_leaves(tree))
    assert backend.dtype_name(loss.dtype) == "float32"
    np.testing.assert_allclose(backend.to_numpy(loss), loss_ref, rtol=1e-6)
    # SGD with lr 1: the update is the gradient (float32 subtraction: error below 2.4e-7 here).
    update_w = W.astype(np.float64) - backend.to_numpy(new_params["W"])
    update_b = B.astype(np.float64) - backend.to_numpy(new_params["b"])
    np.testing.assert_allclose(update_w, grad_w, rtol=0, atol=tolerance + 1e-6)
    np.testing.assert_allclose(update_b, grad_b, rtol=0, atol=tolerance + 1e-6)


# ---------------------------------------------------------- mixed_float16 scaling
FAST_GROWTH = Policy("mixed_float16_growth_2", "float16", LossScale(growth_interval=2))


@pytest.mark.parametrize("compile", [False, True])
def test_float16_overflow_skips_the_step_and_halves_the_scale(backend, compile):
    require(backend, "float16")
    good = make_train_step(mse_objective(), Adam(0.1), backend, compile=compile, precision=FAST_GROWTH)
    # The cotangent of the float16 predictions is 2 r / 8 * 1e6 * 65536, about 1e9: inf in
    # float16 (largest 65504), while the loss itself (about 1e4) stays finite.
    overflowing = make_train_step(mse_objective(1e6), Adam(0.1), backend, compile=compile, precision=FAST_GROWTH)
    params, batch = start(backend)
    state = good.init(params)

    def scale_of(state_):
        return float(backend.to_numpy(state_["loss_scale"]["scale"])), int(
            backend.to_numpy(state_["loss_scale"]["good_steps"])
        )

    assert scale_of(state) == (65536.0, 0)
    assert backend.dtype_name(state["loss_scale"]["scale"].dtype) == "float32"
    assert backend.dtype_name(state["loss_scale"]["good_steps"].dtype) == "int32"
    params, state, _ = good(params, state, batch)  # a good step first: Adam's slots are not zero
    assert scale_of(state) == (65536.0, 1)
    before = (as_bytes(backend, params), as_bytes(backend, {k: v for k, v in state.items() if k != "loss_scale"}))

    skipped_params, skipped_state, loss = overflowing(params, state, batch)
    assert math.isfinite(float(backend.to_numpy(loss)))
    after = (
        as_bytes(backend, skipped_params),
        as_bytes(backend, {k: v for k, v in skipped_state.items() if k != "loss_scale"}),
    )
    assert after == before, "a skipped step changed the parameters or the optimizer state"
    assert int(backend.to_numpy(skipped_state["step"])) == 1
    assert scale_of(skipped_state) == (32768.0, 0)  # halved, the count of good steps reset

    params, state, _ = good(skipped_params, skipped_state, batch)
    assert scale_of(state) == (32768.0, 1)
    assert int(backend.to_numpy(state["step"])) == 2
    params, state, _ = good(params, state, batch)
    assert scale_of(state) == (65536.0, 0)  # growth_interval 2 good steps in a row: doubled
    assert all(np.isfinite(backend.to_numpy(leaf)).all() for leaf in tree_leaves(params))


def test_a_non_finite_gradient_at_the_floor_is_applied(backend):
    """At a scale at or below min_scale skipping cannot recover: the update goes through, the
    parameters become non-finite, and fit's check stops training (TrainingDiverged)."""
    require(backend, "float16")
    policy = Policy("mixed_float16_low", "float16", LossScale(initial=2.0, min_scale=1.0))
    overflowing = make_train_step(mse_objective(1e9), SGD(0.1), backend, compile=False, precision=policy)
    params, batch = start(backend)
    state = overflowing.init(params)
    params_1, state_1, _ = overflowing(params, state, batch)
    assert as_bytes(backend, params_1) == as_bytes(backend, params)
    assert float(backend.to_numpy(state_1["loss_scale"]["scale"])) == 1.0
    params_2, state_2, _ = overflowing(params_1, state_1, batch)
    assert not np.isfinite(backend.to_numpy(params_2["W"])).all()
    assert float(backend.to_numpy(state_2["loss_scale"]["scale"])) == 1.0
    assert int(backend.to_numpy(state_2["step"])) == 1


def test_loss_scale_growth_stops_short_of_infinity(backend):
    """torch._amp_update_scale_ keeps the scale when doubling would make it inf."""
    require(backend, "float16")
    policy = Policy("mixed_float16_huge", "float16", LossScale(initial=2.0**127, growth_interval=1))
    step = make_train_step(mse_objective(0.0), SGD(0.0), backend, compile=False, precision=policy)
    params, batch = start(backend)
    _, state, _ = step(params, step.init(params), batch)
    assert float(backend.to_numpy(state["loss_scale"]["scale"])) == 2.0**127
    assert int(backend.to_numpy(state["loss_scale"]["good_steps"])) == 0


# ----------------------------------------------------- losses in float32 for halves
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_losses_and_softmax_compute_half_inputs_in_float32(backend, dtype):
    require(backend, dtype)
    # Two equal logits of 2**10: log-sum-exp = 1024 + ln 2, which float16 rounds to 1025 and
    # bfloat16 to 1024 (spacing 1 and 8 there), giving a cross-entropy of 0.307 or 0 instead
    # of ln 2. float32 (spacing 2**-13 at 1024) gets ln 2 within 2.5e-4 (two roundings there).
    logits = backend.asarray(np.array([[1024.0, 1024.0]], np.float32), dtype)
    labels = backend.asarray(np.array([0], np.int32))
    loss = cross_entropy(logits, labels)
    assert backend.dtype_name(loss.dtype) == "float32"
    np.testing.assert_allclose(backend.to_numpy(loss), math.log(2.0), rtol=0, atol=2.5e-4)
    log_probs = log_softmax(logits, axis=1)
    assert backend.dtype_name(log_probs.dtype) == "float32"
    np.testing.assert_allclose(backend.to_numpy(log_probs), [[-math.log(2.0)] * 2], rtol=0, atol=2.5e-4)
    probs = softmax(logits, axis=1)
    assert backend.dtype_name(probs.dtype) == "float32"
    np.testing.assert_allclose(backend.to_numpy(probs), [[0.5, 0.5]], rtol=1e-6)
    total = logsumexp(logits, axis=1)
    np.testing.assert_allclose(backend.to_numpy(total), [1024.0 + math.log(2.0)], rtol=0, atol=2.5e-4)
    # A squared error of 300**2 = 90000 overflows float16 (largest 65504): float32 holds it.
    predictions = backend.asarray(np.array([300.0, -4.0], np.float32), dtype)
    targets = backend.asarray(np.array([0.0, -4.0], np.float32), dtype)
    squared = mse(predictions, targets, reduction="sum")
    assert backend.dtype_name(squared.dtype) == "float32"
    assert float(backend.to_numpy(squared)) == 90000.0
    # Half predictions with float32 targets agree once promoted (as mixed precision makes them).
    mixed = mse(predictions, backend.asarray(np.array([0.0, -4.0], np.float32)))
    assert float(backend.to_numpy(mixed)) == 45000.0


# ------------------------------------------------------------------------ policies
def test_policy_names_and_checks():
    assert get_policy("float32").is_default
    assert get_policy("mixed_bfloat16").compute_dtype == "bfloat16"
    assert get_policy("mixed_bfloat16").loss_scale is None
    scaling = get_policy("mixed_float16").loss_scale
    assert (scaling.initial, scaling.growth_factor, scaling.backoff_factor, scaling.growth_interval) == (
        65536.0,
        2.0,
        0.5,
        2000,
    )
    with pytest.raises(ValueError, match="unknown precision 'mixed_float8'"):
        get_policy("mixed_float8")
    with pytest.raises(ValueError, match="growth_interval"):
        LossScale(growth_interval=0)
    with pytest.raises(ValueError, match="backoff_factor"):
        LossScale(backoff_factor=1.0)


def test_mixed_precision_refuses_a_world_of_several_processes(backend):
    class TwoRanks:
        size = 2
        rank = 0

    with pytest.raises(ValueError, match="not yet supported with a world of more than one process"):
        make_train_step(mse_objective(), SGD(0.1), backend, world=TwoRanks(), precision="mixed_bfloat16")


# ----------------------------------------------------------------------------- fit
def _fit(backend, folder, epochs, precision, resume=False, **settings):
    params = {"W": backend.asarray(np.zeros((3, 2), np.float32)), "b": backend.asarray(np.zeros(2, np.float32))}
    rng = np.random.default_rng(3)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = (x @ _W + _B).astype(np.float32)
    return fit(
        linear,
        params,
        mse,
        Adam(0.05),
        backend,
        x,
        y,
        epochs=epochs,
        batch_size=8,
        precision=precision,
        checkpoint_dir=folder,
        resume=resume,
        verbose=0,
        compile=False,
        **settings,
    )


def test_fit_with_loss_scaling_resumes_the_scale(backend, tmp_path):
    require(backend, "float16")

    def scaling(result, steps):
        """(scale, good steps, updates applied) after ``steps`` steps, checked against the rules:
        each skipped step halved the scale once, and every applied one counted as good."""
        state = result.opt_state
        scale = float(backend.to_numpy(state["loss_scale"]["scale"]))
        good, applied = int(backend.to_numpy(state["loss_scale"]["good_steps"])), int(backend.to_numpy(state["step"]))
        assert scale == 65536.0 * 0.5 ** (steps - applied)  # no growth within 2000 steps
        assert 0 <= good <= applied
        return scale, good, applied

    # From zero parameters the first gradients of W (sums over 8 examples of x times a
    # cotangent of up to 2 * 5 / 16 * 65536) overflow float16: fit skips and backs off.
    whole = _fit(backend, tmp_path / "whole", 2, "mixed_float16")
    scale, good, applied = scaling(whole, 6)  # 3 steps per epoch
    assert scale < 65536.0 and applied >= 3
    assert whole.history["loss"][1] < whole.history["loss"][0]

    first = _fit(backend, None, 1, "mixed_float16")
    assert scaling(first, 3)[0] < 65536.0  # the resumed run must continue from a backed-off scale
    # A run checkpointed after every step, cut back to its state after step 3 (the end of
    # epoch 1), as if it had been killed there; resuming it must give the whole run's result.
    split = tmp_path / "split"
    _fit(backend, split, 2, "mixed_float16", checkpoint_every=1, keep_checkpoints=10)
    for path in split.glob("step-*.safetensors"):
        if int(path.stem.split("-")[1]) > 3:
            path.unlink()
    resumed = _fit(backend, split, 2, "mixed_float16", resume=True)
    assert tree_paths(resumed.opt_state) == tree_paths(whole.opt_state)
    assert as_bytes(backend, resumed.opt_state) == as_bytes(backend, whole.opt_state)
    assert as_bytes(backend, resumed.params) == as_bytes(backend, whole.params)

    other = "mixed_bfloat16" if backend.supports("bfloat16") else "float32"
    with pytest.raises(CheckpointError, match=f"precision is 'mixed_float16' there, '{other}' here"):
        _fit(backend, split, 2, other, resume=True)


def test_steps_per_call_carries_the_loss_scale(backend):
    """make_train_step(steps_per_call=2) under mixed_float16: the trajectory of two single
    steps, a skipped overflow included, with the scale state exactly theirs."""
    require(backend, "float16")
    params, (x, y) = start(backend)
    # The second batch's targets are 1e4 away: its cotangent overflows float16 at scale 65536.
    far = backend.asarray(Y + np.float32(1e4))
    single = make_train_step(mse_objective(), Adam(0.1), backend, compile=False, precision=FAST_GROWTH)
    state = single.init(params)
    expected_params, expected_state, _ = single(params, state, (x, y))
    expected_params, expected_state, _ = single(expected_params, expected_state, (x, far))
    multi = make_train_step(mse_objective(), Adam(0.1), backend, compile=False, precision=FAST_GROWTH, steps_per_call=2)
    xp = backend.xp
    stacked = (xp.stack([x, x]), xp.stack([y, far]))
    got_params, got_state, losses = multi(params, multi.init(params), stacked)
    assert float(backend.to_numpy(got_state["loss_scale"]["scale"])) == 32768.0  # the second step skipped
    assert int(backend.to_numpy(got_state["loss_scale"]["good_steps"])) == 0
    assert int(backend.to_numpy(got_state["step"])) == 1
    assert tree_paths(got_state) == tree_paths(expected_state)
    for got, want in zip(tree_leaves((got_params, got_state)), tree_leaves((expected_params, expected_state))):
        np.testing.assert_allclose(backend.to_numpy(got), backend.to_numpy(want), rtol=1e-6, atol=0)
    assert backend.to_numpy(losses).shape == (2,)


def test_fit_diverges_when_skipping_cannot_recover(backend):
    """A gradient that is NaN at every scale (sqrt at 0) is skipped while the scale halves,
    then applied at the floor: fit raises TrainingDiverged with the last finite state."""
    require(backend, "float16")
    from portable_dl.training import TrainingDiverged

    def apply(params, x):
        xp = _xp(x)
        # sqrt(b - b) is 0 with derivative inf * 0 = NaN with respect to b.
        return xp.add(linear(params, x), xp.sqrt(xp.subtract(params["b"], params["b"])))

    policy = Policy("mixed_float16_floor", "float16", LossScale(initial=4.0, min_scale=1.0))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = (x @ _W).astype(np.float32)
    params = {"W": backend.asarray(W), "b": backend.asarray(B)}
    with pytest.raises(TrainingDiverged) as raised:
        # Eager: torch 2.13's inductor emits C++ that does not compile for this float16 graph
        # ("conflicting declaration at_Half_tmp_acc0_vec"), a framework bug beside the point here.
        fit(
            apply,
            params,
            mse,
            SGD(0.1),
            backend,
            x,
            y,
            epochs=2,
            batch_size=8,
            precision=policy,
            verbose=0,
            compile=False,
        )
    # Scales 4 and 2 skip (params untouched), 1 is the floor: the third step applies the NaN.
    assert all(np.isfinite(backend.to_numpy(leaf)).all() for leaf in tree_leaves(raised.value.params))
