"""The mutation harness: the planted faults are well formed, and a sample of them is caught
by the very case that looks where the fault is.

The sample runs the suite in --quick mode, each mutant on the families that should catch
it, each in its own child process, exactly as ``python -m portable_dl.conformance.mutation``
does; the whole set is a documented command (README, "Conformance"), too slow for a test.
"""

from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from portable_dl.conformance import mutation
from portable_dl.conformance.mutants import (
    CATEGORIES,
    CONTROL,
    MUTANTS,
    factory_attribute,
    spec,
)

from portable_dl.backend import Backend

#: (mutant, families to run, the case that must catch it), across categories.
SAMPLE = [
    ("to-numpy-0d-as-1d", ("contract",), "contract/asarray and to_numpy round trip float32"),
    ("argnums-sorted", ("gradients",), "gradients/value_and_grad argnums=(1, 0)"),
    ("gradients-accumulate-across-calls", ("optimizers",), "optimizers/SGD"),
    ("tanh-gradient-relative-1e-3", ("gradients",), "gradients/activation tanh"),
    ("where-by-arithmetic", ("ops",), "ops/where with NaN and inf in the branch not taken"),
    ("matmul-transposes-square-x2", ("ops",), "ops/matmul square matrices"),
    ("broadcast-aligns-vector-with-rows", ("broadcasting",), "broadcasting/classic (4, 3)+(4,) fails"),
    ("floor-rounds-on-0d", ("optimizers",), "optimizers/schedule step_decay"),
]


def test_the_registry_holds_at_least_40_well_formed_mutants_in_every_category():
    assert len(MUTANTS) >= 40
    assert CONTROL not in MUTANTS
    for name, (description, factory, category) in MUTANTS.items():
        assert description and "\n" not in description and len(description) <= 140, name
        assert category in CATEGORIES, name
        module_name, _, attribute = spec(name).partition(":")
        assert (
            getattr(importlib.import_module(module_name), attribute)
            is factory
            == getattr(importlib.import_module(module_name), factory_attribute(name))
        )
    assert {mutant.category for mutant in MUTANTS.values()} == set(CATEGORIES)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_a_working_backend_named_after_itself(name):
    backend = MUTANTS[name].factory()
    assert isinstance(backend, Backend) and backend.name == name
    # a planted fault is subtle, not a crash: the backend still computes
    x = backend.asarray([[1.0, 2.0], [3.0, 4.0]], "float32")
    assert backend.to_numpy(backend.xp.add(x, x)).sum() == 20.0


def test_a_case_that_also_fails_on_the_control_catches_nothing():
    control = mutation.MutantRun(CONTROL, "control", "", "quick", "caught", 1, ["ops/broken case [float32]"])
    only_broken = mutation.MutantRun("m", "creation", "", "quick", "caught", 1, ["ops/broken case [float32]"])
    also_real = mutation.MutantRun(
        "n",
        "creation",
        "",
        "quick",
        "caught",
        1,
        ["ops/broken case [float32]", "ops/eye [float64]"],
        messages={"ops/eye [float64]": "eye: differs"},
    )
    assert mutation.judge(only_broken, control).status == "survived"
    judged = mutation.judge(also_real, control)
    assert judged.status == "caught" and judged.caught_by == ["ops/eye [float64]"] and judged.message == "eye: differs"
    assert judged.caught_case_ids() == {"ops/eye"}


def test_unknown_mutants_are_a_usage_error(capsys):
    assert mutation.main(["--only", "no-such-mutant"]) == 2
    assert "unknown mutant no-such-mutant" in capsys.readouterr().err


@pytest.fixture(scope="module")
def sample_runs() -> dict[str, mutation.MutantRun]:
    """The sample and the control, each in its own child process, two at a time."""
    families = sorted({family for _, fams, _ in SAMPLE for family in fams})
    with ThreadPoolExecutor(max_workers=2) as pool:
        control = pool.submit(mutation.run_mutant, CONTROL, True, families, 240)
        futures = {name: pool.submit(mutation.run_mutant, name, True, fams, 240) for name, fams, _ in SAMPLE}
        runs = {name: future.result() for name, future in futures.items()}
        runs[CONTROL] = control.result()
    return runs


def test_the_control_runs_and_passes_the_cases_that_must_catch_the_sample(sample_runs):
    # A case failing on the fault-free backend would catch every mutant and prove nothing
    # (the harness credits it with nothing; see the test above). Whether the whole suite
    # passes on NumPy is tests/test_conformance.py's business.
    control = sample_runs[CONTROL]
    assert control.status in ("survived", "caught"), control.message
    assert not {expected for _, _, expected in SAMPLE} & control.caught_case_ids(), control.caught_by


@pytest.mark.parametrize("name, families, expected_case", SAMPLE, ids=[name for name, _, _ in SAMPLE])
def test_the_quick_suite_catches_the_mutant_with_the_case_that_looks_there(sample_runs, name, families, expected_case):
    run = mutation.judge(sample_runs[name], sample_runs[CONTROL])
    assert run.status == "caught", f"{name}: {run.status} {run.message}"
    assert expected_case in run.caught_case_ids(), f"{name} caught only by {run.caught_by[:6]}"
