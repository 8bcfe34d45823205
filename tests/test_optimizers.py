"""Optimizers on every backend, against the documented update rules of torch.optim written out
again here in NumPy float64, and against torch.optim itself where torch is installed.

The problem: a small least-squares fit, loss = mean((x W + b - y)^2) with W of shape (3, 2)
and b of shape (2,), stepped 20 times; the NumPy reference uses the gradient derived by hand,
2 / (N K) * (x^T r, sum_n r) with r = x W + b - y. Tolerances: a float32 trajectory drifts from
the float64 one by a few ulps of the parameters per step (the gradient's rounding, then the
update's), so step k is compared within TRAJECTORY_ULPS * k ulps (relative and absolute).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math

import numpy as np
import pytest
from helpers import float_dtypes

import portable_dl
from portable_dl import ShapeError
from portable_dl.optimizers import SGD, Adagrad, Adam, AdamW, NAdam, Optimizer, RMSprop
from portable_dl.schedules import cosine, linear_warmup, step_decay

STEPS = 20
#: ulps of drift allowed per step: the gradient (a matmul and a mean over 16 numbers) and
#: Adam's m / sqrt(v) each round a few times. The drift measured on all five backends stays
#: below 0.7 ulp per step, so 16 leaves a wide margin; a wrong formula is off by 1e-3 or more.
TRAJECTORY_ULPS = 16

_rng = np.random.default_rng(20251123)
X = _rng.normal(size=(8, 3))
Y = _rng.normal(size=(8, 2))
W0 = _rng.normal(size=(3, 2))
B0 = _rng.normal(size=(2,))


def tolerance(dtype: str, step: int) -> float:
    return TRAJECTORY_ULPS * step * float(np.finfo(dtype).eps)


# ------------------------------------------------------------ the problem, in NumPy
def gradient_numpy(params: dict) -> dict:
    residual = X @ params["W"] + params["b"] - Y
    scale = 2.0 / residual.size
    return {"W": scale * X.T @ residual, "b": scale * residual.sum(axis=0)}


def loss_xp(xp):
    def loss(params, x, y):
        residual = xp.subtract(xp.add(xp.matmul(x, params["W"]), params["b"]), y)
        return xp.mean(xp.square(residual))

    return loss


# ------------------------------------------- the update rules, from torch.optim's docs
def sgd_rule(theta, g, s, t, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    g = g + weight_decay * theta
    if momentum:
        b = g if t == 1 else momentum * s["b"] + (1 - dampening) * g
        s["b"] = b
        g = g + momentum * b if nesterov else b
    return theta - lr * g


def adagrad_rule(theta, g, s, t, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    clr = lr / (1 + (t - 1) * lr_decay)
    g = g + weight_decay * theta
    s["sum"] = s.get("sum", np.full_like(theta, initial_accumulator_value)) + g**2
    return theta - clr * g / (np.sqrt(s["sum"]) + eps)


def rmsprop_rule(theta, g, s, t, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    g = g + weight_decay * theta
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g**2
    v_tilde = s["v"]
    if centered:
        s["g_ave"] = alpha * s.get("g_ave", 0.0) + (1 - alpha) * g
        v_tilde = v_tilde - s["g_ave"] ** 2
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + g / (np.sqrt(v_tilde) + eps)
        return theta - lr * s["b"]
    return theta - lr * g / (np.sqrt(v_tilde) + eps)


def adam_rule(theta, g, s, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    if decoupled:
        theta = theta - lr * weight_decay * theta
    else:
        g = g + weight_decay * theta
    s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g**2
    m_hat = s["m"] / (1 - beta1**t)
    if amsgrad:
        s["v_max"] = np.maximum(s.get("v_max", 0.0), s["v"])
        v_hat = s["v_max"] / (1 - beta2**t)
    else:
        v_hat = s["v"] / (1 - beta2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


def adamw_rule(theta, g, s, t, lr, weight_decay=0.01, **options):
    return adam_rule(theta, g, s, t, lr, weight_decay=weight_decay, decoupled=True, **options)


def nadam_rule(
    theta,
    g,
    s,
    t,
    lr,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=0.004,
    decoupled_weight_decay=False,
):
    beta1, beta2 = betas
    if decoupled_weight_decay:
        theta = theta - lr * weight_decay * theta
    else:
        g = g + weight_decay * theta
    mu = [beta1 * (1 - 0.5 * 0.96 ** (i * momentum_decay)) for i in range(1, t + 2)]  # mu_1 .. mu_{t+1}
    s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g**2
    m_hat = mu[t] * s["m"] / (1 - math.prod(mu[: t + 1])) + (1 - mu[t - 1]) * g / (1 - math.prod(mu[:t]))
    v_hat = s["v"] / (1 - beta2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps)


RULES = {
    SGD: sgd_rule,
    Adagrad: adagrad_rule,
    RMSprop: rmsprop_rule,
    Adam: adam_rule,
    AdamW: adamw_rule,
    NAdam: nadam_rule,
}
DEFAULT_LR = {SGD: 0.05, Adagrad: 0.1, RMSprop: 0.01, Adam: 0.05, AdamW: 0.05, NAdam: 0.05}


def clip_numpy(grads: dict, clip_value=None, clip_norm=None) -> dict:
    """torch.nn.utils.clip_grad_value_ then clip_grad_norm_, in NumPy."""
    if clip_value is not None:
        grads = {k: np.clip(g, -clip_value, clip_value) for k, g in grads.items()}
    if clip_norm is not None:
        norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
        factor = min(1.0, clip_norm / (norm + 1e-6))
        grads = {k: g * factor for k, g in grads.items()}
    return grads


def reference_trajectory(cls, options: dict, steps: int = STEPS, lr_at=None) -> list[dict]:
    """Parameters after each of ``steps`` updates, in NumPy float64. ``lr_at(s)``: the rate of
    update s + 1 when the optimizer is given a schedule."""
    options = dict(options)
    clip_value, clip_norm = options.pop("clip_value", None), options.pop("clip_norm", None)
    lr = options.pop("lr", DEFAULT_LR[cls])
    rule = RULES[cls]
    params = {"W": W0.copy(), "b": B0.copy()}
    slots = {"W": {}, "b": {}}
    trajectory = []
    for t in range(1, steps + 1):
        grads = clip_numpy(gradient_numpy(params), clip_value, clip_norm)
        rate = lr_at(t - 1) if lr_at else lr
        params = {k: rule(params[k], grads[k], slots[k], t, rate, **options) for k in params}
        trajectory.append(params)
    return trajectory


# --------------------------------------------------------------- the code under test
def backend_trajectory(backend, optimizer: Optimizer, dtype: str, steps: int = STEPS, compile: bool = False):
    """Parameters after each update, as NumPy, and the final state."""
    x, y = backend.asarray(X, dtype), backend.asarray(Y, dtype)
    params = {"W": backend.asarray(W0, dtype), "b": backend.asarray(B0, dtype)}
    state = optimizer.init(params)
    value_and_grad = backend.value_and_grad(loss_xp(backend.xp))

    def train_step(params, state, x, y):
        _, grads = value_and_grad(params, x, y)
        return optimizer.update(grads, state, params)

    if compile:
        train_step = backend.compile(train_step)
    trajectory = []
    for _ in range(steps):
        params, state = train_step(params, state, x, y)
        trajectory.append(backend.tree_to_numpy(params))
    return trajectory, state


def assert_trajectories_close(actual: list[dict], expected: list[dict], dtype: str, what: str) -> None:
    for step, (got, want) in enumerate(zip(actual, expected), start=1):
        for key in want:
            assert got[key].dtype == np.dtype(dtype), f"{what}: {key} has dtype {got[key].dtype} after step {step}"
            tol = tolerance(dtype, step)
            np.testing.assert_allclose(
                got[key], want[key], rtol=tol, atol=tol, err_msg=f"{what}: {key} after step {step}"
            )


CONFIGURATIONS = [
    (SGD, {}),
    (SGD, {"momentum": 0.9}),
    (SGD, {"momentum": 0.9, "dampening": 0.5}),
    (SGD, {"momentum": 0.9, "nesterov": True}),
    (SGD, {"weight_decay": 0.1}),
    (SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    (Adagrad, {}),
    (Adagrad, {"lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.1}),
    (RMSprop, {}),
    (RMSprop, {"centered": True}),
    (RMSprop, {"momentum": 0.5}),
    (RMSprop, {"alpha": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    (Adam, {}),
    (Adam, {"amsgrad": True, "betas": (0.8, 0.9)}),
    (Adam, {"weight_decay": 0.1}),
    (Adam, {"weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.9), "eps": 1e-6}),
    (AdamW, {}),
    (AdamW, {"weight_decay": 0.5, "amsgrad": True, "betas": (0.8, 0.9)}),
    (NAdam, {}),
    (NAdam, {"weight_decay": 0.1, "momentum_decay": 0.04}),
    (NAdam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    (SGD, {"momentum": 0.9, "clip_value": 0.05}),
    (Adam, {"clip_norm": 0.5}),
    (RMSprop, {"clip_value": 0.3, "clip_norm": 0.4}),
]


def configuration_id(configuration) -> str:
    cls, options = configuration
    return cls.name + "".join(f"-{k}={v}" for k, v in options.items())


def make(cls, options: dict) -> Optimizer:
    options = dict(options)
    lr = options.pop("lr", DEFAULT_LR[cls])
    return cls(lr, **options)


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=configuration_id)
def test_trajectory_matches_the_documented_rule(backend, configuration):
    cls, options = configuration
    expected = reference_trajectory(cls, options)
    for dtype in float_dtypes(backend):
        actual, state = backend_trajectory(backend, make(cls, options), dtype)
        assert_trajectories_close(actual, expected, dtype, f"{configuration_id(configuration)} in {dtype}")
        assert int(backend.to_numpy(state["step"])) == STEPS


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=configuration_id)
def test_trajectory_matches_torch_optim(backend, configuration):
    torch = pytest.importorskip("torch")
    cls, options = configuration
    options = dict(options)
    clip_value, clip_norm = options.pop("clip_value", None), options.pop("clip_norm", None)
    lr = DEFAULT_LR[cls]
    W = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(B0, dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor(X), torch.tensor(Y)
    # torch keeps scalar state such as NAdam's mu_product in the default dtype: make it float64.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        expected = torch_trajectory(torch, cls.name, W, b, x, y, lr, options, clip_value, clip_norm)
    finally:
        torch.set_default_dtype(default_dtype)
    dtype = float_dtypes(backend)[-1]
    actual, _ = backend_trajectory(backend, make(cls, configuration[1]), dtype)
    assert_trajectories_close(
        actual, expected, dtype, f"{configuration_id(configuration)} against torch.optim in {dtype}"
    )


def torch_trajectory(torch, name, W, b, x, y, lr, options, clip_value, clip_norm) -> list[dict]:
    """torch.optim.<name> stepped STEPS times on the least-squares problem, clipping as ours does."""
    torch_optimizer = getattr(torch.optim, name)([W, b], lr=lr, **options)
    expected = []
    for _ in range(STEPS):
        torch_optimizer.zero_grad()
        torch.mean((x @ W + b - y) ** 2).backward()
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_([W, b], clip_value)
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_([W, b], clip_norm)
        torch_optimizer.step()
        expected.append({"W": W.detach().numpy().copy(), "b": b.detach().numpy().copy()})
    return expected


def test_amsgrad_configuration_exercises_the_running_maximum():
    """The amsgrad cases above would prove nothing if v_t never decreased on this problem."""
    plain = reference_trajectory(Adam, {"betas": (0.8, 0.9)})
    with_maximum = reference_trajectory(Adam, {"amsgrad": True, "betas": (0.8, 0.9)})
    assert np.max(np.abs(plain[-1]["W"] - with_maximum[-1]["W"])) > 1e-3


def test_defaults_are_torch_defaults():
    torch = pytest.importorskip("torch")
    dummy = [torch.zeros(1, requires_grad=True)]
    for cls in (Adagrad, RMSprop, Adam, AdamW, NAdam):
        ours = cls().hyperparameters
        theirs = getattr(torch.optim, cls.name)(dummy).defaults
        for key, value in ours.items():
            if key in theirs:
                theirs_plain = tuple(theirs[key]) if isinstance(theirs[key], (list, tuple)) else theirs[key]
                assert theirs_plain == value, f"{cls.name}.{key}: {value} != torch {theirs[key]}"
    sgd = SGD(0.1).hyperparameters
    theirs = torch.optim.SGD(dummy, lr=0.1).defaults
    assert all(theirs[key] == sgd[key] for key in ("lr", "momentum", "dampening", "nesterov", "weight_decay"))


# ------------------------------------------------------------------ learning rates
SCHEDULED = [
    (SGD, {"momentum": 0.9}, step_decay(0.1, step_size=5, gamma=0.5), lambda s: 0.1 * 0.5 ** (s // 5)),
    (
        Adam,
        {"amsgrad": True},
        cosine(0.1, total_steps=15, min_lr=0.01),
        lambda s: 0.01 + 0.5 * 0.09 * (1 + math.cos(math.pi * min(s, 15) / 15)),
    ),
    (NAdam, {}, linear_warmup(0.05, warmup_steps=4), lambda s: 0.05 * min(s + 1, 4) / 4),
]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("case", SCHEDULED, ids=lambda case: f"{case[0].name}-{case[2].name}")
def test_schedule_drives_the_learning_rate(backend, case, compiled):
    """The schedule is evaluated at the number of updates done before (0 at the first), from
    the step count in the state, also inside the backend's compiler."""
    cls, options, schedule, lr_at = case
    expected = reference_trajectory(cls, options, steps=8, lr_at=lr_at)
    dtype = float_dtypes(backend)[0]
    actual, state = backend_trajectory(backend, cls(schedule, **options), dtype, steps=8, compile=compiled)
    assert_trajectories_close(actual, expected, dtype, f"{cls.name} with {schedule!r}")
    assert int(backend.to_numpy(state["step"])) == 8


def test_compiled_step_matches_eager_trajectory(backend):
    optimizer = Adam(0.05, weight_decay=0.1, amsgrad=True, clip_norm=1.0)
    expected = reference_trajectory(Adam, {"weight_decay": 0.1, "amsgrad": True, "clip_norm": 1.0}, steps=6)
    dtype = float_dtypes(backend)[0]
    actual, state = backend_trajectory(backend, optimizer, dtype, steps=6, compile=True)
    assert_trajectories_close(actual, expected, dtype, "compiled Adam")
    assert backend.dtype_name(state["step"].dtype) == "int32"


# ------------------------------------------------------------------ state and purity
def small_problem(backend, dtype="float32"):
    params = {"W": backend.asarray(W0, dtype), "b": backend.asarray(B0, dtype)}
    grads = backend.tree_asarray(gradient_numpy({"W": W0, "b": B0}), dtype)
    return params, grads


@pytest.mark.parametrize("cls", [SGD, Adagrad, RMSprop, Adam, AdamW, NAdam], ids=lambda cls: cls.name)
def test_update_leaves_old_state_and_params_unchanged(backend, cls):
    optimizer = make(cls, {"momentum": 0.5} if cls in (SGD, RMSprop) else {})
    params, grads = small_problem(backend)
    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)  # slots now non-trivial
    before_state, before_params = backend.tree_to_numpy(state), backend.tree_to_numpy(params)
    new_params, new_state = optimizer.update(grads, state, params)
    after_state, after_params = backend.tree_to_numpy(state), backend.tree_to_numpy(params)
    for old, now in zip(portable_dl.tree_leaves(before_state), portable_dl.tree_leaves(after_state)):
        np.testing.assert_array_equal(old, now)
    for old, now in zip(portable_dl.tree_leaves(before_params), portable_dl.tree_leaves(after_params)):
        np.testing.assert_array_equal(old, now)
    assert int(backend.to_numpy(new_state["step"])) == 2 and int(after_state["step"]) == 1
    assert not np.allclose(backend.to_numpy(new_params["W"]), before_params["W"])


def test_state_layout_names_torch_state_keys(backend):
    params, _ = small_problem(backend)
    state = Adam(amsgrad=True).init(params)
    assert set(state) == {"step", "slots"} and int(backend.to_numpy(state["step"])) == 0
    assert set(state["slots"]["W"]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert tuple(state["slots"]["W"]["exp_avg"].shape) == (3, 2)
    assert SGD(0.1).init(params)["slots"] == {"W": {}, "b": {}}
    nadam_slots = NAdam().init(params)["slots"]["b"]
    assert tuple(nadam_slots["mu_product"].shape) == () and float(backend.to_numpy(nadam_slots["mu_product"])) == 1.0


def test_frozen_leaves_are_skipped(backend):
    """None in grads (or in params) leaves that parameter and its slots as they were."""
    params, grads = small_problem(backend)
    optimizer = Adam(0.1)
    state = optimizer.init(params)
    new_params, new_state = optimizer.update({"W": grads["W"], "b": None}, state, params)
    np.testing.assert_array_equal(backend.to_numpy(new_params["b"]), B0.astype("float32"))
    np.testing.assert_array_equal(backend.to_numpy(new_state["slots"]["b"]["exp_avg"]), np.zeros(2, "float32"))
    expected_W = W0 - 0.1 * np.sign(gradient_numpy({"W": W0, "b": B0})["W"])  # Adam's first step: lr * sign(g)
    np.testing.assert_allclose(backend.to_numpy(new_params["W"]), expected_W, rtol=1e-5, atol=1e-5)

    trainable_params, _ = optimizer.update({"W": grads["W"], "b": None}, state, {"W": params["W"], "b": None})
    assert trainable_params["b"] is None
    np.testing.assert_allclose(backend.to_numpy(trainable_params["W"]), expected_W, rtol=1e-5, atol=1e-5)


def test_nested_lists_of_layers(backend):
    """Parameters shaped like an MLP's: {"layers": [{"W", "b"}, {"W", "b"}]}."""
    params = {
        "layers": [
            {"W": backend.asarray(W0, "float32"), "b": backend.asarray(B0, "float32")},
            {"W": backend.asarray(2 * W0, "float32")},
        ]
    }
    grads = portable_dl.tree_map(lambda p: p, params)  # gradient = parameter: SGD gives (1 - lr) * p
    new_params, _ = SGD(0.25).update(grads, SGD(0.25).init(params), params)
    np.testing.assert_allclose(backend.to_numpy(new_params["layers"][1]["W"]), 1.5 * W0, rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(new_params["layers"][0]["b"]), 0.75 * B0, rtol=1e-6)


# ----------------------------------------------------------------------- bad input
def test_gradient_of_the_wrong_shape_raises_shape_error(backend):
    params, grads = small_problem(backend)
    optimizer = Adam()
    state = optimizer.init(params)
    wrong = {"W": backend.asarray(np.ones((2, 3)), "float32"), "b": grads["b"]}
    with pytest.raises(ShapeError, match=r"'W'.*\(2, 3\).*\(3, 2\)"):
        optimizer.update(wrong, state, params)
    with pytest.raises(ShapeError, match="keys"):
        optimizer.update({"W": grads["W"]}, state, params)
    assert int(backend.to_numpy(state["step"])) == 0


def test_integer_parameters_raise_dtype_error(backend):
    params = {"n": backend.asarray(np.array([1, 2]), "int32")}
    state = SGD(0.1).init(params)
    with pytest.raises(portable_dl.DTypeError, match="'n'.*floating-point parameters only"):
        SGD(0.1).update(params, state, params)


def test_state_of_other_params_is_refused(backend):
    params, grads = small_problem(backend)
    other_state = Adam().init({"V": params["W"]})
    with pytest.raises(ValueError, match="state does not match"):
        Adam().update(grads, other_state, params)
    with pytest.raises(ValueError, match="state"):
        Adam().update(grads, {"exp_avg": 0}, params)


@pytest.mark.parametrize(
    "make_optimizer, message",
    [
        (lambda: SGD(-0.1), "lr must be >= 0"),
        (lambda: SGD("0.1"), "lr must be a non-negative number or a schedule"),
        (lambda: SGD(True), "lr must be"),
        (lambda: SGD(0.1, momentum=-0.5), "momentum must lie in"),
        (lambda: SGD(0.1, dampening=2.0), "dampening must lie in"),
        (lambda: SGD(0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
        (lambda: SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening == 0"),
        (lambda: SGD(0.1, weight_decay=float("nan")), "weight_decay must be a finite real number"),
        (lambda: Adagrad(lr_decay=-1.0), "lr_decay must be >= 0"),
        (lambda: Adagrad(initial_accumulator_value=-0.1), "initial_accumulator_value must be >= 0"),
        (lambda: RMSprop(alpha=1.5), "alpha must lie in"),
        (lambda: RMSprop(centered=1), "centered must be True or False"),
        (lambda: Adam(betas=(1.0, 0.999)), r"betas\[0\] must lie in \[0, 1\)"),
        (lambda: Adam(betas=(0.9, -0.1)), r"betas\[1\] must lie in"),
        (lambda: Adam(betas=(0.9,)), "betas must be a pair"),
        (lambda: Adam(eps=-1e-8), "eps must be >= 0"),
        (lambda: Adam(amsgrad="yes"), "amsgrad must be True or False"),
        (lambda: AdamW(weight_decay=-0.01), "weight_decay must be >= 0"),
        (lambda: NAdam(momentum_decay=-0.004), "momentum_decay must be >= 0"),
        (lambda: Adam(clip_norm=0.0), "clip_norm must be > 0"),
        (lambda: SGD(0.1, clip_value=-1.0), "clip_value must be > 0"),
    ],
)
def test_invalid_hyperparameters_raise_value_error(make_optimizer, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer()


def test_the_base_class_is_abstract():
    with pytest.raises(TypeError):
        Optimizer(0.1)


def test_name_and_hyperparameters_are_plain_values():
    adam = Adam(lr=cosine(0.01, total_steps=100))
    assert adam.name == "Adam" and AdamW().name == "AdamW" and NAdam().name == "NAdam"
    assert adam.hyperparameters == {
        "lr": {"schedule": "cosine", "lr": 0.01, "total_steps": 100, "min_lr": 0.0},
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "clip_norm": None,
        "clip_value": None,
    }
    assert SGD(0.1, momentum=0.9).hyperparameters == {
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
        "clip_norm": None,
        "clip_value": None,
    }
    assert repr(RMSprop(centered=True)).startswith("RMSprop(lr=0.01, alpha=0.99")


# ------------------------------------------------------- how optimizers are written
@pytest.mark.parametrize("cls", [SGD, Adagrad, RMSprop, Adam, AdamW, NAdam], ids=lambda cls: cls.name)
def test_hyperparameters_are_declared_once(cls):
    """The constructor's parameters, the hyperparameters listed, and the checks are one
    declaration: dataclasses.replace validates as the constructor does."""
    optimizer = cls(0.1)
    assert list(inspect.signature(cls).parameters) == list(optimizer.hyperparameters)
    assert {field.name for field in dataclasses.fields(optimizer)} == set(optimizer.hyperparameters)
    with pytest.raises(ValueError, match=f"{cls.name}: weight_decay must be >= 0"):
        dataclasses.replace(optimizer, weight_decay=-1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        optimizer.lr = 0.5
    assert dataclasses.replace(optimizer, lr=0.25).lr == 0.25 and optimizer.lr == 0.1


def test_the_namespace_is_looked_up_once_per_update(backend, monkeypatch):
    """init_single and update_single receive xp; nothing looks the backend up per parameter."""
    from portable_dl.optimizers import base

    calls = []

    def counting_backend_of(*arrays):
        calls.append(len(arrays))
        return portable_dl.backend_of(*arrays)

    monkeypatch.setattr(base, "backend_of", counting_backend_of)
    params = {"layers": [{"W": backend.asarray(W0, "float32"), "b": backend.asarray(B0, "float32")}] * 3}
    optimizer = NAdam(0.1, weight_decay=0.1)
    state = optimizer.init(params)
    assert calls == [6]
    optimizer.update(portable_dl.tree_map(lambda p: p, params), state, params)
    assert calls == [6, 6]
    for module in ("sgd", "adagrad", "rmsprop", "adam"):
        assert "backend_of" not in vars(importlib.import_module(f"portable_dl.optimizers.{module}"))


@pytest.mark.parametrize("cls", [SGD, Adagrad, RMSprop, Adam, NAdam], ids=lambda cls: cls.name)
def test_l2_weight_decay_is_the_gradient_plus_lambda_theta(backend, cls):
    """Every optimizer's L2 weight decay is the one in the base class: three steps with
    weight_decay=2 on g are three steps without it on g + 2 theta (theta the current
    parameters, the penalty computed here in NumPy)."""
    params, grads = small_problem(backend)
    optimizer = make(cls, {"lr": 0.1, **({"momentum": 0.5} if cls in (SGD, RMSprop) else {})})
    decayed = dataclasses.replace(optimizer, weight_decay=2.0)
    runs = {}
    for name, rule in (("decayed", decayed), ("by hand", optimizer), ("no decay", optimizer)):
        theta, state = params, rule.init(params)
        for _ in range(3):
            g = grads
            if name == "by hand":
                g = {
                    key: backend.asarray(backend.to_numpy(grads[key]) + np.float32(2.0) * backend.to_numpy(theta[key]))
                    for key in ("W", "b")
                }
            theta, state = rule.update(g, state, theta)
        runs[name] = backend.tree_to_numpy(theta)
    for key in ("W", "b"):
        np.testing.assert_allclose(runs["decayed"][key], runs["by hand"][key], rtol=1e-5, atol=1e-6)
        # the decay did something, well beyond the tolerance of the comparison above
        assert np.abs(runs["decayed"][key] - runs["no decay"][key]).max() > 2e-4


def test_decoupled_weight_decay_shrinks_the_parameters_first(backend):
    """AdamW (and NAdam with decoupled_weight_decay) = the plain rule applied to (1 - lr lambda) theta."""
    params, grads = small_problem(backend)
    for decoupled, plain in (
        (AdamW(0.1, weight_decay=0.3), Adam(0.1)),
        (NAdam(0.1, weight_decay=0.3, decoupled_weight_decay=True), NAdam(0.1)),
    ):
        new, _ = decoupled.update(grads, decoupled.init(params), params)
        shrunk = {
            "W": backend.asarray((1 - 0.1 * 0.3) * W0, "float32"),
            "b": backend.asarray((1 - 0.1 * 0.3) * B0, "float32"),
        }
        expected, _ = plain.update(grads, plain.init(shrunk), shrunk)
        for key in ("W", "b"):
            np.testing.assert_allclose(
                backend.to_numpy(new[key]), backend.to_numpy(expected[key]), rtol=2e-6, atol=2e-7
            )


def test_structure_errors_name_the_path_and_the_tree(backend):
    params, grads = small_problem(backend)
    nested = {"layers": [params, params]}
    optimizer = Adam()
    state = optimizer.init(nested)
    with pytest.raises(
        portable_dl.TreeStructureError,
        match=r"Adam.update: the gradients do not match the parameters at 'layers': the parameters have "
        r"a list of 2, the gradients a list of 1",
    ):
        optimizer.update({"layers": [grads]}, state, nested)
    with pytest.raises(
        portable_dl.TreeStructureError, match=r"optimizer state does not match the parameters at 'layers\.1'"
    ):
        optimizer.update({"layers": [grads, grads]}, optimizer.init({"layers": [params, {"W": params["W"]}]}), nested)
    with pytest.raises(ShapeError, match=r"gradient of parameter 'layers\.0\.b' is a dict, not an array"):
        optimizer.update({"layers": [{"W": grads["W"], "b": {"x": grads["b"]}}, grads]}, state, nested)
