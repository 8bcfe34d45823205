"""Learning-rate schedules against values computed by hand, on Python ints and on every
backend's scalar arrays, eagerly and compiled."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, float_dtypes

from portable_dl.schedules import as_schedule, constant, cosine, exponential, join, linear_warmup, step_decay

# (schedule, {step: rate}); every rate worked out by hand from the schedule's formula.
CASES = [
    ("constant", constant(0.1), {0: 0.1, 7: 0.1, 1000: 0.1}),
    # 0.1 * 0.5 ** floor(s / 3)
    ("step_decay", step_decay(0.1, step_size=3, gamma=0.5), {0: 0.1, 2: 0.1, 3: 0.05, 5: 0.05, 6: 0.025, 9: 0.0125}),
    # 0.9 ** s
    ("exponential", exponential(1.0, gamma=0.9), {0: 1.0, 1: 0.9, 2: 0.81, 10: 0.3486784401}),
    # 0.2 + 0.4 (1 + cos(pi s / 4)), held at 0.2 from s = 4
    (
        "cosine",
        cosine(1.0, total_steps=4, min_lr=0.2),
        {0: 1.0, 1: 0.2 + 0.4 * (1 + math.sqrt(0.5)), 2: 0.6, 3: 0.2 + 0.4 * (1 - math.sqrt(0.5)), 4: 0.2, 10: 0.2},
    ),
    # 0.4 (s + 1) / 4 for s < 4, then 0.4
    ("warmup_constant", linear_warmup(0.4, warmup_steps=4), {0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4, 4: 0.4, 50: 0.4}),
    # 1.0 (s + 1) / 2 for s < 2, then cosine(1, 4) at s - 2: 0.5 (1 + cos(pi (s - 2) / 4))
    (
        "warmup_cosine",
        linear_warmup(cosine(1.0, total_steps=4), warmup_steps=2),
        {0: 0.5, 1: 1.0, 2: 1.0, 3: 0.5 * (1 + math.sqrt(0.5)), 4: 0.5, 6: 0.0, 9: 0.0},
    ),
    # 0.3 before step 2; then 0.2 * 0.5 ** (s - 2) before step 5; then 0.01
    (
        "join",
        join([0.3, exponential(0.2, gamma=0.5), constant(0.01)], boundaries=[2, 5]),
        {0: 0.3, 1: 0.3, 2: 0.2, 3: 0.1, 4: 0.05, 5: 0.01, 9: 0.01},
    ),
]


@pytest.mark.parametrize("name, schedule, expected", CASES, ids=[case[0] for case in CASES])
def test_python_steps_give_python_floats(name, schedule, expected):
    for step, rate in expected.items():
        value = schedule(step)
        assert isinstance(value, float), f"{name} at step {step} gave {type(value).__name__}"
        assert value == pytest.approx(rate, rel=1e-12, abs=1e-15), f"{name} at step {step}"


@pytest.mark.parametrize("name, schedule, expected", CASES, ids=[case[0] for case in CASES])
def test_backend_steps_give_arrays_of_the_step_dtype(backend, name, schedule, expected):
    steps = np.array(list(expected), dtype=np.float64)
    rates = np.array(list(expected.values()))
    for dtype in float_dtypes(backend):
        for step, rate in zip(steps, rates):
            value = schedule(backend.asarray(np.asarray(step, dtype=dtype)))
            assert backend.dtype_name(value.dtype) == dtype and tuple(value.shape) == ()
            assert_close(backend.to_numpy(value), rate, dtype, scale=4, what=f"{name} at step {step}")


def test_integer_steps_become_floating(backend):
    value = cosine(1.0, total_steps=4)(backend.asarray(np.int32(2)))
    assert backend.xp.isdtype(value.dtype, "real floating")
    assert_close(backend.to_numpy(value), 0.5, backend.dtype_name(value.dtype))


@pytest.mark.parametrize("name, schedule, expected", CASES[1:], ids=[case[0] for case in CASES[1:]])
def test_compiled_schedule_reads_the_step_array(backend, name, schedule, expected):
    """One compiled function serves every step: the step is an input, not a constant."""
    compiled = backend.compile(lambda step: schedule(step))
    for step, rate in expected.items():
        value = compiled(backend.asarray(np.float32(step)))
        assert_close(backend.to_numpy(value), rate, "float32", scale=4, what=f"compiled {name} at step {step}")


def test_any_callable_is_a_schedule(backend):
    halving = join([lambda step: 0.5, 0.1], boundaries=[3])
    assert halving(2) == 0.5 and halving(3) == 0.1
    value = halving(backend.asarray(np.float32(1.0)))
    assert_close(backend.to_numpy(value), 0.5, "float32")
    assert as_schedule(0.25)(9) == 0.25


def test_hyperparameters_describe_the_schedule():
    schedule = linear_warmup(cosine(0.1, total_steps=90), warmup_steps=10)
    assert schedule.hyperparameters == {
        "schedule": "linear_warmup",
        "inner": {"schedule": "cosine", "lr": 0.1, "total_steps": 90, "min_lr": 0.0},
        "warmup_steps": 10,
    }
    assert join([0.1, 0.01], [5]).hyperparameters == {
        "schedule": "join",
        "schedules": [{"schedule": "constant", "lr": 0.1}, {"schedule": "constant", "lr": 0.01}],
        "boundaries": [5],
    }
    assert repr(step_decay(0.1, 3)) == "step_decay(lr=0.1, step_size=3, gamma=0.1)"


@pytest.mark.parametrize(
    "make_schedule, message",
    [
        (lambda: constant(-0.1), "lr must be a non-negative finite number"),
        (lambda: constant(float("inf")), "lr must be"),
        (lambda: step_decay(0.1, step_size=2.5), "step_size must be a positive int"),
        (lambda: step_decay(0.1, step_size=0), "step_size must be a positive int"),
        (lambda: exponential(0.1, gamma=-0.5), "gamma must be"),
        (lambda: cosine(0.1, total_steps=0), "total_steps must be a positive int"),
        (lambda: cosine(0.1, total_steps=10, min_lr=-1.0), "min_lr must be"),
        (lambda: linear_warmup(0.1, warmup_steps=0), "warmup_steps must be a positive int"),
        (lambda: join([0.1, 0.01], boundaries=[]), "k schedules and k - 1 boundaries"),
        (lambda: join([0.1, 0.01, 0.001], boundaries=[5, 5]), "increase strictly"),
        (lambda: constant(0.1)(-1), "step must be >= 0"),
    ],
)
def test_invalid_arguments_raise_value_error(make_schedule, message):
    with pytest.raises(ValueError, match=message):
        make_schedule()
