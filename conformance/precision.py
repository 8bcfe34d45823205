"""The precision family: mixed-precision training (:mod:`portable_dl.precision`) on every
backend that has the half-precision dtype.

- ``mixed_bfloat16 follows the float32 loss curve``: the training family's MLP (784-32-10,
  the first MNIST images, or its synthetic stand-in) trained with Adam for 40 steps under
  ``precision="mixed_bfloat16"``, float32 master weights. Its loss curve is judged against
  the plain run of the NumPy backend in float64, the float32 curve's ideal, with the
  bfloat16 tolerance of :mod:`.tolerances` for an element-wise result over 40 steps:
  ``2 units * 2**-8 * sqrt(1 + 40) = 0.050`` norm-wise. Why that model: the forward pass
  rounds the logits to bfloat16 (at most one unit, 2**-8 relative, each, and the model's
  products are accumulated in float32 by every framework here before that one rounding);
  the loss is computed from them in float32 (a half-precision loss would add a reduction's
  roundings); each step adds such an error with a random sign, so the curve drifts like the
  square root of the steps, as for float32 in the training family. Measured on this CPU:
  2.0e-3 (torch) and 2.1e-3 (JAX) norm-wise, 5.5e-3 at the worst single step; a step that
  skipped its update, lost the float32 master weights' small updates to bfloat16 rounding
  for many steps, or scaled the gradient wrongly moves the curve by far more (the loss falls
  from 2.3 to 0.64 in these 40 steps). The row is only run in ``bfloat16`` (the compute
  dtype; the parameters are float32): a backend without bfloat16 skips it with its reason.
- ``mixed_float16 skips an overflowing step``: after a good step (the loss multiplied by
  1e-3, so that no float16 value overflows at the initial scale of 65536), a float16 overflow
  forced by multiplying the loss by 1e6 (the float16 cotangent of the predictions is then
  about 1e10, beyond float16's 65504, while the float32 loss stays finite). The step must leave the parameters and the
  optimizer state (Adam's moments and step count, after a good first step) bit for bit as
  they were, halve the loss scale from 65536 to 32768 and reset the count of good steps:
  exact outputs, compared with the values written here, not with another backend.

This module imports no framework.
"""

from __future__ import annotations

import numpy as np

from portable_dl.backend import Backend

from . import training
from .cases import Case, Outputs

FAMILY = "precision"
STEPS = 40
QUICK_STEPS = 5
LEARNING_RATE = 0.003


def _curve(backend: Backend, dtype: str, precision: str, steps: int, seed: int) -> np.ndarray:
    """The training family's MLP trained ``steps`` Adam steps in ``precision`` from
    parameters in ``dtype``; the loss of each step, float64."""
    from portable_dl import losses, nn, optimizers
    from portable_dl.training import make_train_step

    _, x, y = training.training_data(training.data_root())
    model = nn.MLP(list(training.SIZES))
    params = model.init(seed, backend, dtype)
    step = make_train_step(
        lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
        optimizers.Adam(lr=LEARNING_RATE),
        backend,
        compile=False,
        precision=precision,
    )
    state = step.init(params)
    seen = []
    for index in range(steps):
        rows = slice(index * training.BATCH_SIZE, (index + 1) * training.BATCH_SIZE)
        params, state, loss = step(params, state, (backend.asarray(x[rows], dtype), backend.asarray(y[rows])))
        seen.append(loss)
    return np.array([float(backend.to_numpy(loss)) for loss in seen])


def mixed_bfloat16_case(steps: int, seed: int) -> Case:
    source = training.training_data(training.data_root())[0]

    def compute(backend: Backend, dtype: str) -> Outputs:
        # dtype is the compute dtype (bfloat16); the master parameters are float32.
        return {"loss curve": _curve(backend, "float32", "mixed_bfloat16", steps, seed)}

    def float32_ideal() -> Outputs:
        from portable_dl.registry import backend

        return {"loss curve": _curve(backend("numpy"), "float64", "float32", steps, seed)}

    return Case(
        FAMILY,
        f"mixed_bfloat16 follows the float32 loss curve: MLP{list(training.SIZES)} on {source}, Adam, {steps} steps",
        compute,
        steps=steps,
        dtypes=("bfloat16",),
        dtype_note="the compute dtype of precision='mixed_bfloat16' (float32 master parameters)",
        independent_reference=float32_ideal,
    )


#: The exact outcome of the forced overflow, written down from torch.amp.GradScaler's rules.
OVERFLOW_EXPECTED = {
    "parameters after the overflow": "unchanged",
    "optimizer state after the overflow": "unchanged",
    "optimizer step count": 1,
    "loss scale": 32768,
    "good steps": 0,
    "loss finite": "yes",
}


def overflow_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        from portable_dl import losses, optimizers
        from portable_dl.training import make_train_step
        from portable_dl.tree import tree_leaves

        rng = np.random.default_rng(7)
        params = {
            "W": backend.asarray(rng.normal(size=(3, 2)).astype(np.float32)),
            "b": backend.asarray(np.zeros(2, np.float32)),
        }
        batch = (
            backend.asarray(rng.normal(size=(4, 3)).astype(np.float32)),
            backend.asarray(rng.normal(size=(4, 2)).astype(np.float32)),
        )
        xp = backend.xp

        def objective(multiplier: float):
            def loss_fn(p, b):
                predictions = xp.add(xp.matmul(b[0], p["W"]), p["b"])
                return xp.multiply(losses.mse(predictions, b[1]), multiplier)

            return loss_fn

        good = make_train_step(objective(1e-3), optimizers.Adam(0.1), backend, compile=False, precision="mixed_float16")
        overflowing = make_train_step(
            objective(1e6), optimizers.Adam(0.1), backend, compile=False, precision="mixed_float16"
        )
        params, state, _ = good(params, good.init(params), batch)

        def image(tree):
            return [backend.to_numpy(leaf).tobytes() for leaf in tree_leaves(tree)]

        def without_scale(state_):
            return {key: value for key, value in state_.items() if key != "loss_scale"}

        after, state_after, loss = overflowing(params, state, batch)
        same = {True: "unchanged", False: "changed"}
        state_kept = image(without_scale(state_after)) == image(without_scale(state))
        return {
            "parameters after the overflow": same[image(after) == image(params)],
            "optimizer state after the overflow": same[state_kept],
            "optimizer step count": int(backend.to_numpy(state_after["step"])),
            "loss scale": int(float(backend.to_numpy(state_after["loss_scale"]["scale"]))),
            "good steps": int(backend.to_numpy(state_after["loss_scale"]["good_steps"])),
            "loss finite": "yes" if np.isfinite(float(backend.to_numpy(loss))) else "no",
        }

    return Case(
        FAMILY,
        "mixed_float16 skips an overflowing step: parameters and state unchanged, scale halved",
        compute,
        dtypes=("float16",),
        dtype_note="the compute dtype of precision='mixed_float16' (float32 master parameters)",
        expected=lambda backend, dtype: dict(OVERFLOW_EXPECTED),
    )


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """The loss-curve case (5 steps when ``quick``) and the overflow case."""
    return [mixed_bfloat16_case(QUICK_STEPS if quick else STEPS, seed), overflow_case()]
