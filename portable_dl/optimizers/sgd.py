"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and L2 weight decay."""

from __future__ import annotations

from typing import Any, Callable

from ..registry import backend_of
from .base import Optimizer, decay_rate, flag, non_negative

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    With learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau` and
    weight decay :math:`\lambda`, at update :math:`t = 1, 2, \dots`:

    .. math::

        g_t &= \nabla_\theta f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        b_t &= \begin{cases} g_t & t = 1 \\ \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases} \\
        g_t &\leftarrow g_t + \mu b_t \ \text{(Nesterov)}, \quad\text{else}\quad g_t \leftarrow b_t \\
        \theta_t &= \theta_{t-1} - \gamma g_t

    (without momentum, :math:`\mu = 0`, the middle lines are skipped). The first buffer is
    the gradient itself, undamped, as in torch; MLX's ``SGD`` starts its buffer at zero, so
    with dampening its first step is damped too. Keras' ``SGD`` has no dampening and keeps
    :math:`v = \mu v - \gamma g` (the buffer holds the learning rate; the same trajectory for
    a constant rate).

    Args:
        lr: learning rate (no default, as in torch), a float or a schedule.
        momentum: :math:`\mu \in [0, 1)`; 0 (default) gives plain SGD and keeps no state
            (torch accepts any momentum >= 0; from 1 on the buffer grows without bound).
        dampening: :math:`\tau \in [0, 1]`, default 0.
        nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
        weight_decay: :math:`\lambda \ge 0`, the L2 penalty added to the gradient.
        clip_norm, clip_value: gradient clipping, see :class:`~portable_dl.optimizers.base.Optimizer`.

    Slots per parameter: ``{"momentum_buffer": b}`` when ``momentum > 0``, else none.
    """

    name = "SGD"

    def __init__(self, lr: float | Callable, momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, *, clip_norm: float | None = None, clip_value: float | None = None):
        super().__init__(lr, clip_norm=clip_norm, clip_value=clip_value)
        self.momentum = decay_rate(self.name, "momentum", momentum)
        self.dampening = decay_rate(self.name, "dampening", dampening, closed=True)
        self.nesterov = flag(self.name, "nesterov", nesterov)
        self.weight_decay = non_negative(self.name, "weight_decay", weight_decay)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening == 0, "
                             f"got momentum={self.momentum!r}, dampening={self.dampening!r}")

    def own_hyperparameters(self) -> dict:
        return {"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def init_single(self, param: Any) -> dict:
        if self.momentum == 0.0:
            return {}
        return {"momentum_buffer": backend_of(param).xp.zeros_like(param)}

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any) -> tuple[Any, dict]:
        xp = backend_of(param).xp
        g = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum == 0.0:
            return param - lr * g, {}
        continued = self.momentum * slots["momentum_buffer"] + (1.0 - self.dampening) * g
        buffer = xp.where(xp.equal(t, 1.0), g, continued)
        direction = g + self.momentum * buffer if self.nesterov else buffer
        return param - lr * direction, {"momentum_buffer": buffer}
