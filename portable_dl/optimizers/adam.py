"""Adam and its two relatives: AdamW (decoupled weight decay) and NAdam (Nesterov momentum)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import (
    Optimizer,
    flag,
    hyperparameter,
    learning_rate,
    non_negative,
    one_minus_power,
    pair_of_decay_rates,
    power,
)

__all__ = ["Adam", "AdamW", "NAdam"]


@dataclass(eq=False, repr=False, frozen=True)
class AdaptiveMoments(Optimizer):
    r"""What Adam and NAdam share: their first four hyperparameters and the two moment
    estimates, :math:`m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t` and
    :math:`v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2`, kept in the slots ``"exp_avg"`` (m)
    and ``"exp_avg_sq"`` (v) from :math:`m_0 = v_0 = 0`."""

    lr: float | Callable = hyperparameter(0.001, learning_rate)
    betas: tuple[float, float] = hyperparameter((0.9, 0.999), pair_of_decay_rates)
    eps: float = hyperparameter(1e-8, non_negative)
    weight_decay: float = hyperparameter(0.0, non_negative)

    def init_single(self, param: Any, xp: Any) -> dict:
        return {"exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}

    def moments(self, slots: dict, grad: Any) -> tuple[Any, Any]:
        """``(m_t, v_t)`` from the previous slots and the gradient :math:`g_t`."""
        beta1, beta2 = self.betas
        return beta1 * slots["exp_avg"] + (1.0 - beta1) * grad, beta2 * slots["exp_avg_sq"] + (
            1.0 - beta2
        ) * grad * grad


@dataclass(eq=False, repr=False, frozen=True)
class Adam(AdaptiveMoments):
    r"""Adam, as ``torch.optim.Adam``: weight decay is an L2 penalty added to the gradient.

    With learning rate :math:`\gamma`, betas :math:`(\beta_1, \beta_2)`, weight decay
    :math:`\lambda` and :math:`\epsilon`, from :math:`m_0 = v_0 = \hat v^{max}_0 = 0`, at
    update :math:`t = 1, 2, \dots`:

    .. math::

        g_t &= \nabla_\theta f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat m_t &= m_t / (1 - \beta_1^t) \\
        \hat v_t &= v_t / (1 - \beta_2^t), \quad\text{or with amsgrad}\quad
            v^{max}_t = \max(v^{max}_{t-1}, v_t), \ \hat v_t = v^{max}_t / (1 - \beta_2^t) \\
        \theta_t &= \theta_{t-1} - \gamma \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Other frameworks' defaults differ: Keras' ``Adam`` has ``epsilon=1e-7``; MLX's ``Adam``
    has no bias correction unless ``bias_correction=True``; optax's ``adam`` matches torch.

    Args:
        lr: :math:`\gamma`, default 0.001, a float or a schedule.
        betas: :math:`(\beta_1, \beta_2)`, each in ``[0, 1)``, default (0.9, 0.999).
        eps: :math:`\epsilon \ge 0`, default 1e-8.
        weight_decay: :math:`\lambda \ge 0`, default 0.
        amsgrad: keep the running maximum of :math:`v_t` (Reddi et al. 2018), default False.
        clip_norm, clip_value: gradient clipping, see :class:`~portable_dl.optimizers.base.Optimizer`.

    Slots per parameter: ``{"exp_avg": m, "exp_avg_sq": v}``, plus ``"max_exp_avg_sq"``
    (:math:`v^{max}`) with amsgrad. Weight decay is applied by
    :class:`~portable_dl.optimizers.base.Optimizer`.
    """

    name = "Adam"

    amsgrad: bool = hyperparameter(False, flag)

    def init_single(self, param: Any, xp: Any) -> dict:
        slots = super().init_single(param, xp)
        if self.amsgrad:
            slots["max_exp_avg_sq"] = xp.zeros_like(param)
        return slots

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any, xp: Any) -> tuple[Any, dict]:
        beta1, beta2 = self.betas
        m, v = self.moments(slots, grad)
        new_slots = {"exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v = xp.maximum(slots["max_exp_avg_sq"], v)  # v^max_t
            new_slots["max_exp_avg_sq"] = v
        # As torch.optim.Adam evaluates it: the bias corrections go into two scalars,
        # gamma / (1 - beta1^t) and sqrt(1 - beta2^t), so that the parameter-sized work is
        # six operations (an eager step allocates a new array for each), not eight.
        step_size = lr / one_minus_power(beta1, t, xp)
        denominator = xp.sqrt(v) / xp.sqrt(one_minus_power(beta2, t, xp)) + self.eps
        return param - step_size * (m / denominator), new_slots


@dataclass(eq=False, repr=False, frozen=True)
class AdamW(Adam):
    r"""AdamW (Loshchilov and Hutter 2019), as ``torch.optim.AdamW``: Adam whose weight
    decay shrinks the parameters directly instead of entering the moments,

    .. math::

        \theta_{t-1} \leftarrow \theta_{t-1} - \gamma \lambda \theta_{t-1}

    before Adam's update with the plain gradient :math:`g_t = \nabla_\theta f(\theta_{t-1})`.
    The decay is scaled by the learning rate (and so by a schedule), as in torch, Keras and
    optax; in the paper it has a schedule multiplier of its own.

    Args: as :class:`Adam`, but ``weight_decay`` defaults to 0.01 (Keras: 0.004; MLX: 0.01).
    """

    name = "AdamW"
    decoupled_weight_decay = True

    weight_decay: float = hyperparameter(0.01, non_negative)


@dataclass(eq=False, repr=False, frozen=True)
class NAdam(AdaptiveMoments):
    r"""NAdam (Dozat 2016), Adam with Nesterov momentum, as ``torch.optim.NAdam``.

    With learning rate :math:`\gamma`, betas :math:`(\beta_1, \beta_2)`, momentum decay
    :math:`\psi`, weight decay :math:`\lambda` and :math:`\epsilon`, from
    :math:`m_0 = v_0 = 0`, at update :math:`t = 1, 2, \dots`:

    .. math::

        g_t &= \nabla_\theta f(\theta_{t-1}) + \lambda \theta_{t-1}
            \quad\text{(or, decoupled, } \theta_{t-1} \leftarrow (1 - \gamma\lambda)\theta_{t-1}) \\
        \mu_t &= \beta_1 (1 - \tfrac12 \, 0.96^{t \psi}), \quad
            \mu_{t+1} = \beta_1 (1 - \tfrac12 \, 0.96^{(t+1) \psi}) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat m_t &= \frac{\mu_{t+1} m_t}{1 - \prod_{i=1}^{t+1} \mu_i}
            + \frac{(1 - \mu_t) g_t}{1 - \prod_{i=1}^{t} \mu_i} \\
        \hat v_t &= v_t / (1 - \beta_2^t) \\
        \theta_t &= \theta_{t-1} - \gamma \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Keras' ``Nadam`` uses the same momentum schedule with ``epsilon=1e-7``; optax's
    ``nadam`` has no momentum schedule (:math:`\mu_t = \beta_1`).

    Args:
        lr: :math:`\gamma`, default 0.002, a float or a schedule.
        betas: :math:`(\beta_1, \beta_2)`, each in ``[0, 1)``, default (0.9, 0.999).
        eps: :math:`\epsilon \ge 0`, default 1e-8.
        weight_decay: :math:`\lambda \ge 0`, default 0.
        momentum_decay: :math:`\psi \ge 0`, default 0.004.
        decoupled_weight_decay: apply weight decay to the parameters as AdamW does
            (torch's NAdamW), default False.
        clip_norm, clip_value: gradient clipping, see :class:`~portable_dl.optimizers.base.Optimizer`.

    Slots per parameter: ``{"exp_avg": m, "exp_avg_sq": v, "mu_product": prod mu_i}``, the
    last a 0-d array of the parameter's dtype, as torch keeps it. Weight decay is applied by
    :class:`~portable_dl.optimizers.base.Optimizer`.
    """

    name = "NAdam"

    lr: float | Callable = hyperparameter(0.002, learning_rate)
    momentum_decay: float = hyperparameter(0.004, non_negative)
    decoupled_weight_decay: bool = hyperparameter(False, flag)

    def init_single(self, param: Any, xp: Any) -> dict:
        # The product of the mu_i: a 0-d array of the parameter's dtype and device.
        return {**super().init_single(param, xp), "mu_product": xp.ones_like(xp.sum(param))}

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any, xp: Any) -> tuple[Any, dict]:
        mu = self.momentum_coefficient(t, xp)
        mu_next = self.momentum_coefficient(t + 1.0, xp)
        mu_product = slots["mu_product"] * mu
        mu_product_next = mu_product * mu_next
        m, v = self.moments(slots, grad)
        m_hat = mu_next * m / (1.0 - mu_product_next) + (1.0 - mu) * grad / (1.0 - mu_product)
        v_hat = v / one_minus_power(self.betas[1], t, xp)
        new_param = param - lr * m_hat / (xp.sqrt(v_hat) + self.eps)
        return new_param, {"exp_avg": m, "exp_avg_sq": v, "mu_product": mu_product}

    def momentum_coefficient(self, t: Any, xp: Any) -> Any:
        r""":math:`\mu_t = \beta_1 (1 - \frac12 0.96^{t\psi})`, for a 0-d array ``t``."""
        return self.betas[0] * (1.0 - 0.5 * power(0.96, t * self.momentum_decay, xp))
