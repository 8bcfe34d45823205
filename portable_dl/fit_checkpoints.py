"""What :func:`portable_dl.fit` saves to resume a run, and the folder it saves it in.

:class:`Progress` is the state of a fit run after its last completed step (params,
optimizer state, position in the shuffled data, loss sums, and per epoch :class:`Epochs`:
history, shuffling state, early stopping). :class:`CheckpointFolder` writes it as
``step-<step>.safetensors`` with :mod:`portable_dl.checkpoint` (the arrays as tensors, the
rest as a JSON record in the metadata), keeps the newest few, and reads the newest readable
one back when fit resumes, refusing one written with other settings (:func:`run_settings`).

This module imports no framework.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .checkpoint import load as load_checkpoint
from .checkpoint import read_metadata
from .checkpoint import save as save_checkpoint
from .errors import CheckpointError

__all__ = ["Epochs", "Progress", "CheckpointFolder", "run_settings"]


class Epochs(NamedTuple):
    """What :func:`fit` changes once per epoch, replaced whole when an epoch ends."""

    index: int  # the epoch in progress, from 0
    history: dict[str, list[float]]  # of the completed epochs; a new dict each epoch, never mutated
    rng_state: dict  # the shuffling generator's bit_generator.state at the start of epoch `index`
    best: tuple[Any, Any, int] | None = None  # (params, opt_state, epoch) of the best epoch so far
    best_value: float | None = None
    waited: int = 0  # epochs since the best one
    stopped_early: bool = False
    best_file: str | None = None  # the checkpoint file holding `best`


class Progress(NamedTuple):
    """Training as of the last completed step.

    :class:`portable_dl.training` replaces it whole, in one assignment, after each step, each read of
    the losses and each epoch, so a KeyboardInterrupt arriving anywhere finds params,
    optimizer state, data position and loss sums that belong together.
    """

    params: Any
    opt_state: Any
    step: int  # steps done in all
    batch: int  # batches done in the epoch in progress
    device_sum: Any  # on the device: the sum of loss x batch size over this epoch's steps not yet read, or None
    read_sum: float  # the part of this epoch's sum already read to the host
    epochs: Epochs


# ------------------------------------------------------------ the checkpoint folder
#: fit's files in a checkpoint folder: the state after <step> steps, and (early stopping with
#: restore_best) the best epoch's params and optimizer state, that epoch having ended at <step>.
_STEP_FILE = re.compile(r"step-(\d{9,})\.safetensors")
_BEST_FILE = re.compile(r"best-(\d{9,})\.safetensors")
#: The keys of fit's records in the checkpoints' metadata.
_RECORD_KEY, _BEST_RECORD_KEY = "fit", "fit_best"
#: The record's fields and the JSON types each may have.
_RECORD_FIELDS = {
    "settings": (dict,),
    "epoch": (int,),
    "batch": (int,),
    "step": (int,),
    "rng_state": (dict,),
    "read_sum": (int, float),
    "device_sum": (int, float, type(None)),
    "device_sum_dtype": (str, type(None)),
    "history": (dict,),
    "best_epoch": (int, type(None)),
    "best_value": (int, float, type(None)),
    "waited": (int,),
    "stopped_early": (bool,),
    "best_file": (str, type(None)),
}


class CheckpointFolder:
    """The checkpoints of one :func:`fit` run in one folder.

    ``step-<step>.safetensors`` holds the state after ``step`` steps (nine or more digits, so
    names sort as steps do) with fit's record in its metadata; ``best-<step>.safetensors``
    the best epoch's params and optimizer state. Every other file is left alone.
    """

    def __init__(self, path: str | os.PathLike, keep: int, backend: Any, optimizer: Any, settings: dict):
        self.path = Path(path)
        self.keep = keep
        self.backend = backend
        describable = isinstance(getattr(optimizer, "name", None), str) and isinstance(
            getattr(optimizer, "hyperparameters", None), dict
        )
        self.optimizer = optimizer if describable else None
        # As a checkpoint gives them back (JSON: tuples become lists), so that the two compare.
        self.settings = json.loads(json.dumps(settings, default=str))
        self._best_of: dict[str, str | None] = {}  # step file name -> the best file its record names

    def files(self, pattern: re.Pattern) -> list[tuple[int, Path]]:
        """``(step, path)`` of this folder's files named by ``pattern``, oldest first."""
        if not self.path.is_dir():
            return []
        found = [
            (int(match.group(1)), Path(entry.path))
            for entry in os.scandir(self.path)
            if (match := pattern.fullmatch(entry.name)) and entry.is_file()
        ]
        return sorted(found)

    def open(self, start: Progress, resume: bool, restore_best: bool) -> tuple[Progress, Path | None]:
        """Create the folder; return the progress to train from and the file it was resumed
        from: with ``resume``, that of the newest readable checkpoint (see :meth:`resume`),
        else, or in a folder holding none, ``start`` and None."""
        restored = None
        if resume:
            restored = self.resume(start, restore_best)
        else:
            self.refuse_earlier_run()
        self.path.mkdir(parents=True, exist_ok=True)
        return restored if restored is not None else (start, None)

    def refuse_earlier_run(self) -> None:
        """CheckpointError when the folder holds fit's files already: a new run would mix with
        them, and pruning could delete the new run's files and keep the old ones."""
        earlier = [path.name for _, path in self.files(_STEP_FILE) + self.files(_BEST_FILE)]
        if earlier:
            shown = ", ".join(earlier[-3:]) + (f" and {len(earlier) - 3} more" if len(earlier) > 3 else "")
            raise CheckpointError(
                f"{self.path} already holds checkpoints of an earlier fit ({shown}): pass "
                "resume=True to continue that run, or choose an empty folder (or delete them) "
                "to start a new one"
            )

    def save(self, progress: Progress, device_sum: tuple[float, str] | None) -> Path:
        """Write ``progress`` (with ``device_sum``, its device loss sum as read: value and dtype
        name) to ``step-<step>.safetensors``, then delete the files no longer kept."""
        epochs = progress.epochs
        record = {
            "settings": self.settings,
            "epoch": epochs.index,
            "batch": progress.batch,
            "step": progress.step,
            "rng_state": epochs.rng_state,
            "read_sum": progress.read_sum,
            "device_sum": None if device_sum is None else device_sum[0],
            "device_sum_dtype": None if device_sum is None else device_sum[1],
            "history": epochs.history,
            "best_epoch": None if epochs.best is None else epochs.best[2],
            "best_value": epochs.best_value,
            "waited": epochs.waited,
            "stopped_early": epochs.stopped_early,
            "best_file": epochs.best_file,
        }
        path = save_checkpoint(
            self.path / f"step-{progress.step:09d}.safetensors",
            progress.params,
            progress.opt_state,
            {_RECORD_KEY: record},
            optimizer=self.optimizer,
        )
        self._best_of[path.name] = epochs.best_file
        self._prune()
        return path

    def save_best(self, params: Any, opt_state: Any, epoch: int, step: int) -> str:
        """Write the best epoch's state to ``best-<step>.safetensors``; return the file's name."""
        path = save_checkpoint(
            self.path / f"best-{step:09d}.safetensors",
            params,
            opt_state,
            {_BEST_RECORD_KEY: {"epoch": epoch, "step": step}},
            optimizer=self.optimizer,
        )
        return path.name

    def resume(self, start: Progress, restore_best: bool) -> tuple[Progress, Path] | None:
        """The progress saved in the newest checkpoint that can be read, and its file; None when
        the folder holds none. ``start`` is the fresh progress, whose trees the saved ones must
        match. Unreadable files are skipped with a warning; settings or trees that differ raise
        CheckpointError, as does a folder whose every checkpoint is unreadable."""
        unreadable = []
        for _, path in reversed(self.files(_STEP_FILE)):
            try:
                record = _fit_record(read_metadata(path)["metadata"], path)
            except CheckpointError as error:
                unreadable.append(f"{path.name}: {error}")
                warnings.warn(
                    f"fit skips the checkpoint {path}, which cannot be read, for the previous one: {error}",
                    stacklevel=4,
                )
                continue
            self._check_settings(record, path)
            try:
                checkpoint = load_checkpoint(path, self.backend, like=start.params, opt_state_like=start.opt_state)
            except CheckpointError as error:
                raise CheckpointError(f"cannot resume from {path}: {error}") from error
            best = None
            if restore_best and record["best_file"] is not None:
                try:
                    best = self._load_best(record, start)
                except CheckpointError as error:
                    unreadable.append(f"{path.name}: {error}")
                    warnings.warn(
                        f"fit skips the checkpoint {path}, whose best epoch cannot be read, for the "
                        f"previous one: {error}",
                        stacklevel=4,
                    )
                    continue
            self._best_of[path.name] = record["best_file"]
            return _restored_progress(record, checkpoint, best, self.backend), path
        if unreadable:
            raise CheckpointError(
                f"no checkpoint in {self.path} can be resumed from:\n  "
                + "\n  ".join(unreadable)
                + "\ndelete them, or choose another checkpoint_dir, to start afresh"
            )
        return None

    def _check_settings(self, record: dict, path: Path) -> None:
        saved = record["settings"]
        differences = [
            f"{name} is {saved.get(name)!r} there, {value!r} here"
            for name, value in self.settings.items()
            if saved.get(name) != value
        ]
        if differences:
            raise CheckpointError(
                f"cannot resume from {path}: it was written by a fit with other settings: {'; '.join(differences)}. "
                f"Resuming needs the same values of: {', '.join(self.settings)}; to start a new run, use another "
                "checkpoint_dir"
            )

    def _load_best(self, record: dict, start: Progress) -> tuple[Any, Any, int]:
        path = self.path / record["best_file"]
        checkpoint = load_checkpoint(path, self.backend, like=start.params, opt_state_like=start.opt_state)
        best_record = checkpoint.metadata.get(_BEST_RECORD_KEY)
        saved_epoch = best_record.get("epoch") if isinstance(best_record, dict) else None
        if saved_epoch != record["best_epoch"]:
            raise CheckpointError(
                f"{path} holds the state of epoch {saved_epoch}, but the best epoch was {record['best_epoch']}"
            )
        return checkpoint.params, checkpoint.opt_state, saved_epoch

    def _prune(self) -> None:
        """Delete all but the newest ``keep`` step files, then the best files that no kept one
        names and that are older than one they name (a newer one may be about to be named).
        Called only once a new file is in place."""
        steps = self.files(_STEP_FILE)
        for _, path in steps[: -self.keep]:
            _remove(path)
            self._best_of.pop(path.name, None)
        named = set()
        for _, path in steps[-self.keep :]:
            if path.name not in self._best_of:
                try:
                    self._best_of[path.name] = _fit_record(read_metadata(path)["metadata"], path)["best_file"]
                except CheckpointError:
                    return  # what that file needs is unknown: delete no best file
            named.add(self._best_of[path.name])
        named.discard(None)
        if named:
            newest = max(int(_BEST_FILE.fullmatch(name).group(1)) for name in named)
            for step, path in self.files(_BEST_FILE):
                if step < newest and path.name not in named:
                    _remove(path)


def run_settings(config: Any, examples: int, optimizer: Any) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint (the parameter and
    optimizer-state shapes aside, which loading checks) for the two to make one run: the
    number of training ``examples``, the ``optimizer``'s name and hyperparameters, and the
    settings of ``config`` (a :class:`~portable_dl.fit_config.FitConfig`) that it marks for
    resuming."""
    return {
        "examples": int(examples),
        "optimizer": {
            "name": getattr(optimizer, "name", type(optimizer).__name__),
            "hyperparameters": getattr(optimizer, "hyperparameters", None),
        },
        **config.resume_record(),
    }


def _fit_record(metadata: dict, path: Path) -> dict:
    """fit's record from a checkpoint's metadata, checked field by field."""
    record = metadata.get(_RECORD_KEY)
    if not isinstance(record, dict):
        raise CheckpointError(f"{path} holds no record of fit in its metadata: it was not written by fit")
    corrupted = f"{path}: fit's record in it is corrupted:"
    for name, kinds in _RECORD_FIELDS.items():
        if not isinstance(record.get(name), kinds):
            expected = " or ".join(kind.__name__ for kind in kinds)
            raise CheckpointError(f"{corrupted} its {name!r} is {type(record.get(name)).__name__}, expected {expected}")
    if record["best_file"] is not None and not _BEST_FILE.fullmatch(record["best_file"]):
        raise CheckpointError(f"{corrupted} it names the best epoch's file {record['best_file']!r}")
    if record["device_sum_dtype"] not in (None, "float32", "float64"):
        raise CheckpointError(f"{corrupted} its loss dtype is {record['device_sum_dtype']!r}")
    history = record["history"]
    numbers = (
        isinstance(values, list) and all(isinstance(v, (int, float)) for v in values) for values in history.values()
    )
    if "loss" not in history or not all(numbers):
        raise CheckpointError(f"{corrupted} its history is not lists of numbers with a 'loss'")
    try:
        np.random.default_rng().bit_generator.state = record["rng_state"]
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{corrupted} its shuffling state is unusable: {error}") from error
    return record


def _restored_progress(record: dict, checkpoint: Any, best: tuple[Any, Any, int] | None, backend: Any) -> Progress:
    """The :class:`Progress` a checkpoint's record describes, its arrays on ``backend``."""
    device_sum = None
    if record["device_sum"] is not None:
        device_sum = backend.asarray(np.asarray(record["device_sum"], dtype=record["device_sum_dtype"]))
    history = {name: [float(value) for value in values] for name, values in record["history"].items()}
    epochs = Epochs(
        record["epoch"],
        history,
        record["rng_state"],
        best,
        record["best_value"],
        record["waited"],
        record["stopped_early"],
        record["best_file"],
    )
    return Progress(
        checkpoint.params,
        checkpoint.opt_state,
        record["step"],
        record["batch"],
        device_sum,
        float(record["read_sum"]),
        epochs,
    )


def _remove(path: Path) -> None:
    """Delete an old checkpoint file; a failure only warns: training goes on."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(f"fit could not delete the old checkpoint {path}: {error}", stacklevel=2)
