"""RMSprop: gradients divided by a running root mean square, optionally centered and with momentum."""

from __future__ import annotations

from typing import Any, Callable

from ..registry import backend_of
from .base import Optimizer, decay_rate, flag, non_negative

__all__ = ["RMSprop"]


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
    ``"momentum_buffer"`` with momentum.
    """

    name = "RMSprop"

    def __init__(self, lr: float | Callable = 0.01, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *,
                 clip_norm: float | None = None, clip_value: float | None = None):
        super().__init__(lr, clip_norm=clip_norm, clip_value=clip_value)
        self.alpha = decay_rate(self.name, "alpha", alpha, closed=True)
        self.eps = non_negative(self.name, "eps", eps)
        self.weight_decay = non_negative(self.name, "weight_decay", weight_decay)
        self.momentum = decay_rate(self.name, "momentum", momentum)
        self.centered = flag(self.name, "centered", centered)

    def own_hyperparameters(self) -> dict:
        return {"alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def init_single(self, param: Any) -> dict:
        zeros_like = backend_of(param).xp.zeros_like
        slots = {"square_avg": zeros_like(param)}
        if self.centered:
            slots["grad_avg"] = zeros_like(param)
        if self.momentum:
            slots["momentum_buffer"] = zeros_like(param)
        return slots

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any) -> tuple[Any, dict]:
        xp = backend_of(param).xp
        alpha = self.alpha
        g = grad + self.weight_decay * param if self.weight_decay else grad
        square_avg = alpha * slots["square_avg"] + (1.0 - alpha) * g * g
        new_slots = {"square_avg": square_avg}
        if self.centered:
            grad_avg = alpha * slots["grad_avg"] + (1.0 - alpha) * g
            new_slots["grad_avg"] = grad_avg
            mean_square = square_avg - grad_avg * grad_avg
        else:
            mean_square = square_avg
        step = g / (xp.sqrt(mean_square) + self.eps)
        if self.momentum:
            step = self.momentum * slots["momentum_buffer"] + step
            new_slots["momentum_buffer"] = step
        return param - lr * step, new_slots
