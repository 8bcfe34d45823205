"""FitConfig, the one list of fit's settings: checked when made, the source of fit's
signature, and the one declaration of what a resumed run must share."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from fit_child import data, fit_problem

import portable_dl
from portable_dl.errors import CheckpointError, ShapeError
from portable_dl.fit_checkpoints import run_settings
from portable_dl.fit_config import EarlyStopping, FitConfig, _setting, int_at_least
from portable_dl.training import fit


@pytest.fixture(scope="module")
def numpy_backend():
    return portable_dl.backend("numpy")


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("epochs", -1, "epochs must be an int >= 0, got -1"),
        ("batch_size", 2.5, "batch_size must be an int >= 1, got 2.5"),
        ("batch_size", True, "batch_size must be an int >= 1, got True"),
        ("validation_data", np.zeros((3, 2)), "validation_data must be a pair"),
        ("metrics", "accuracy", "metrics must be a list"),
        ("metrics", ["accuracy", "speed"], "unknown metric 'speed'"),
        ("shuffle", "yes", "shuffle must be True or False"),
        ("early_stopping", "val_loss", "early_stopping must be an EarlyStopping or None"),
        ("regularizer", 0.1, "regularizer must be a function or None"),
        ("compile", None, "compile must be True or False"),
        ("check_every", 0, "check_every must be an int >= 1, got 0"),
        ("sync_every", -1, "sync_every must be an int >= 0, got -1"),
        ("verbose", -1, "verbose must be an int >= 0"),
        ("keep_checkpoints", 0, "keep_checkpoints must be an int >= 1"),
        ("resume", 1, "resume must be True or False"),
        ("steps_per_call", 0, "steps_per_call must be an int >= 1, got 0"),
        ("steps_per_call", 2.0, "steps_per_call must be an int >= 1, got 2.0"),
        ("steps_per_call", True, "steps_per_call must be an int >= 1, got True"),
        ("data_on_device", "yes", "data_on_device must be True, False or \"auto\", got 'yes'"),
        ("data_on_device", None, 'data_on_device must be True, False or "auto", got None'),
    ],
)
def test_a_bad_setting_raises_naming_it(setting, value, message):
    with pytest.raises(ValueError, match=message):
        FitConfig(**{setting: value})


def test_settings_are_checked_together_and_the_config_is_frozen():
    with pytest.raises(
        ShapeError,
        match=r"validation_data needs x and y with the same number of examples, "
        r"got shapes \(3, 2\) and \(4,\)",
    ):
        FitConfig(validation_data=(np.zeros((3, 2)), np.zeros(4)))
    with pytest.raises(ValueError, match="early stopping monitors 'val_loss', which needs validation_data"):
        FitConfig(early_stopping=EarlyStopping())
    with pytest.raises(ValueError, match="with a checkpoint_dir, seed must be an int"):
        FitConfig(checkpoint_dir="runs", seed=np.random.default_rng(0))
    # Data parallel cuts each rank's slice on the host, one step per call: the rest is "not yet".
    two_ranks = type("TwoRanks", (), {"rank": 0, "size": 2, "all_reduce": None, "broadcast": None})()
    for setting, value in [("steps_per_call", 2), ("data_on_device", True)]:
        with pytest.raises(ValueError, match=f"{setting}={value!r} is not yet supported with a world of more than one"):
            FitConfig(world=two_ranks, **{setting: value})
    FitConfig(world=two_ranks, data_on_device="auto")  # the data stays on the host: nothing refused
    config = FitConfig(epochs=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    assert FitConfig(epochs=2) == config and config.batch_size == 32


def test_fit_signature_is_the_config(numpy_backend):
    """Every setting appears in fit's signature with FitConfig's default, and fit refuses a
    keyword FitConfig does not declare, before training."""
    parameters = inspect.signature(fit).parameters
    for setting in dataclasses.fields(FitConfig):
        assert parameters[setting.name].default == setting.default, setting.name
    assert [name for name in parameters if name not in {f.name for f in dataclasses.fields(FitConfig)}] == [
        "model_or_apply",
        "params",
        "loss_fn",
        "optimizer",
        "backend",
        "x",
        "y",
        "opt_state",
    ]
    with pytest.raises(TypeError, match="unexpected keyword arguments warmup_steps; its settings are epochs, "):
        fit_problem(numpy_backend, warmup_steps=4)


def test_a_new_setting_is_one_field():
    """What adding an option takes: one field with its default, check and resume record;
    the checks and the checkpoint's run settings follow (shown on a subclass)."""
    WithWarmup = dataclasses.make_dataclass(
        "WithWarmup",
        [("warmup_steps", int, _setting(1, int_at_least(1), resume=int))],
        bases=(FitConfig,),
        frozen=True,
    )
    with pytest.raises(ValueError, match="warmup_steps must be an int >= 1, got 0"):
        WithWarmup(warmup_steps=0)
    settings = run_settings(WithWarmup(warmup_steps=4, seed=3), 96, optimizer=None)
    assert settings["warmup_steps"] == 4 and settings["seed"] == 3
    assert set(settings) == {
        "examples",
        "optimizer",
        "epochs",
        "batch_size",
        "validation_examples",
        "metrics",
        "shuffle",
        "seed",
        "early_stopping",
        "dtype",
        "precision",
        "warmup_steps",
    }


def test_resume_refuses_other_resume_settings_and_accepts_other_others(numpy_backend, tmp_path):
    """metrics and dtype are declared resume settings: changing either is refused, naming it;
    verbose, check_every, sync_every, steps_per_call and data_on_device are not: the resumed run goes on."""
    validation = data(12, seed=1)
    fit_problem(numpy_backend, epochs=1, checkpoint_dir=tmp_path, validation_data=validation, metrics=["accuracy"])
    for change, message in [
        ({"metrics": []}, r"metrics is \['accuracy'\] there, \[\] here"),
        ({"dtype": "float64"}, "dtype is 'float32' there, 'float64' here"),
        ({"validation_data": data(6, seed=1)}, "validation_examples is 12 there, 6 here"),
    ]:
        options = {"validation_data": validation, "metrics": ["accuracy"], **change}
        with pytest.raises(CheckpointError, match=message):
            fit_problem(numpy_backend, epochs=1, checkpoint_dir=tmp_path, resume=True, **options)
    again = fit_problem(
        numpy_backend,
        epochs=1,
        checkpoint_dir=tmp_path,
        resume=True,
        validation_data=validation,
        metrics=["accuracy"],
        check_every=1,
        sync_every=0,
        verbose=0,
        steps_per_call=2,
        data_on_device=False,
    )
    assert len(again.history["loss"]) == 1 and not again.interrupted
