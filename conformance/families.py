"""The families of cases, by name, in the order they run."""

from __future__ import annotations

from collections.abc import Callable

from . import (
    broadcasting,
    compiling,
    contract,
    distributed,
    fused_optimizers,
    gradients,
    native_kernels,
    ops,
    optimizers,
    precision,
    training,
)
from .cases import Case

#: family name -> ``cases(quick, seed) -> list[Case]``
FAMILIES: dict[str, Callable[..., list[Case]]] = {
    "contract": contract.cases,  # first: every other family trusts asarray and to_numpy
    "broadcasting": broadcasting.cases,
    "ops": ops.cases,
    "gradients": gradients.cases,
    "optimizers": optimizers.cases,
    "fused_optimizers": fused_optimizers.cases,  # a backend's fused update against the pure rule
    "native_kernels": native_kernels.cases,  # a backend's relu/cross-entropy kernels against the pure forms
    "compile": compiling.cases,
    "training": training.cases,
    "precision": precision.cases,  # mixed-precision training: bfloat16 curve, float16 loss scaling
    "distributed": distributed.cases,  # two processes per backend; not in --quick
}


def collect_cases(families: list[str], quick: bool = False, seed: int = 0) -> list[Case]:
    """The cases of ``families``, in order."""
    return [case for family in families for case in FAMILIES[family](quick=quick, seed=seed)]
