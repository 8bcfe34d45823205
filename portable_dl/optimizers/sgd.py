"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and L2 weight decay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Optimizer, decay_rate, flag, fraction, hyperparameter, non_negative

__all__ = ["SGD"]


@dataclass(eq=False, repr=False, frozen=True)
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
    Weight decay is added to the gradient by :class:`~portable_dl.optimizers.base.Optimizer`.
    """

    name = "SGD"

    momentum: float = hyperparameter(0.0, decay_rate)
    dampening: float = hyperparameter(0.0, fraction)
    nesterov: bool = hyperparameter(False, flag)
    weight_decay: float = hyperparameter(0.0, non_negative)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(
                f"SGD: Nesterov momentum needs momentum > 0 and dampening == 0, "
                f"got momentum={self.momentum!r}, dampening={self.dampening!r}"
            )

    def init_single(self, param: Any, xp: Any) -> dict:
        if self.momentum == 0.0:
            return {}
        return {"momentum_buffer": xp.zeros_like(param)}

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any, xp: Any) -> tuple[Any, dict]:
        if self.momentum == 0.0:
            return param - lr * grad, {}
        b = xp.where(xp.equal(t, 1.0), grad, self.momentum * slots["momentum_buffer"] + (1.0 - self.dampening) * grad)
        direction = grad + self.momentum * b if self.nesterov else b
        return param - lr * direction, {"momentum_buffer": b}
