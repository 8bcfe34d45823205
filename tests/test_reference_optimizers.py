"""The conformance suite's independent NumPy optimizers agree with torch.optim itself."""

from __future__ import annotations

import numpy as np
import pytest
from portable_dl.conformance import reference_optimizers as ref

torch = pytest.importorskip("torch")

CONFIGURATIONS = [
    ("SGD", ref.sgd, dict(lr=0.05)),
    ("SGD", ref.sgd, dict(lr=0.05, momentum=0.9)),
    ("SGD", ref.sgd, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", ref.sgd, dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    ("Adagrad", ref.adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", ref.rmsprop, dict(lr=0.01)),
    ("RMSprop", ref.rmsprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("Adam", ref.adam, dict(lr=0.01)),
    ("Adam", ref.adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", ref.adamw, dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", ref.adamw, dict(lr=0.01, amsgrad=True)),
    ("NAdam", ref.nadam, dict(lr=0.01, weight_decay=0.01)),
]


def gradient(p: np.ndarray) -> np.ndarray:
    """Gradient of a fixed, ill-conditioned quadratic plus a little curvature in p**4."""
    scales = np.linspace(0.5, 3.0, p.size).reshape(p.shape)
    return scales * (p - 1.0) + 0.1 * p**3


@pytest.fixture(autouse=True)
def torch_scalars_in_float64():
    """torch.optim keeps step counts and NAdam's mu product in the default dtype's scalar
    type (float32 by default), which would blur the comparison to 1e-9."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("name, make, hyperparameters", CONFIGURATIONS, ids=[f"{c[0]} {c[2]}" for c in CONFIGURATIONS])
def test_reference_matches_torch_optim(name, make, hyperparameters):
    start = np.random.default_rng(0).normal(size=(3, 4))
    parameter = torch.tensor(start.copy(), dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, name)([parameter], **hyperparameters)
    step, state, p = make(**hyperparameters), {}, start.copy()
    for t in range(1, 21):
        parameter.grad = torch.tensor(gradient(parameter.detach().numpy()))
        optimizer.step()
        p = step(p, gradient(p), state, t)
        np.testing.assert_allclose(p, parameter.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {t}")
    assert np.abs(p - start).max() > 1e-2  # the optimizer really moved
