"""The settings of :func:`portable_dl.fit`, declared once.

:class:`FitConfig` is the single list of fit's settings: ``fit(...)`` builds it from its
keyword arguments, the training loop reads it, and a checkpoint records the settings that a
resumed run must share (:meth:`FitConfig.resume_record`). Each field is declared with
:func:`_setting`: its default, the check of its value (run by ``__post_init__``, so a config
that exists is valid), and, for the settings that matter for resuming, how a checkpoint
records it. Adding an option to fit is one field here (plus a line in fit's docstring);
fit's signature, its checks, the loop's access and the resume checks follow from it.

:class:`EarlyStopping` lives here too: it is one of the settings.

This module imports no framework.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .errors import ShapeError
from .metrics import get_metric
from .precision import get_policy, policy_name

__all__ = ["FitConfig", "EarlyStopping", "metric_name"]


@dataclass
class EarlyStopping:
    """Stop :func:`fit` when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row.

    ``monitor`` names a history entry (``"val_loss"``, ``"val_accuracy"``, ``"loss"``);
    ``mode`` is ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy, precision, recall and
    f1, min otherwise). With ``restore_best`` the parameters of the best epoch are returned.
    """

    monitor: str = "val_loss"
    patience: int = 3
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(f'EarlyStopping mode must be "auto", "min" or "max", got {self.mode!r}')
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"EarlyStopping patience must be a non-negative int, got {self.patience!r}")
        if self.min_delta < 0:
            raise ValueError(f"EarlyStopping min_delta must be >= 0, got {self.min_delta!r}")

    @property
    def maximize(self) -> bool:
        if self.mode != "auto":
            return self.mode == "max"
        return any(name in self.monitor for name in ("accuracy", "precision", "recall", "f1"))

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best + self.min_delta if self.maximize else value < best - self.min_delta


# ------------------------------------------------------------ checks of one value
def int_at_least(low: int) -> Callable[[str, Any], None]:
    """``check(name, value)``: ValueError unless ``value`` is an int >= ``low``."""

    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    return check


def _optional(check: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    return lambda name, value: None if value is None else check(name, value)


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _function(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be a function or None, got {type(value).__name__}")


def _validation_pair(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (x_val, y_val) of arrays, got {type(value).__name__}")
    x_shape, y_shape = np.shape(value[0]), np.shape(value[1])
    if x_shape[:1] != y_shape[:1]:
        raise ShapeError(f"{name} needs x and y with the same number of examples, got shapes {x_shape} and {y_shape}")
    if not x_shape or x_shape[0] == 0:
        raise ValueError(f"{name} needs at least one example")


def _metrics(name: str, value: Any) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of metric names or functions, got {value!r}")
    for metric in value:
        get_metric(metric)  # ValueError naming an unknown metric


def _early_stopping(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, EarlyStopping):
        raise ValueError(f"{name} must be an EarlyStopping or None, got {type(value).__name__}")


def _folder(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a folder's path (str or os.PathLike), got {type(value).__name__}")
    if os.path.exists(value) and not os.path.isdir(value):
        raise ValueError(f"{name} {os.fspath(value)!r} is a file, not a folder")


def _world(name: str, value: Any) -> None:
    if value is not None and not all(hasattr(value, a) for a in ("rank", "size", "all_reduce", "broadcast")):
        raise ValueError(
            f"{name} must be a World from portable_dl.distributed.init(), or None; got {type(value).__name__}"
        )


def _placement(name: str, value: Any) -> None:
    if not (isinstance(value, (bool, np.bool_)) or (isinstance(value, str) and value == "auto")):
        raise ValueError(f'{name} must be True, False or "auto", got {value!r}')


def _verbosity(name: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    int_at_least(0)(name, value)


# ----------------------------------------------------- how a checkpoint records one
def metric_name(metric: Any) -> str:
    """The name of a metric given by name or as a function (its ``__name__``)."""
    if isinstance(metric, str):
        return metric
    return getattr(metric, "__name__", type(metric).__name__)


def _example_count(value: Any) -> int | None:
    return None if value is None else int(np.shape(value[0])[0])


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _setting(
    default: Any,
    check: Callable[[str, Any], None] | None = None,
    resume: Callable[[Any], Any] | None = None,
    record_as: str | None = None,
) -> Any:
    """A field of :class:`FitConfig`: its ``default``; ``check(name, value)``, raising
    ValueError for a bad value; and, for a setting that a resumed run must share with the
    run that wrote the checkpoint, ``resume(value)``, the JSON value the checkpoint records
    (under the field's name, or ``record_as``)."""
    return field(default=default, metadata={"check": check, "resume": resume, "record_as": record_as})


# ------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class FitConfig:
    """Every setting of :func:`portable_dl.fit` but the model, its parameters, the loss, the
    optimizer, the backend, the training data and a starting optimizer state.

    ``epochs`` (int >= 0) and ``batch_size`` (int >= 1); ``validation_data``, a pair
    ``(x_val, y_val)`` evaluated after every epoch with the loss and ``metrics`` (names
    from :mod:`portable_dl.metrics` or ``f(predictions, targets)``); ``shuffle`` and
    ``seed`` of the batches; ``early_stopping`` (:class:`EarlyStopping`); ``trainable``, a
    mask from ``nn.trainable_mask``; ``regularizer(params) -> scalar``, added to the loss;
    ``compile`` the step with the backend's compiler; ``dtype`` of the inputs and floating
    targets (None: the parameters' floating dtype, resolved by fit); ``check_every`` steps
    the losses are read (None: once per epoch); ``sync_every`` steps the device is waited
    for (0: never); ``verbose`` (0 silent, 1 a line per epoch and a progress bar);
    ``checkpoint_dir``, ``checkpoint_every``, ``keep_checkpoints`` and ``resume``: see
    :func:`portable_dl.fit`; ``precision``, a name or a Policy of :mod:`portable_dl.precision`
    (``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"``), recorded for resuming;
    ``steps_per_call`` (int >= 1) single steps run in one call of the step function;
    ``data_on_device`` (True, False, ``"auto"``) moves the training set to the device once
    and cuts the batches there; ``world``, a :class:`~portable_dl.distributed.World`,
    trains data-parallel with ``batch_size`` examples per rank (not yet with
    ``steps_per_call`` > 1 or ``data_on_device=True``).

    Frozen and checked when made: a bad value raises ValueError (ShapeError for a
    validation pair of unequal lengths) naming the setting.
    """

    epochs: int = _setting(1, int_at_least(0), resume=int)
    batch_size: int = _setting(32, int_at_least(1), resume=int)
    validation_data: tuple[Any, Any] | None = _setting(
        None, _validation_pair, resume=_example_count, record_as="validation_examples"
    )
    metrics: Sequence[str | Callable] = _setting((), _metrics, resume=lambda value: [metric_name(m) for m in value])
    shuffle: bool = _setting(True, _flag, resume=bool)
    seed: Any = _setting(0, resume=_optional_int)
    early_stopping: EarlyStopping | None = _setting(
        None, _early_stopping, resume=lambda value: None if value is None else asdict(value)
    )
    trainable: Any = _setting(None)
    regularizer: Callable[[Any], Any] | None = _setting(None, _function)
    compile: bool = _setting(True, _flag)
    dtype: Any = _setting(None, resume=lambda value: None if value is None else str(value))
    check_every: int | None = _setting(None, _optional(int_at_least(1)))
    sync_every: int = _setting(10, int_at_least(0))
    verbose: int = _setting(1, _verbosity)
    checkpoint_dir: str | os.PathLike | None = _setting(None, _folder)
    checkpoint_every: int | None = _setting(None, _optional(int_at_least(1)))
    keep_checkpoints: int = _setting(3, int_at_least(1))
    resume: bool = _setting(False, _flag)
    # Recorded for resuming: a run continues in the precision (and loss scale) it started in.
    precision: Any = _setting("float32", lambda name, value: get_policy(value), resume=policy_name)
    # Not recorded for resuming: neither changes the batches or the updates, so a run saved with
    # one value resumes with another to the same trajectory.
    steps_per_call: int = _setting(1, int_at_least(1))
    data_on_device: bool | str = _setting("auto", _placement)
    # Not recorded for resuming: a checkpoint holds the global batch, nothing of the world size.
    world: Any = _setting(None, _world)

    def __post_init__(self) -> None:
        for setting in fields(self):
            check = setting.metadata["check"]
            if check is not None:
                check(setting.name, getattr(self, setting.name))
        self._check_together()

    def _check_together(self) -> None:
        """The checks that involve two settings."""
        if self.world is not None and self.world.size > 1:
            # Each rank cuts its slice of the global batch on the host (distributed.fitting), one step per call.
            unsupported = {
                "steps_per_call": self.steps_per_call > 1,
                "data_on_device": self.data_on_device != "auto" and bool(self.data_on_device),
            }
            for name, used in unsupported.items():
                if used:
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} is not yet supported with a world of more than one "
                        f"process (data-parallel training); leave {name} at its default"
                    )
        stopper = self.early_stopping
        if stopper is not None and stopper.monitor.startswith("val_") and self.validation_data is None:
            raise ValueError(f"early stopping monitors {stopper.monitor!r}, which needs validation_data")
        if self.checkpoint_dir is None:
            if self.resume:
                raise ValueError("resume=True needs checkpoint_dir, the folder holding the checkpoints to resume from")
            if self.checkpoint_every is not None:
                raise ValueError("checkpoint_every needs checkpoint_dir, the folder to save the checkpoints in")
            return
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(
                f"with a checkpoint_dir, seed must be an int (or None), which a checkpoint records; "
                f"got {type(seed).__name__}"
            )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings' names, in declaration order."""
        return tuple(setting.name for setting in fields(cls))

    def metric_functions(self) -> dict[str, Callable]:
        """``{name: f(predictions, targets)}`` of ``metrics``."""
        return {metric_name(metric): get_metric(metric) for metric in self.metrics}

    def resume_record(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run that wrote its checkpoint, as
        JSON values, by the name the checkpoint records them under."""
        record = {}
        for setting in fields(self):
            resume = setting.metadata["resume"]
            if resume is not None:
                record[setting.metadata["record_as"] or setting.name] = resume(getattr(self, setting.name))
        return record
