"""The eager fast path of the optimizer update on torch: multi-tensor (``torch._foreach_*``) kernels.

:meth:`TorchBackend.fused_update` hands these to :meth:`portable_dl.optimizers.Optimizer.update`
for Adam, AdamW and SGD (with or without momentum, dampening, Nesterov). Each applies the
SAME correctly rounded operations, in the SAME order, as the pure rule of its class
(``update_single`` after ``apply_weight_decay``), so the result is bit-identical to the pure
path on the CPU; the conformance case ``fused_optimizers`` holds it to that.

Where the time goes: one eager update of the pure rule allocates a new array for each of
its ~13 operations per parameter, and each is a Python dispatch. Here every operation is
one dispatch for all the parameters together, and only the arrays handed back (the new
parameters and slots) and a few temporaries are freshly allocated: every other operation
works in place on an array this function itself just made. Nothing it is given is mutated,
so the old parameters and state stay valid (the pure contract).

Declined (None, the pure path runs): arrays that autograd records or a ``torch.func``
transform wraps (the pure rule keeps their graph), tensor subclasses, and slot dicts that
are not the ones the optimizer's ``init`` makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from portable_dl.optimizers import SGD, Adam, AdamW
from portable_dl.optimizers.base import one_minus_power

from . import namespace

__all__ = ["fused_update_for"]


def fused_update_for(optimizer: Any) -> Callable | None:
    """The fused update of ``optimizer`` (exactly an Adam, AdamW or SGD: a subclass may
    change the rule), or None."""
    kind = type(optimizer)
    if kind is Adam or kind is AdamW:
        return lambda params, grads, slots, lr, t: _adam(optimizer, params, grads, slots, lr, t)
    if kind is SGD:
        return lambda params, grads, slots, lr, t: _sgd(optimizer, params, grads, slots, lr, t)
    return None


def _plain(tensors: list) -> bool:
    """Plain tensors of eager code: no subclass, none that autograd records, no torch.func level."""
    if torch._C._functorch.maybe_current_level() is not None:
        return False
    return all(type(x) is torch.Tensor and not x.requires_grad for x in tensors)


def _slot_lists(slots: list, names: tuple[str, ...]) -> list[list] | None:
    """``[[slot[name] for slot in slots] for name in names]``, or None where a slot dict has
    other keys (a state this rule did not make: the pure path then says what is wrong)."""
    wanted = set(names)
    if any(not isinstance(slot, dict) or slot.keys() != wanted for slot in slots):
        return None
    return [[slot[name] for slot in slots] for name in names]


def _scalars(like: torch.Tensor) -> Callable[[float], Any]:
    """``scalar(x)``: a Python float as a foreach operand for arrays like ``like``. The CPU's
    multi-tensor kernels copy a Python number into a new tensor once per array (a tenth of
    the update's time); a 0-d tensor they take as it is. In float32 and float64 that tensor
    has the arrays' own dtype, which is the type torch computes ``tensor * x`` in, so the
    value is the same (and a 0-d parameter is not promoted). Elsewhere (half precision, where
    torch computes in float32; CUDA, whose kernels take the number directly) the number itself."""
    if like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return lambda value: value
    dtype = like.dtype
    return lambda value: torch.tensor(value, dtype=dtype)


def _weight_decay(optimizer: Any, params: list, grads: list, lr: Any) -> tuple[list, list]:
    """``Optimizer.apply_weight_decay`` over the lists: ``(1 - lr wd) theta`` (decoupled) or
    ``g + wd theta``, the same operations in the same order."""
    if not optimizer.weight_decay:
        return params, grads
    if optimizer.decoupled_weight_decay:
        return torch._foreach_mul(params, 1.0 - lr * optimizer.weight_decay), grads
    return params, torch._foreach_add(grads, torch._foreach_mul(params, optimizer.weight_decay))


def _adam(optimizer: Any, params: list, grads: list, slots: list, lr: Any, t: Any) -> tuple[list, list] | None:
    """Adam (and AdamW) as ``Adam.update_single``:

    m = beta1 m + (1 - beta1) g;  v = beta2 v + ((1 - beta2) g) g;  [v^max = max(v^max, v)]
    theta - (lr / (1 - beta1^t)) (m / (sqrt(v) / sqrt(1 - beta2^t) + eps))
    """
    names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if optimizer.amsgrad else ("exp_avg", "exp_avg_sq")
    state = _slot_lists(slots, names)
    if state is None or not _plain(params + grads + [x for column in state for x in column]):
        return None
    beta1, beta2 = optimizer.betas
    scalar = _scalars(params[0])
    params, grads = _weight_decay(optimizer, params, grads, lr)
    # Each in-place operation below acts on an array made in this function, never on one given.
    # Besides the new moments, one array per parameter holds each temporary in turn ((1 - beta1)
    # g, the squares, the denominator, the step) and at last the new parameter: the caller still
    # holds the old parameters and moments during the call, so every array made here adds to
    # what the cache must hold (the eager step measured 1.45 of torch.optim's with a new array
    # for every temporary, 1.3 so).
    m = torch._foreach_mul(state[0], scalar(beta1))
    scratch = torch._foreach_mul(grads, scalar(1.0 - beta1))
    torch._foreach_add_(m, scratch)
    v = torch._foreach_mul(state[1], scalar(beta2))
    second = scalar(1.0 - beta2)
    for buffer, grad in zip(scratch, grads):
        torch.mul(grad, second, out=buffer)
    torch._foreach_mul_(scratch, grads)
    torch._foreach_add_(v, scratch)
    new_slots = [{"exp_avg": m_i, "exp_avg_sq": v_i} for m_i, v_i in zip(m, v)]
    if optimizer.amsgrad:
        v = torch._foreach_maximum(state[2], v)
        for slot, v_max in zip(new_slots, v):
            slot["max_exp_avg_sq"] = v_max
    xp = namespace.xp
    # The two 0-d scalars of the pure rule, computed by the same functions in t's dtype.
    step_size = lr / one_minus_power(beta1, t, xp)
    correction = xp.sqrt(one_minus_power(beta2, t, xp))
    for buffer, v_i in zip(scratch, v):
        torch.sqrt(v_i, out=buffer)
    torch._foreach_div_(scratch, correction)
    torch._foreach_add_(scratch, scalar(optimizer.eps))  # the denominator
    for buffer, m_i in zip(scratch, m):
        torch.div(m_i, buffer, out=buffer)
    torch._foreach_mul_(scratch, step_size)  # the step
    for buffer, param in zip(scratch, params):
        torch.sub(param, buffer, out=buffer)  # the new parameter, in the scratch array itself
    return scratch, new_slots


def _sgd(optimizer: Any, params: list, grads: list, slots: list, lr: Any, t: Any) -> tuple[list, list] | None:
    """SGD as ``SGD.update_single``: ``theta - lr d`` with ``d = g``, or with momentum
    ``b = g`` at t = 1, else ``momentum b + (1 - dampening) g``, and ``d = b`` or (Nesterov)
    ``g + momentum b``."""
    momentum = optimizer.momentum
    state = _slot_lists(slots, ("momentum_buffer",) if momentum else ())
    if state is None or not _plain(params + grads + [x for column in state for x in column]):
        return None
    params, grads = _weight_decay(optimizer, params, grads, lr)
    if not momentum:
        return torch._foreach_sub(params, torch._foreach_mul(grads, lr)), [{} for _ in params]
    if t.device.type == "cpu":
        # Reading t costs nothing on the CPU; the first update then skips the blend entirely.
        if bool(t == 1.0):
            buffers = [grad.clone() for grad in grads]
        else:
            buffers = _blend(state[0], grads, momentum, optimizer.dampening)
    else:  # on an accelerator, reading t would wait for the device: select as the pure rule does
        first = torch.eq(t, 1.0)
        blended = _blend(state[0], grads, momentum, optimizer.dampening)
        buffers = [torch.where(first, grad, mixed) for grad, mixed in zip(grads, blended)]
    if optimizer.nesterov:
        direction = torch._foreach_mul(buffers, momentum)
        torch._foreach_add_(direction, grads)  # g + momentum b (addition commutes exactly)
        torch._foreach_mul_(direction, lr)
    else:
        direction = torch._foreach_mul(buffers, lr)
    return torch._foreach_sub(params, direction), [{"momentum_buffer": b} for b in buffers]


def _blend(buffers: list, grads: list, momentum: float, dampening: float) -> list:
    """``momentum b + (1 - dampening) g``, freshly allocated."""
    blended = torch._foreach_mul(buffers, momentum)
    torch._foreach_add_(blended, torch._foreach_mul(grads, 1.0 - dampening))
    return blended
