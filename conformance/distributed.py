"""The distributed family: two local processes per backend, through the framework's own
engine (``portable-dl launch -n 2``; see :mod:`portable_dl.distributed`).

Four cases, all judged against values computed here in NumPy, independently of every
backend: an all-reduce sum of int32 that must be exact (one contribution exceeds float32's
24-bit mantissa), an all-reduce mean of float32, a broadcast from rank 1, and two
data-parallel training steps (SGD with momentum) of two ranks on halves of a batch, which
must equal two steps of one process on the whole batch (the NumPy backend, float64). Both
ranks must agree with the reference. The two processes run once per backend and serve all
four cases.

The NumPy reference itself has a world of one process only, and a backend without a
multi-process engine is skipped with that reason. Each run takes seconds (TensorFlow's
start-up and torch.compile's first compilation dominate), so the family stays out of
``--quick``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from portable_dl.backend import Backend

from . import distributed_ranks as ranks
from .cases import Case, CaseSkipped, Outputs

FAMILY = "distributed"
#: seconds the two processes may take (one compilation by torch.compile on two shared cores: ~40 s)
RUN_TIMEOUT = 240.0


@lru_cache(maxsize=8)
def _run(backend_name: str) -> tuple[dict, dict] | str:
    """Both ranks' outputs, or the reason the run failed (its output's tail)."""
    with tempfile.TemporaryDirectory(prefix="portable-dl-conformance-") as folder:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, "-m", "portable_dl", "launch", "-n", "2", "--backend", backend_name]
        try:
            done = subprocess.run(
                [*command, ranks.__file__, folder], capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env
            )
        except subprocess.TimeoutExpired:
            return f"the two processes did not finish within {RUN_TIMEOUT:g} s"
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            return f"portable-dl launch exited with {done.returncode}: " + " | ".join(tail)
        outputs = []
        for rank in (0, 1):
            with np.load(Path(folder) / f"rank-{rank}.npz") as arrays:
                outputs.append(dict(arrays))
        return outputs[0], outputs[1]


def _rank_outputs(backend: Backend, pick) -> Outputs:
    if type(backend).distributed_engine is Backend.distributed_engine:
        raise CaseSkipped(f"the {backend.name} backend has no multi-process engine (a world of one process only)")
    run = _run(backend.name)
    if isinstance(run, str):
        raise RuntimeError(run)
    first, second = (pick(outputs) for outputs in run)
    agree = all(
        np.array_equal(np.asarray(first[key]), np.asarray(second[key])) for key in first if key != "ranks agree"
    )
    return {**first, "ranks agree": "yes" if agree else "no: the two ranks computed different values"}


def _sum_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        return _rank_outputs(backend, lambda o: {"sum": tuple(int(v) for v in o["sum"]), "dtype": str(o["sum"].dtype)})

    def expected(backend: Backend, dtype: str) -> Outputs:
        total = ranks.rank_ints(0).astype(np.int64) + ranks.rank_ints(1).astype(np.int64)
        return {"sum": tuple(int(v) for v in total), "dtype": "int32", "ranks agree": "yes"}

    return Case(FAMILY, "all_reduce_sum_int32_exact", compute, dtypes=("float32",), expected=expected)


def _mean_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        return _rank_outputs(backend, lambda o: {"mean": o["mean"]})

    def expected(backend: Backend, dtype: str) -> Outputs:
        mean = (ranks.rank_floats(0).astype(np.float64) + ranks.rank_floats(1).astype(np.float64)) / 2
        return {"mean": mean, "ranks agree": "yes"}

    return Case(FAMILY, "all_reduce_mean_float32", compute, reduction_size=2, dtypes=("float32",), expected=expected)


def _broadcast_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        return _rank_outputs(
            backend,
            lambda o: {"floats": o["broadcast_floats"], "ints": tuple(int(v) for v in o["broadcast_ints"])},
        )

    def expected(backend: Backend, dtype: str) -> Outputs:
        return {
            "floats": ranks.rank_floats(1).astype(np.float64),
            "ints": tuple(int(v) for v in ranks.rank_ints(1)),
            "ranks agree": "yes",
        }

    return Case(FAMILY, "broadcast_from_rank_1", compute, dtypes=("float32",), elementwise=True, expected=expected)


def _step_case() -> Case:
    def compute(backend: Backend, dtype: str) -> Outputs:
        return _rank_outputs(backend, lambda o: {"params": o["step_params"], "losses": o["step_losses"]})

    def expected(backend: Backend, dtype: str) -> Outputs:
        import portable_dl as pdl
        from portable_dl import losses, nn, optimizers

        reference = pdl.backend("numpy")
        model = nn.MLP(ranks.SIZES)
        x, y = ranks.inputs()
        step = pdl.make_train_step(
            lambda p, batch: losses.cross_entropy(model.apply(p, batch[0]), batch[1]),
            optimizers.SGD(ranks.LEARNING_RATE, momentum=0.9),
            reference,
            compile=False,
        )
        # float32 initial values, as the ranks start from, then float64 arithmetic
        params = pdl.tree_map(lambda a: a.astype(np.float64), model.init(0, reference, "float32"))
        state, step_losses = step.init(params), []
        for _ in range(ranks.STEPS):
            params, state, loss = step(params, state, (x.astype(np.float32).astype(np.float64), y))
            step_losses.append(float(loss))
        flat = np.concatenate([np.asarray(leaf).ravel() for leaf in pdl.tree_leaves(params)])
        return {"params": flat, "losses": np.asarray(step_losses), "ranks agree": "yes"}

    return Case(
        FAMILY,
        "two_rank_step_equals_one_rank_step_of_doubled_batch",
        compute,
        reduction_size=8,
        gradient=True,
        steps=ranks.STEPS,
        dtypes=("float32",),
        expected=expected,
    )


def cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """The family's cases; none with ``quick`` (two processes per backend take seconds)."""
    if quick:
        return []
    return [_sum_case(), _mean_case(), _broadcast_case(), _step_case()]
