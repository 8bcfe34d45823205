"""torch's own kernels for front-end functions (:meth:`TorchBackend.kernel`).

The pure expressions of :mod:`portable_dl.activations` and :mod:`portable_dl.losses` cost
several eager dispatches and temporaries each: relu as ``where(x <= 0, 0, x)`` three, and
cross-entropy on integer labels a one-hot mask built from a cumulative sum, a ``where`` and
a sum. torch computes the same numbers in one fused kernel each, forward and backward.
Both are checked against the pure expressions by the conformance family ``native_kernels``.

- ``relu``: ``torch.threshold(x, 0, 0)`` (``F.threshold`` without its Python wrapper), which
  is ``0 if x <= 0 else x``, the pure form's own comparison. Not ``torch.relu``: that is
  ``clamp_min(x, 0)``, which keeps ``-0.0`` where the convention gives ``+0.0``. Its backward
  is 0 where ``x <= 0`` (``relu'(0) = 0``) and passes the cotangent at NaN, as the pure
  form's ``where`` does.
- ``cross_entropy``: ``F.cross_entropy(logits, labels, label_smoothing=e, reduction=r)``,
  whose smoothed loss is ``(1 - e) nll + e * (-sum_c log p_c) / C``, the pure formula; the
  labels go in as int64 (the only index dtype ``nll_loss`` takes). The front end calls it
  only with labels it has read and found in range: torch's kernel raises on others,
  where the pure form gives NaN.

Both compose with ``torch.func`` transforms (their derivatives are differentiable again) and
would trace under ``torch.compile``; there the backend declines them all the same
(:meth:`TorchBackend.kernel`): Inductor fuses the pure expressions itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["KERNELS"]


def relu(x: torch.Tensor) -> torch.Tensor:
    """``x`` where ``x > 0``, else ``+0.0`` (NaN stays NaN); any shape, floating dtype."""
    return torch.threshold(x, 0.0, 0.0)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float, reduction: str) -> torch.Tensor:
    """Softmax cross-entropy of ``logits`` ``(N, C)`` against in-range integer ``labels``
    ``(N,)``: a scalar, or ``(N,)`` for ``reduction="none"``; of ``logits``' dtype."""
    if labels.dtype != torch.int64:
        labels = labels.to(torch.int64)
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing, reduction=reduction)


#: name (one of :data:`portable_dl.backend.KERNEL_NAMES`) -> torch's implementation
KERNELS: dict[str, Callable[..., Any]] = {"relu": relu, "cross_entropy": cross_entropy}
