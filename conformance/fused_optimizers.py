"""The fused_optimizers family: a backend's fused optimizer update against the pure rule.

A backend may offer a faster eager implementation of an optimizer's update
(:meth:`portable_dl.Backend.fused_update`: torch's multi-tensor kernels). Its reference is
the pure per-parameter rule of the optimizer (``update(..., fused=False)``) on the SAME
backend, the rule the ``optimizers`` family checks against independent NumPy references; so
a fused path that drifts from the formula (a bias correction forgotten, weight decay applied
twice, a schedule read at the wrong step) fails here by name, on the backend that has it.

Every configuration runs a few steps of a least-squares problem with the backend's own
gradients. At each step both paths start from the same parameters and state (the pure
path's), so differences cannot compound: each update is judged on its own.

Tolerance, derived: both paths perform the same correctly rounded operations (about a dozen
per element), each off by at most half an ulp of its result. A fused kernel may keep one
intermediate unrounded or contract a multiply-add, which moves the result by at most about
one ulp of the largest intermediate, and every intermediate of these rules is bounded by the
magnitudes of the array before and after the update. So each array may differ by at most
``ULPS`` = 4 units of ``eps(dtype)`` times its scale, ``max(|old|, |new|)``; the fused torch
path on a CPU is bit-identical (0). A forgotten second-moment bias correction changes the
first Adam step by a factor ``sqrt(1 - beta2)`` (0.03): millions of ulps.
Backends without a fused path skip every case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from portable_dl.backend import Backend
from portable_dl.tree import path_string, tree_flatten_with_path

from .cases import Case, CaseSkipped, Outputs
from .optimizers import least_squares_problem

FAMILY = "fused_optimizers"
STEPS = 6
QUICK_STEPS = 3
#: the allowed difference, in units of eps(dtype) times the array's scale (see the module docstring)
ULPS = 4
AGREE = f"the fused and the pure update agree within {ULPS} eps of each array's scale"


def configurations() -> dict[str, Callable[[], Any]]:
    """name -> the optimizer: the options the fused paths take, and their combinations."""
    from portable_dl import optimizers as o
    from portable_dl import schedules as s

    return {
        "Adam": lambda: o.Adam(lr=0.01),
        "Adam amsgrad weight_decay": lambda: o.Adam(lr=0.01, amsgrad=True, weight_decay=0.05),
        "AdamW": lambda: o.AdamW(lr=0.01, weight_decay=0.1),
        "AdamW cosine schedule": lambda: o.AdamW(lr=s.cosine(0.02, total_steps=STEPS), weight_decay=0.1),
        "Adam clipping warmup": lambda: o.Adam(
            lr=s.linear_warmup(0.02, 2), betas=(0.8, 0.95), clip_norm=0.5, clip_value=0.3
        ),
        "SGD": lambda: o.SGD(lr=0.05),
        "SGD nesterov weight_decay": lambda: o.SGD(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01),
        "SGD momentum dampening clipping": lambda: o.SGD(lr=0.02, momentum=0.9, dampening=0.5, clip_norm=1.0),
    }


def disagreement(backend: Backend, fused: Any, pure: Any, before: Any, dtype: str) -> str | None:
    """Where ``fused`` differs from ``pure`` by more than :data:`ULPS` eps of the array's scale
    (a tree of the structure of ``before``, the arrays before the update), or None."""
    eps = float(np.finfo(np.dtype(dtype)).eps)
    entries, _ = tree_flatten_with_path(pure, fused, before)  # paths such as state.slots.W.exp_avg
    for path, pure_leaf, fused_leaf, old_leaf in entries:
        want = np.asarray(backend.to_numpy(pure_leaf), np.float64)
        got = np.asarray(backend.to_numpy(fused_leaf), np.float64)
        if got.shape != want.shape:
            return f"{path_string(path)}: shape {got.shape}, pure {want.shape}"
        if old_leaf is None or not hasattr(old_leaf, "shape"):
            old = np.zeros_like(want)
        else:
            old = np.asarray(backend.to_numpy(old_leaf), np.float64)
        if np.any(np.isnan(got) != np.isnan(want)) or np.any(np.isinf(got) != np.isinf(want)):
            return f"{path_string(path)}: NaN or infinity where the pure update has none (or the reverse)"
        finite = np.isfinite(want)
        scale = max(float(np.max(np.abs(want[finite]), initial=0.0)), float(np.max(np.abs(old), initial=0.0)))
        difference = float(np.max(np.abs(got[finite] - want[finite]), initial=0.0))
        if difference > ULPS * eps * scale:
            ulps = difference / (eps * max(scale, 1e-300))
            return f"{path_string(path)}: differs by {ulps:.3g} eps of its scale {scale:.3g}"
    return None


def fused_case(name: str, make_optimizer: Callable[[], Any], problem: dict, steps: int) -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        optimizer = make_optimizer()
        if backend.fused_update(optimizer) is None:
            raise CaseSkipped(f"{backend.name} has no fused update for {optimizer.name}")
        xp = backend.xp
        x, y = backend.asarray(problem["x"], dtype), backend.asarray(problem["y"], dtype)

        def loss(params):
            return xp.mean(xp.square(xp.subtract(xp.add(xp.matmul(x, params["W"]), params["b"]), y)))

        value_and_grad = backend.value_and_grad(loss)
        params = {"W": backend.asarray(problem["W"], dtype), "b": backend.asarray(problem["b"], dtype)}
        state = optimizer.init(params)
        for step in range(1, steps + 1):
            _, grads = value_and_grad(params)
            fused = dict(zip(("params", "state"), optimizer.update(grads, state, params)))
            pure = dict(zip(("params", "state"), optimizer.update(grads, state, params, fused=False)))
            where = disagreement(backend, fused, pure, {"params": params, "state": state}, dtype)
            if where is not None:
                return {"fused vs pure": f"update {step}: {where}"}
            params, state = pure["params"], pure["state"]
        return {"fused vs pure": AGREE}

    return Case(FAMILY, name, compute, steps=steps, expected=lambda backend, dtype: {"fused vs pure": AGREE})


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """Every configuration for 6 steps; ``quick``: 3 steps (the first updates, where the
    bias corrections and SGD's first momentum buffer differ most from later ones)."""
    steps = QUICK_STEPS if quick else STEPS
    problem = least_squares_problem(seed)
    return [fused_case(name, make, problem, steps) for name, make in configurations().items()]
