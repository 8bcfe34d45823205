"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Optimizer, hyperparameter, learning_rate, non_negative

__all__ = ["Adagrad"]


@dataclass(eq=False, repr=False, frozen=True)
class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    With learning rate :math:`\gamma`, learning-rate decay :math:`\eta`, weight decay
    :math:`\lambda`, initial accumulator :math:`s_0` and :math:`\epsilon`, at update
    :math:`t = 1, 2, \dots`:

    .. math::

        \tilde\gamma_t &= \gamma / (1 + (t - 1) \eta) \\
        g_t &= \nabla_\theta f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        s_t &= s_{t-1} + g_t^2 \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t \, g_t / (\sqrt{s_t} + \epsilon)

    Keras' ``Adagrad`` defaults differ: ``learning_rate=0.001``,
    ``initial_accumulator_value=0.1``, ``epsilon=1e-7``; MLX's has ``eps=1e-8`` and no decay.

    Args:
        lr: :math:`\gamma`, default 0.01, a float or a schedule (the decay applies on top).
        lr_decay: :math:`\eta \ge 0`, default 0.
        weight_decay: :math:`\lambda \ge 0`, default 0.
        initial_accumulator_value: :math:`s_0 \ge 0`, default 0.
        eps: :math:`\epsilon \ge 0`, default 1e-10.
        clip_norm, clip_value: gradient clipping, see :class:`~portable_dl.optimizers.base.Optimizer`.

    Slots per parameter: ``{"sum": s}``. Weight decay is added to the gradient by
    :class:`~portable_dl.optimizers.base.Optimizer`.
    """

    name = "Adagrad"

    lr: float | Callable = hyperparameter(0.01, learning_rate)
    lr_decay: float = hyperparameter(0.0, non_negative)
    weight_decay: float = hyperparameter(0.0, non_negative)
    initial_accumulator_value: float = hyperparameter(0.0, non_negative)
    eps: float = hyperparameter(1e-10, non_negative)

    def init_single(self, param: Any, xp: Any) -> dict:
        return {"sum": xp.full_like(param, self.initial_accumulator_value)}

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any, xp: Any) -> tuple[Any, dict]:
        decayed_lr = lr / (1.0 + (t - 1.0) * self.lr_decay) if self.lr_decay else lr
        s = slots["sum"] + grad * grad
        return param - decayed_lr * grad / (xp.sqrt(s) + self.eps), {"sum": s}
