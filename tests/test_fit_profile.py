"""bench/profile_fit.py runs and times every part of a fit step (never asserting a speed)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_profile_fit_times_every_part_of_a_step(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_profile_fit", BENCH / "profile_fit.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    # NumPy: no compiler, so every part runs as plain Python; 40 examples make 4 batches of 10.
    result = module.profile("numpy", examples=40, steps=2, blocks=1, fits=1, warm_epochs=1)
    assert set(result) == set(module.PARTS)
    for part, (wall, cpu) in result.items():
        assert math.isfinite(wall) and wall > 0 and math.isfinite(cpu) and cpu >= 0, part
