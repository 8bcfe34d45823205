"""The optimizers family: parameter trajectories from identical initial weights.

Every optimizer (with its main options), every learning-rate schedule and both kinds of
gradient clipping run for 50 steps on one fixed least-squares problem, eagerly, on each
backend, with gradients from the backend's own autodiff. The whole trajectory (the
parameters after every step, and the loss before it) is judged against a reference that
shares nothing with the front end: analytic gradients and the NumPy optimizers of
:mod:`.reference_optimizers` in float64, themselves checked against ``torch.optim``. A fault
in the front end's optimizer (a missing bias correction) therefore fails on every backend.
The tolerance grows with the number of steps: rounding differences compound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend

from . import reference_optimizers as ref
from .cases import Case, Outputs

FAMILY = "optimizers"
STEPS = 50
QUICK_STEPS = 10
SAMPLES, FEATURES, OUTPUTS = 32, 5, 3


def least_squares_problem(seed: int) -> dict[str, np.ndarray]:
    """y = x W* + b* + noise, and small initial weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(SAMPLES, FEATURES))
    y = (
        x @ rng.normal(size=(FEATURES, OUTPUTS))
        + rng.normal(size=(OUTPUTS,))
        + 0.1 * rng.normal(size=(SAMPLES, OUTPUTS))
    )
    return {"x": x, "y": y, "W": 0.1 * rng.normal(size=(FEATURES, OUTPUTS)), "b": np.zeros(OUTPUTS)}


def least_squares_gradient(problem: dict, W: np.ndarray, b: np.ndarray) -> tuple[float, dict]:
    """Loss mean((x W + b - y)^2) and its gradient, derived by hand."""
    residual = problem["x"] @ W + b - problem["y"]
    d_residual = 2 * residual / residual.size
    return float(np.mean(residual**2)), {"W": problem["x"].T @ d_residual, "b": d_residual.sum(axis=0)}


def constant_rate(lr: float) -> Callable[[int], float]:
    return lambda k: lr


def cosine_rate(lr: float, total: int, min_lr: float = 0.0) -> Callable[[int], float]:
    return lambda k: min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(k, total) / total))


def warmup_rate(inner: Callable[[int], float], warmup: int) -> Callable[[int], float]:
    return lambda k: inner(0) * (k + 1) / warmup if k < warmup else inner(k - warmup)


#: name -> (the front end's optimizer, the reference rule given a learning rate, the
#: learning rate after k updates, clipping {"value": v, "norm": n}).
Configuration = tuple[Callable[[], Any], Callable[[float], ref.Step], Callable[[int], float], dict]


def configurations() -> dict[str, Configuration]:
    from portable_dl import optimizers as o
    from portable_dl import schedules as s

    return {
        "SGD": (lambda: o.SGD(lr=0.05), lambda lr: ref.sgd(lr), constant_rate(0.05), {}),
        "SGD momentum": (
            lambda: o.SGD(lr=0.02, momentum=0.9),
            lambda lr: ref.sgd(lr, momentum=0.9),
            constant_rate(0.02),
            {},
        ),
        "SGD nesterov": (
            lambda: o.SGD(lr=0.02, momentum=0.9, nesterov=True),
            lambda lr: ref.sgd(lr, momentum=0.9, nesterov=True),
            constant_rate(0.02),
            {},
        ),
        "SGD dampening weight_decay": (
            lambda: o.SGD(lr=0.02, momentum=0.9, dampening=0.5, weight_decay=0.01),
            lambda lr: ref.sgd(lr, momentum=0.9, dampening=0.5, weight_decay=0.01),
            constant_rate(0.02),
            {},
        ),
        "Adagrad": (lambda: o.Adagrad(lr=0.1), lambda lr: ref.adagrad(lr), constant_rate(0.1), {}),
        "Adagrad lr_decay weight_decay": (
            lambda: o.Adagrad(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
            lambda lr: ref.adagrad(lr, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
            constant_rate(0.1),
            {},
        ),
        "RMSprop": (lambda: o.RMSprop(lr=0.005), lambda lr: ref.rmsprop(lr), constant_rate(0.005), {}),
        "RMSprop centered momentum": (
            lambda: o.RMSprop(lr=0.002, momentum=0.9, centered=True),
            lambda lr: ref.rmsprop(lr, momentum=0.9, centered=True),
            constant_rate(0.002),
            {},
        ),
        "Adam": (lambda: o.Adam(lr=0.01), lambda lr: ref.adam(lr), constant_rate(0.01), {}),
        "Adam amsgrad weight_decay": (
            lambda: o.Adam(lr=0.01, amsgrad=True, weight_decay=0.01),
            lambda lr: ref.adam(lr, amsgrad=True, weight_decay=0.01),
            constant_rate(0.01),
            {},
        ),
        "AdamW": (
            lambda: o.AdamW(lr=0.01, weight_decay=0.1),
            lambda lr: ref.adamw(lr, weight_decay=0.1),
            constant_rate(0.01),
            {},
        ),
        "NAdam": (lambda: o.NAdam(lr=0.01), lambda lr: ref.nadam(lr), constant_rate(0.01), {}),
        "schedule step_decay": (
            lambda: o.SGD(lr=s.step_decay(0.05, step_size=10, gamma=0.5), momentum=0.5),
            lambda lr: ref.sgd(lr, momentum=0.5),
            lambda k: 0.05 * 0.5 ** (k // 10),
            {},
        ),
        "schedule exponential": (
            lambda: o.SGD(lr=s.exponential(0.05, gamma=0.95), momentum=0.5),
            lambda lr: ref.sgd(lr, momentum=0.5),
            lambda k: 0.05 * 0.95**k,
            {},
        ),
        "schedule cosine": (
            lambda: o.SGD(lr=s.cosine(0.05, total_steps=STEPS, min_lr=0.001), momentum=0.5),
            lambda lr: ref.sgd(lr, momentum=0.5),
            cosine_rate(0.05, STEPS, 0.001),
            {},
        ),
        "schedule linear_warmup of cosine": (
            lambda: o.Adam(lr=s.linear_warmup(s.cosine(0.02, total_steps=STEPS), warmup_steps=10)),
            lambda lr: ref.adam(lr),
            warmup_rate(cosine_rate(0.02, STEPS), 10),
            {},
        ),
        "schedule join": (
            lambda: o.SGD(lr=s.join([s.constant(0.05), s.exponential(0.05, gamma=0.9)], boundaries=[20]), momentum=0.5),
            lambda lr: ref.sgd(lr, momentum=0.5),
            lambda k: 0.05 if k < 20 else 0.05 * 0.9 ** (k - 20),
            {},
        ),
        "clip by global norm": (
            lambda: o.SGD(lr=0.05, clip_norm=1.0),
            lambda lr: ref.sgd(lr),
            constant_rate(0.05),
            {"norm": 1.0},
        ),
        "clip by value": (
            lambda: o.SGD(lr=0.05, clip_value=0.5),
            lambda lr: ref.sgd(lr),
            constant_rate(0.05),
            {"value": 0.5},
        ),
    }


def reference_trajectory(
    problem: dict, rule: Callable[[float], ref.Step], rates: Callable[[int], float], clip: dict, steps: int
) -> Outputs:
    """The trajectory in NumPy float64 with hand-derived gradients and reference rules."""
    params = {"W": problem["W"].copy(), "b": problem["b"].copy()}
    states: dict[str, dict] = {"W": {}, "b": {}}
    W_path, b_path, losses = [], [], []
    for t in range(1, steps + 1):
        loss, grads = least_squares_gradient(problem, params["W"], params["b"])
        if "value" in clip:
            grads = {k: np.clip(g, -clip["value"], clip["value"]) for k, g in grads.items()}
        if "norm" in clip:
            norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
            grads = {k: g * min(1.0, clip["norm"] / (norm + 1e-6)) for k, g in grads.items()}
        step = rule(rates(t - 1))
        params = {k: step(params[k], grads[k], states[k], t) for k in params}
        losses.append(loss)
        W_path.append(params["W"])
        b_path.append(params["b"])
    return {"W trajectory": np.asarray(W_path), "b trajectory": np.asarray(b_path), "loss curve": np.asarray(losses)}


def trajectory_case(name: str, configuration: Configuration, problem: dict, steps: int) -> Case:
    make_optimizer, rule, rates, clip = configuration

    def compute(backend: Backend, dtype: str) -> Outputs:
        xp = backend.xp
        x, y = backend.asarray(problem["x"], dtype), backend.asarray(problem["y"], dtype)

        def loss(params):
            return xp.mean(xp.square(xp.subtract(xp.add(xp.matmul(x, params["W"]), params["b"]), y)))

        value_and_grad = backend.value_and_grad(loss)
        optimizer = make_optimizer()
        params = {"W": backend.asarray(problem["W"], dtype), "b": backend.asarray(problem["b"], dtype)}
        state = optimizer.init(params)
        W_path, b_path, losses = [], [], []
        for _ in range(steps):
            value, grads = value_and_grad(params)
            params, state = optimizer.update(grads, state, params)
            losses.append(backend.to_numpy(value))
            W_path.append(backend.to_numpy(params["W"]))
            b_path.append(backend.to_numpy(params["b"]))
        return {
            "W trajectory": np.asarray(W_path, np.float64),
            "b trajectory": np.asarray(b_path, np.float64),
            "loss curve": np.asarray(losses, np.float64),
            "W dtype": backend.dtype_name(params["W"].dtype),
        }

    return Case(
        FAMILY,
        name,
        compute,
        reduction_size=SAMPLES * FEATURES,
        gradient=True,
        steps=steps,
        independent_reference=lambda: reference_trajectory(problem, rule, rates, clip, steps),
    )


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every configuration for 50 steps; ``quick``: one in four for 10 steps."""
    steps = QUICK_STEPS if quick else STEPS
    problem = least_squares_problem(seed)
    chosen = list(configurations().items())
    if quick:
        chosen = chosen[::4]
    return [trajectory_case(name, configuration, problem, steps) for name, configuration in chosen]
