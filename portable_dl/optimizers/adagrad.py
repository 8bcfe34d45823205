"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from typing import Any, Callable

from ..registry import backend_of
from .base import Optimizer, non_negative

__all__ = ["Adagrad"]


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

    Slots per parameter: ``{"sum": s}``.
    """

    name = "Adagrad"

    def __init__(self, lr: float | Callable = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 clip_norm: float | None = None, clip_value: float | None = None):
        super().__init__(lr, clip_norm=clip_norm, clip_value=clip_value)
        self.lr_decay = non_negative(self.name, "lr_decay", lr_decay)
        self.weight_decay = non_negative(self.name, "weight_decay", weight_decay)
        self.initial_accumulator_value = non_negative(self.name, "initial_accumulator_value", initial_accumulator_value)
        self.eps = non_negative(self.name, "eps", eps)

    def own_hyperparameters(self) -> dict:
        return {"lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps}

    def init_single(self, param: Any) -> dict:
        return {"sum": backend_of(param).xp.full_like(param, self.initial_accumulator_value)}

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any) -> tuple[Any, dict]:
        xp = backend_of(param).xp
        g = grad + self.weight_decay * param if self.weight_decay else grad
        decayed_lr = lr / (1.0 + (t - 1.0) * self.lr_decay) if self.lr_decay else lr
        squares = slots["sum"] + g * g
        return param - decayed_lr * g / (xp.sqrt(squares) + self.eps), {"sum": squares}
