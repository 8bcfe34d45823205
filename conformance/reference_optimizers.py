"""Optimizers written again, independently, in NumPy float64: the reference trajectories.

The front end's optimizers run on every backend, so a fault in one of them (a missing bias
correction, say) would show the same on all backends and on the NumPy backend too. The
optimizers family therefore judges trajectories against these, written from the update
rules documented for ``torch.optim`` and checked against ``torch.optim`` itself in the
tests. Each is ``step(param, grad, state, t) -> param`` for one NumPy array, with ``t``
the 1-based step number and ``state`` a dict it fills in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Step = Callable[[np.ndarray, np.ndarray, dict, int], np.ndarray]


def sgd(
    lr: float, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
) -> Step:
    def step(p, g, state, t):
        g = g + weight_decay * p
        if momentum:
            state["b"] = g if t == 1 else momentum * state["b"] + (1 - dampening) * g
            g = g + momentum * state["b"] if nesterov else state["b"]
        return p - lr * g

    return step


def adagrad(
    lr: float = 0.01,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> Step:
    def step(p, g, state, t):
        g = g + weight_decay * p
        decayed_lr = lr / (1 + (t - 1) * lr_decay)
        state["sum"] = state.get("sum", np.full_like(p, initial_accumulator_value)) + g * g
        return p - decayed_lr * g / (np.sqrt(state["sum"]) + eps)

    return step


def rmsprop(
    lr: float = 0.01,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> Step:
    def step(p, g, state, t):
        g = g + weight_decay * p
        state["v"] = alpha * state.get("v", np.zeros_like(p)) + (1 - alpha) * g * g
        v = state["v"]
        if centered:
            state["g_ave"] = alpha * state.get("g_ave", np.zeros_like(p)) + (1 - alpha) * g
            v = v - state["g_ave"] ** 2
        if momentum > 0:
            state["b"] = momentum * state.get("b", np.zeros_like(p)) + g / (np.sqrt(v) + eps)
            return p - lr * state["b"]
        return p - lr * g / (np.sqrt(v) + eps)

    return step


def adam(
    lr: float = 0.001,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    decoupled: bool = False,
) -> Step:
    beta1, beta2 = betas

    def step(p, g, state, t):
        if decoupled:
            p = p * (1 - lr * weight_decay)  # AdamW: decay the weights, not the gradient
        else:
            g = g + weight_decay * p
        state["m"] = beta1 * state.get("m", np.zeros_like(p)) + (1 - beta1) * g
        state["v"] = beta2 * state.get("v", np.zeros_like(p)) + (1 - beta2) * g * g
        m_hat = state["m"] / (1 - beta1**t)
        v = state["v"]
        if amsgrad:
            state["v_max"] = np.maximum(state.get("v_max", np.zeros_like(p)), v)
            v = state["v_max"]
        v_hat = v / (1 - beta2**t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)

    return step


def adamw(
    lr: float = 0.001, betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False
) -> Step:
    return adam(lr, betas, eps, weight_decay, amsgrad, decoupled=True)


def nadam(
    lr: float = 0.002,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 0.004,
) -> Step:
    beta1, beta2 = betas

    def mu(t: int) -> float:
        return beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    def step(p, g, state, t):
        g = g + weight_decay * p
        state["mu_product"] = state.get("mu_product", 1.0) * mu(t)
        state["m"] = beta1 * state.get("m", np.zeros_like(p)) + (1 - beta1) * g
        state["v"] = beta2 * state.get("v", np.zeros_like(p)) + (1 - beta2) * g * g
        m_hat = mu(t + 1) * state["m"] / (1 - state["mu_product"] * mu(t + 1)) + (1 - mu(t)) * g / (
            1 - state["mu_product"]
        )
        v_hat = state["v"] / (1 - beta2**t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)

    return step
