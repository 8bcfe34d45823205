"""RMSprop: gradients divided by a running root mean square, optionally centered and with momentum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import (
    Optimizer,
    decay_rate,
    flag,
    fraction,
    hyperparameter,
    learning_rate,
    non_negative,
)

__all__ = ["RMSprop"]


@dataclass(eq=False, repr=False, frozen=True)
class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``.

    With learning rate :math:`\gamma`, smoothing :math:`\alpha`, momentum :math:`\mu`,
    weight decay :math:`\lambda` and :math:`\epsilon`, from :math:`v_0 = \bar g_0 = b_0 = 0`,
    at update :math:`t = 1, 2, \dots`:

    .. math::

        g_t &= \nabla_\theta f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \tilde v_t &= v_t, \quad\text{or, centered,}\quad
            \bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t, \ \tilde v_t = v_t - \bar g_t^2 \\
        u_t &= g_t / (\sqrt{\tilde v_t} + \epsilon) \\
        b_t &= \mu b_{t-1} + u_t, \quad \theta_t = \theta_{t-1} - \gamma b_t
            \quad\text{(with momentum, else } \theta_t = \theta_{t-1} - \gamma u_t)

    :math:`\epsilon` is added outside the square root, as in torch and MLX; Keras' ``RMSprop``
    defaults differ: ``learning_rate=0.001``, ``rho=0.9``, ``epsilon=1e-7``.

    Args:
        lr: :math:`\gamma`, default 0.01, a float or a schedule.
        alpha: :math:`\alpha \in [0, 1]`, default 0.99.
        eps: :math:`\epsilon \ge 0`, default 1e-8.
        weight_decay: :math:`\lambda \ge 0`, default 0.
        momentum: :math:`\mu \in [0, 1)`, default 0.
        centered: subtract the square of the running mean gradient (an estimate of the
            variance), default False.
        clip_norm, clip_value: gradient clipping, see :class:`~portable_dl.optimizers.base.Optimizer`.

    Slots per parameter: ``{"square_avg": v}``, plus ``"grad_avg"`` when centered and
    ``"momentum_buffer"`` with momentum: :math:`v`, :math:`\bar g` and :math:`b`. Weight decay
    is added to the gradient by :class:`~portable_dl.optimizers.base.Optimizer`.
    """

    name = "RMSprop"

    lr: float | Callable = hyperparameter(0.01, learning_rate)
    alpha: float = hyperparameter(0.99, fraction)
    eps: float = hyperparameter(1e-8, non_negative)
    weight_decay: float = hyperparameter(0.0, non_negative)
    momentum: float = hyperparameter(0.0, decay_rate)
    centered: bool = hyperparameter(False, flag)

    def init_single(self, param: Any, xp: Any) -> dict:
        slots = {"square_avg": xp.zeros_like(param)}
        if self.centered:
            slots["grad_avg"] = xp.zeros_like(param)
        if self.momentum:
            slots["momentum_buffer"] = xp.zeros_like(param)
        return slots

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any, xp: Any) -> tuple[Any, dict]:
        alpha = self.alpha
        v = alpha * slots["square_avg"] + (1.0 - alpha) * grad * grad
        new_slots = {"square_avg": v}
        if self.centered:
            g_bar = alpha * slots["grad_avg"] + (1.0 - alpha) * grad
            new_slots["grad_avg"] = g_bar
            v_tilde = v - g_bar * g_bar
        else:
            v_tilde = v
        u = grad / (xp.sqrt(v_tilde) + self.eps)
        if not self.momentum:
            return param - lr * u, new_slots
        b = self.momentum * slots["momentum_buffer"] + u
        new_slots["momentum_buffer"] = b
        return param - lr * b, new_slots
