"""Adam and its two relatives: AdamW (decoupled weight decay) and NAdam (Nesterov momentum)."""

from __future__ import annotations

from typing import Any, Callable

from ..registry import backend_of
from .base import Optimizer, decay_rate, flag, non_negative, one_minus_power, power

__all__ = ["Adam", "AdamW", "NAdam"]


def _betas(owner: str, betas: Any) -> tuple[float, float]:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    return decay_rate(owner, "betas[0]", betas[0]), decay_rate(owner, "betas[1]", betas[1])


class Adam(Optimizer):
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
    with amsgrad.
    """

    name = "Adam"
    #: Whether weight decay shrinks the parameters directly (AdamW) instead of adding
    #: :math:`\lambda\theta` to the gradient.
    decoupled_weight_decay = False

    def __init__(self, lr: float | Callable = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 clip_norm: float | None = None, clip_value: float | None = None):
        super().__init__(lr, clip_norm=clip_norm, clip_value=clip_value)
        self.betas = _betas(self.name, betas)
        self.eps = non_negative(self.name, "eps", eps)
        self.weight_decay = non_negative(self.name, "weight_decay", weight_decay)
        self.amsgrad = flag(self.name, "amsgrad", amsgrad)

    def own_hyperparameters(self) -> dict:
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}

    def init_single(self, param: Any) -> dict:
        zeros_like = backend_of(param).xp.zeros_like
        slots = {"exp_avg": zeros_like(param), "exp_avg_sq": zeros_like(param)}
        if self.amsgrad:
            slots["max_exp_avg_sq"] = zeros_like(param)
        return slots

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any) -> tuple[Any, dict]:
        xp = backend_of(param).xp
        beta1, beta2 = self.betas
        param, g = _weight_decay(param, grad, lr, self.weight_decay, self.decoupled_weight_decay)
        exp_avg = beta1 * slots["exp_avg"] + (1.0 - beta1) * g
        exp_avg_sq = beta2 * slots["exp_avg_sq"] + (1.0 - beta2) * g * g
        new_slots = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second_moment = exp_avg_sq
        if self.amsgrad:
            second_moment = xp.maximum(slots["max_exp_avg_sq"], exp_avg_sq)
            new_slots["max_exp_avg_sq"] = second_moment
        # As torch.optim.Adam evaluates it: the bias corrections go into two scalars,
        # gamma / (1 - beta1^t) and sqrt(1 - beta2^t), so that the parameter-sized work is
        # six operations (an eager step allocates a new array for each), not eight.
        step_size = lr / one_minus_power(beta1, t, xp)
        denominator = xp.sqrt(second_moment) / xp.sqrt(one_minus_power(beta2, t, xp)) + self.eps
        return param - step_size * (exp_avg / denominator), new_slots


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

    def __init__(self, lr: float | Callable = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False, *,
                 clip_norm: float | None = None, clip_value: float | None = None):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, clip_norm=clip_norm, clip_value=clip_value)


class NAdam(Optimizer):
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
    last a 0-d array of the parameter's dtype, as torch keeps it.
    """

    name = "NAdam"

    def __init__(self, lr: float | Callable = 0.002, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 0.004, decoupled_weight_decay: bool = False, *,
                 clip_norm: float | None = None, clip_value: float | None = None):
        super().__init__(lr, clip_norm=clip_norm, clip_value=clip_value)
        self.betas = _betas(self.name, betas)
        self.eps = non_negative(self.name, "eps", eps)
        self.weight_decay = non_negative(self.name, "weight_decay", weight_decay)
        self.momentum_decay = non_negative(self.name, "momentum_decay", momentum_decay)
        self.decoupled_weight_decay = flag(self.name, "decoupled_weight_decay", decoupled_weight_decay)

    def own_hyperparameters(self) -> dict:
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum_decay": self.momentum_decay, "decoupled_weight_decay": self.decoupled_weight_decay}

    def init_single(self, param: Any) -> dict:
        backend = backend_of(param)
        return {"exp_avg": backend.xp.zeros_like(param), "exp_avg_sq": backend.xp.zeros_like(param),
                "mu_product": backend.asarray(1.0, param.dtype)}

    def update_single(self, param: Any, grad: Any, slots: dict, lr: Any, t: Any) -> tuple[Any, dict]:
        xp = backend_of(param).xp
        beta1, beta2 = self.betas
        param, g = _weight_decay(param, grad, lr, self.weight_decay, self.decoupled_weight_decay)
        mu = self.momentum_coefficient(t, xp)
        mu_next = self.momentum_coefficient(t + 1.0, xp)
        mu_product = slots["mu_product"] * mu
        mu_product_next = mu_product * mu_next
        exp_avg = beta1 * slots["exp_avg"] + (1.0 - beta1) * g
        exp_avg_sq = beta2 * slots["exp_avg_sq"] + (1.0 - beta2) * g * g
        m_hat = mu_next * exp_avg / (1.0 - mu_product_next) + (1.0 - mu) * g / (1.0 - mu_product)
        v_hat = exp_avg_sq / one_minus_power(beta2, t, xp)
        new_param = param - lr * m_hat / (xp.sqrt(v_hat) + self.eps)
        return new_param, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq, "mu_product": mu_product}

    def momentum_coefficient(self, t: Any, xp: Any) -> Any:
        r""":math:`\mu_t = \beta_1 (1 - \frac12 0.96^{t\psi})`, for a 0-d array ``t``."""
        return self.betas[0] * (1.0 - 0.5 * power(0.96, t * self.momentum_decay, xp))


def _weight_decay(param: Any, grad: Any, lr: Any, weight_decay: float, decoupled: bool) -> tuple[Any, Any]:
    """``(param, grad)`` after weight decay: the parameter shrunk by ``lr * weight_decay``
    when decoupled (AdamW), else the L2 term ``weight_decay * param`` added to the gradient."""
    if not weight_decay:
        return param, grad
    if decoupled:
        return param * (1.0 - lr * weight_decay), grad
    return param, grad + weight_decay * param
