"""Optimizers written once against the array API: pure ``init(params) -> state`` and
``update(grads, state, params) -> (params, state)`` over pytrees, following the update rules
and defaults of ``torch.optim``.

::

    from portable_dl.optimizers import Adam
    from portable_dl.schedules import cosine

    optimizer = Adam(lr=cosine(1e-3, total_steps=1000), clip_norm=1.0)
    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)
"""

from __future__ import annotations

from .adagrad import Adagrad
from .adam import Adam, AdamW, NAdam
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "NAdam", "Optimizer", "RMSprop"]
