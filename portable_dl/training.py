"""Training: one compiled step, and the loop around it.

:func:`make_train_step` builds the pure function

    step(params, opt_state, (x, y)) -> (params, opt_state, loss)

from a loss, an optimizer and a backend: the backend's own ``value_and_grad`` gives the
loss and its gradient, the optimizer's ``update`` the new parameters and state, and the
backend's own compiler (``jax.jit``, ``tf.function``, ``mx.compile``, ``torch.compile``)
takes the whole step as one function. Nothing is mutated, so a step that fails leaves its
inputs as they were.

:func:`fit` runs epochs of steps over seeded, shuffled mini-batches, with validation,
metrics, early stopping and a progress bar. It keeps the device busy: the losses are summed
on the device and read back once per epoch (or every ``check_every`` steps), because a read
is a host synchronization and at small batch sizes the fixed cost per step is the run time.

A loss that becomes NaN or infinite stops :func:`fit` with :class:`TrainingDiverged`, which
carries the parameters and optimizer state of the last check at which every loss so far was
finite; training never returns silently with diverged parameters.

With a ``checkpoint_dir``, :func:`fit` survives faults: it saves its whole state (params,
optimizer state, position in the shuffled data, partial loss sums, history, early stopping)
with :mod:`portable_dl.checkpoint` every few steps, on Ctrl-C, and at the end; after a crash,
a kill or a Ctrl-C, ``resume=True`` continues from the newest checkpoint and gives the
parameters and history of one uninterrupted run. The loop keeps that state in one record
that it replaces whole after each step, so a KeyboardInterrupt arriving anywhere finds a
consistent one. Without a ``checkpoint_dir`` it reads nothing more from the device.

This module imports no framework.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .data import batches
from .errors import PortableDLError, ShapeError
from .fit_checkpoints import CheckpointFolder, Epochs, Progress, run_settings
from .metrics import get_metric
from .nn import merge, partition
from .registry import backend as get_backend
from .tree import tree_leaves

__all__ = [
    "TrainingDiverged",
    "TrainStep",
    "make_train_step",
    "EarlyStopping",
    "FitResult",
    "fit",
    "evaluate",
    "predict",
]


class TrainingDiverged(PortableDLError, FloatingPointError):
    """The training loss became NaN or infinite.

    ``params`` and ``opt_state`` are those of the last check at which every loss so far was
    finite (``step`` steps into training, ``epoch`` full epochs done); ``history`` is the
    history of the completed epochs. Resume from them with a smaller learning rate.
    """

    def __init__(self, message: str, *, params: Any, opt_state: Any, epoch: int, step: int,
                 history: dict[str, list[float]]):
        super().__init__(message)
        self.params = params
        self.opt_state = opt_state
        self.epoch = epoch
        self.step = step
        self.history = history


# ------------------------------------------------------------------ one step
class TrainStep:
    """``step(params, opt_state, (x, y)) -> (params, opt_state, loss)``; see :func:`make_train_step`.

    ``init(params)`` gives the optimizer state this step expects: the state of the trainable
    parameters only, when a ``trainable`` mask is set.
    """

    def __init__(self, loss_fn: Callable[[Any, Any], Any], optimizer: Any, backend: Any, *,
                 compile: bool = True, trainable: Any = None):
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.backend = get_backend(backend)
        self.trainable = trainable
        self.compiled = bool(compile)
        step = self._step_of_all if trainable is None else self._step_of_trainable
        self._step = self.backend.compile(step) if compile else step
        self._value_and_grad = self.backend.value_and_grad(loss_fn)

    def init(self, params: Any) -> Any:
        """The optimizer's initial state for ``params`` (only their trainable leaves)."""
        return self.optimizer.init(self._split(params)[0])

    def __call__(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        return self._step(params, opt_state, batch)

    def _step_of_all(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        loss, grads = self._value_and_grad(params, batch)
        params, opt_state = self.optimizer.update(grads, opt_state, params)
        return params, opt_state, loss

    def _step_of_trainable(self, params: Any, opt_state: Any, batch: Any) -> tuple[Any, Any, Any]:
        # Frozen leaves leave the differentiated argument altogether (None in their place),
        # so no framework computes a gradient for them and no optimizer touches them.
        trainable, frozen = self._split(params)
        loss, grads = self.backend.value_and_grad(
            lambda trainable_part, batch_: self.loss_fn(merge(trainable_part, frozen), batch_)
        )(trainable, batch)
        trainable, opt_state = self.optimizer.update(grads, opt_state, trainable)
        return merge(trainable, frozen), opt_state, loss

    def _split(self, params: Any) -> tuple[Any, Any]:
        if self.trainable is None:
            return params, None
        return partition(params, self.trainable)


def make_train_step(loss_fn: Callable[[Any, Any], Any], optimizer: Any, backend: Any,
                    compile: bool = True, trainable: Any = None) -> TrainStep:
    """A pure training step ``(params, opt_state, batch) -> (params, opt_state, loss)``.

    ``loss_fn(params, batch) -> scalar`` with ``batch = (x, y)``; ``optimizer`` has
    ``init(params)`` and ``update(grads, state, params)``; ``backend`` is a Backend or its
    name. The gradient comes from ``backend.value_and_grad``; with ``compile`` the whole step
    is compiled by ``backend.compile``. ``trainable`` is a mask from
    ``nn.trainable_mask``: frozen leaves are neither differentiated nor updated, and come back
    as the very same arrays. Create the optimizer state with the step's ``init(params)``.
    """
    return TrainStep(loss_fn, optimizer, backend, compile=compile, trainable=trainable)


# ------------------------------------------------------------------ the loop
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


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history`` maps ``"loss"`` (the training loss, averaged over the examples of each
    epoch) and, with validation data, ``"val_loss"`` and ``"val_<metric>"`` to one float per
    completed epoch. ``best_epoch`` is the epoch (from 0) whose parameters were returned
    under early stopping with ``restore_best``, else the last one; ``stopped_early`` says
    whether early stopping ended training. ``interrupted`` says whether a KeyboardInterrupt
    ended it (``params`` and ``opt_state`` are then those after the last completed step);
    ``checkpoint`` is the checkpoint file holding the state returned (the last one written,
    or the one resumed from when nothing was left to train), or None without a
    ``checkpoint_dir``.
    """

    params: Any
    opt_state: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = -1
    stopped_early: bool = False
    interrupted: bool = False
    checkpoint: Path | None = None


def fit(
    model_or_apply: Any,
    params: Any,
    loss_fn: Callable[[Any, Any], Any],
    optimizer: Any,
    backend: Any,
    x: Any,
    y: Any,
    epochs: int = 1,
    batch_size: int = 32,
    *,
    validation_data: tuple[Any, Any] | None = None,
    metrics: Sequence[str | Callable] = (),
    shuffle: bool = True,
    seed: int = 0,
    early_stopping: EarlyStopping | None = None,
    trainable: Any = None,
    opt_state: Any = None,
    regularizer: Callable[[Any], Any] | None = None,
    compile: bool = True,
    dtype: Any = None,
    check_every: int | None = None,
    sync_every: int = 10,
    verbose: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 3,
    resume: bool = False,
) -> FitResult:
    """Train ``params`` on NumPy data ``x`` (N, ...) and ``y`` (N, ...) for ``epochs`` epochs.

    ``model_or_apply`` is a model (anything with ``apply(params, x)``) or the function
    itself; ``loss_fn(predictions, targets) -> scalar`` is a loss such as
    ``losses.cross_entropy``; ``regularizer(params) -> scalar`` (``l2_penalty`` with its
    ``lam`` bound) is added to it. Batches are shuffled each epoch by one
    ``numpy.random.default_rng(seed)`` stream, so the same seed gives the same history.
    ``x`` is cast to ``dtype`` (default: the parameters' dtype); integer targets are moved
    as int64 (some frameworks treat uint8 indices as masks).

    ``validation_data=(x_val, y_val)`` is evaluated after every epoch with the loss and
    ``metrics`` (names from :mod:`portable_dl.metrics` or ``f(predictions, targets)``).
    ``early_stopping``: see :class:`EarlyStopping`. ``trainable``: a mask from
    ``nn.trainable_mask``; ``opt_state``: state to resume from (default: a fresh one).

    The losses are read from the device every ``check_every`` steps (default: once per
    epoch); between reads the arrays are synchronized every ``sync_every`` steps, which
    bounds the graph a lazy framework (MLX) builds. A NaN or infinite loss raises
    :class:`TrainingDiverged` carrying the parameters of the last good read.
    ``verbose=0`` is silent; ``verbose=1`` prints a line per epoch and shows a progress bar
    when standard error is a terminal.

    Checkpoints and resuming (see :mod:`portable_dl.checkpoint` for the file format):

    - ``checkpoint_dir``: the folder for checkpoints, created if missing. fit saves the
      whole training state there as ``step-<steps done, 9 digits>.safetensors``: params,
      optimizer state, the position in the shuffled data, the loss summed so far in the
      epoch, the history and the early-stopping state (with ``restore_best``, the best
      epoch's params go to ``best-<step>.safetensors``). It saves after every
      ``checkpoint_every`` steps (an int >= 1), or, without it, after every epoch; and
      always when fit ends. A checkpoint is written only after the losses so far were read
      and found finite, and each file is written atomically (a crash leaves the previous
      one). Without ``resume``, a folder already holding checkpoints of fit is refused
      (:class:`~portable_dl.errors.CheckpointError`), so that no earlier run is mixed in.
    - ``keep_checkpoints``: how many step files to keep (an int >= 1, default 3); older
      ones are deleted once a new one is safely written. Files not named as above are left
      alone.
    - ``resume=True`` (needs ``checkpoint_dir``): continue from the newest checkpoint in the
      folder (its params and optimizer state replace those passed in, which it must match);
      with none there, start afresh. A checkpoint whose header cannot be read (a
      truncated or corrupted file) is skipped with a warning for the next older one. The
      resumed run gives the same parameters and history as one uninterrupted run: bit for
      bit on the same backend with deterministic kernels (NumPy, PyTorch on the CPU), within
      rounding on another backend (the arrays are moved to this call's ``backend``).
      Resuming needs the same number of examples, ``batch_size``, ``shuffle``, ``seed``,
      ``epochs``, ``dtype``, optimizer (name and hyperparameters), validation set size,
      metrics, early stopping, and the same parameter and optimizer-state shapes:
      otherwise :class:`~portable_dl.errors.CheckpointError` names what differs, and
      nothing is changed.

    A KeyboardInterrupt (Ctrl-C) during training stops it after the last completed step:
    with a ``checkpoint_dir`` the state of that step is saved (resume continues exactly
    there), and fit returns a :class:`FitResult` with ``interrupted=True`` holding that
    step's params and optimizer state and the history of the completed epochs; without a
    ``checkpoint_dir`` it returns the same, saving nothing. A second Ctrl-C while that
    checkpoint is written aborts fit (the previous checkpoint file stands).
    """
    backend = get_backend(backend)
    apply = _apply_function(model_or_apply)
    _check_positive_int("epochs", epochs, allow_zero=True)
    _check_positive_int("batch_size", batch_size)
    if check_every is not None:
        _check_positive_int("check_every", check_every)
    x, y = np.asarray(x), _targets_as_moved(np.asarray(y))
    if x.shape[:1] != y.shape[:1]:
        raise ShapeError(f"fit needs x and y with the same number of examples, got shapes {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("fit needs at least one training example")
    dtype = dtype if dtype is not None else _dtype_of(params, backend)
    metric_functions = {_metric_name(m): get_metric(m) for m in metrics}
    if early_stopping is not None and early_stopping.monitor.startswith("val_") and validation_data is None:
        raise ValueError(f"early stopping monitors {early_stopping.monitor!r}, which needs validation_data")
    _check_checkpoint_options(checkpoint_dir, checkpoint_every, keep_checkpoints, resume, seed)

    def objective(params_: Any, batch: tuple[Any, Any]) -> Any:
        inputs, targets = batch
        loss = loss_fn(apply(params_, inputs), targets)
        return loss if regularizer is None else backend.xp.add(loss, regularizer(params_))

    step = make_train_step(objective, optimizer, backend, compile=compile, trainable=trainable)
    opt_state = step.init(params) if opt_state is None else opt_state
    generator = np.random.default_rng(seed)
    progress = Progress(params, opt_state, step=0, batch=0, device_sum=None, read_sum=0.0,
                         epochs=Epochs(0, {"loss": []}, generator.bit_generator.state))
    folder, resumed_from = None, None
    if checkpoint_dir is not None:
        settings = run_settings(x, batch_size, shuffle, seed, epochs, backend.dtype_name(dtype), optimizer,
                                 validation_data, list(metric_functions), early_stopping)
        folder = CheckpointFolder(checkpoint_dir, keep_checkpoints, backend, optimizer, settings)
        restore_best = early_stopping is not None and early_stopping.restore_best
        progress, resumed_from = folder.open(progress, resume, restore_best)
        generator.bit_generator.state = progress.epochs.rng_state
        if resumed_from is not None and verbose:
            print(f"resuming from {resumed_from}: epoch {progress.epochs.index + 1}/{epochs}, step {progress.step}",
                  file=sys.stdout, flush=True)

    loop = _FitLoop(step=step, backend=backend, apply=apply, loss_fn=loss_fn, x=x, y=y, epochs=epochs,
                    batch_size=batch_size, shuffle=shuffle, generator=generator, dtype=dtype,
                    validation_data=validation_data, metric_functions=metric_functions,
                    early_stopping=early_stopping, check_every=check_every, sync_every=sync_every, verbose=verbose,
                    folder=folder, checkpoint_every=checkpoint_every, progress=progress,
                    saved=None if resumed_from is None else (progress, resumed_from))
    try:
        loop.run()
    except KeyboardInterrupt:
        # Saved here, not in a finally: a second Ctrl-C during this save propagates, and the
        # save is atomic, so the previous checkpoint file stands.
        path = loop.save() if folder is not None else None
        if verbose:
            where = f"saved {path}" if path is not None else "nothing saved (no checkpoint_dir)"
            print(f"interrupted after step {loop.progress.step}: {where}", file=sys.stdout, flush=True)
        return loop.result(interrupted=True, checkpoint=path)
    return loop.result(interrupted=False, checkpoint=loop.save() if folder is not None else None)


@dataclass
class _FitLoop:
    """The epochs of one :func:`fit` call. ``progress`` always holds the state after the last
    completed step; ``saved`` pairs the last progress saved with its checkpoint file."""

    step: TrainStep
    backend: Any
    apply: Callable[[Any, Any], Any]
    loss_fn: Callable[[Any, Any], Any]
    x: np.ndarray
    y: np.ndarray
    epochs: int
    batch_size: int
    shuffle: bool
    generator: np.random.Generator
    dtype: Any
    validation_data: tuple[Any, Any] | None
    metric_functions: dict[str, Callable]
    early_stopping: EarlyStopping | None
    check_every: int | None
    sync_every: int
    verbose: int
    folder: CheckpointFolder | None
    checkpoint_every: int | None
    progress: Progress
    saved: tuple[Progress, Path] | None = None
    good: _LastFinite = field(init=False)  # the last state whose losses were all read finite

    def __post_init__(self) -> None:
        progress = self.progress
        self.good = _LastFinite(progress.params, progress.opt_state, progress.epochs.index, progress.step)

    def run(self) -> None:
        while self.progress.epochs.index < self.epochs and not self.progress.epochs.stopped_early:
            self.run_epoch()
            self.end_epoch()
            if self.folder is not None and self.checkpoint_every is None:
                self.save()

    def run_epoch(self) -> None:
        """The steps of the epoch in progress, from its first batch not yet done."""
        progress = self.progress
        xp, count = self.backend.xp, self.x.shape[0]
        bar = _progress_bar(math.ceil(count / self.batch_size), progress.epochs.index, self.epochs, self.verbose,
                            done=progress.batch)
        try:
            for inputs, targets in batches(self.x, self.y, self.batch_size, self.backend, shuffle=self.shuffle,
                                           seed=self.generator, dtype=self.dtype, skip=progress.batch):
                params, opt_state, loss = self.step(progress.params, progress.opt_state, (inputs, targets))
                weighted = xp.multiply(loss, float(inputs.shape[0]))
                device_sum = weighted if progress.device_sum is None else xp.add(progress.device_sum, weighted)
                self.progress = progress = Progress(params, opt_state, progress.step + 1, progress.batch + 1,
                                                     device_sum, progress.read_sum, progress.epochs)
                if self.check_every is not None and progress.step % self.check_every == 0:
                    read = self.read_losses(progress.epochs.index)
                    self.progress = progress = progress._replace(device_sum=None, read_sum=progress.read_sum + read)
                    if bar is not None:
                        bar.set_postfix(loss=f"{progress.read_sum / _seen(bar, self.batch_size, count):.4f}",
                                        refresh=False)
                elif self.sync_every and progress.step % self.sync_every == 0:
                    self.backend.synchronize((progress.params, progress.opt_state, progress.device_sum))
                if self.checkpoint_every is not None and progress.step % self.checkpoint_every == 0:
                    self.save()
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def end_epoch(self) -> None:
        """The epoch's loss and validation scores into the history, early stopping, and the
        start of the next epoch, committed together."""
        progress, epochs = self.progress, self.progress.epochs
        total = progress.read_sum + self.read_losses(epochs.index + 1)
        history = {name: list(values) for name, values in epochs.history.items()}
        history["loss"].append(total / self.x.shape[0])
        if self.validation_data is not None:
            scores = evaluate(self.apply, progress.params, self.loss_fn, self.backend, *self.validation_data,
                              batch_size=max(self.batch_size, 256), metrics=list(self.metric_functions.items()),
                              dtype=self.dtype)
            for name, value in scores.items():
                history.setdefault(f"val_{name}", []).append(value)
        if self.verbose:
            summary = ", ".join(f"{name} {values[-1]:.4f}" for name, values in history.items())
            print(f"epoch {epochs.index + 1}/{self.epochs}: {summary}", file=sys.stdout, flush=True)
        next_epochs = epochs._replace(index=epochs.index + 1, history=history,
                                      rng_state=self.generator.bit_generator.state)
        stopper = self.early_stopping
        if stopper is not None:
            value = history[stopper.monitor][-1]
            if stopper.improved(value, epochs.best_value):
                best_file = epochs.best_file
                if self.folder is not None and stopper.restore_best:
                    best_file = self.folder.save_best(progress.params, progress.opt_state, epochs.index, progress.step)
                next_epochs = next_epochs._replace(best=(progress.params, progress.opt_state, epochs.index),
                                                   best_value=value, waited=0, best_file=best_file)
            else:
                next_epochs = next_epochs._replace(waited=epochs.waited + 1,
                                                   stopped_early=epochs.waited + 1 >= stopper.patience)
        self.progress = Progress(progress.params, progress.opt_state, progress.step, 0, None, 0.0, next_epochs)

    def read_losses(self, epochs_done: int) -> float:
        """Read the losses summed on the device since the last read (0.0 when there are none);
        raise TrainingDiverged when the sum is not finite. ``epochs_done`` is recorded with
        the state that the read proved finite."""
        progress = self.progress
        if progress.device_sum is None:
            return 0.0
        value = _read_finite(self.backend, progress.device_sum, self.good, progress.epochs.index, progress.step,
                             progress.epochs.history)
        self.good = _LastFinite(progress.params, progress.opt_state, epochs_done, progress.step)
        return value

    def save(self) -> Path:
        """Checkpoint the current progress (unless it is the one saved last); return the file."""
        progress = self.progress
        if self.saved is not None and self.saved[0] is progress:
            return self.saved[1]
        # Read, not reset: the sum goes on accumulating on the device exactly as without a
        # checkpoint, so checkpointing changes no number of the run.
        device_sum = None
        if progress.device_sum is not None:
            value = self.read_losses(progress.epochs.index)
            device_sum = (value, self.backend.dtype_name(progress.device_sum.dtype))
        path = self.folder.save(progress, device_sum)
        self.saved = (progress, path)
        return path

    def result(self, interrupted: bool, checkpoint: Path | None) -> FitResult:
        progress, epochs = self.progress, self.progress.epochs
        params, opt_state, best_epoch = progress.params, progress.opt_state, len(epochs.history["loss"]) - 1
        stopper = self.early_stopping
        if not interrupted and stopper is not None and stopper.restore_best and epochs.best is not None:
            params, opt_state, best_epoch = epochs.best
        return FitResult(params, opt_state, epochs.history, best_epoch, epochs.stopped_early, interrupted, checkpoint)


def evaluate(model_or_apply: Any, params: Any, loss_fn: Callable[[Any, Any], Any], backend: Any, x: Any, y: Any,
             *, batch_size: int = 256, metrics: Sequence[Any] = (), dtype: Any = None) -> dict[str, float]:
    """The loss and ``metrics`` of ``params`` on NumPy data ``x`` (N, ...), ``y`` (N, ...).

    Returns ``{"loss": float, "<metric>": float, ...}``. The loss is ``loss_fn`` of the
    predictions for all N examples at once (computed in batches, then joined), so it means
    the same as on one big batch. ``metrics`` are names, callables, or (name, callable) pairs.
    """
    backend = get_backend(backend)
    y = _targets_as_moved(np.asarray(y))
    predictions = predict(model_or_apply, params, backend, x, batch_size=batch_size, dtype=dtype)
    if predictions.shape[:1] != y.shape[:1]:
        raise ShapeError(f"evaluate needs x and y with the same number of examples, got {predictions.shape[0]} and {y.shape[0]}")
    loss = loss_fn(backend.asarray(predictions), backend.asarray(y))
    scores = {"loss": float(backend.to_numpy(loss))}
    for metric in metrics:
        name, function = metric if isinstance(metric, tuple) else (_metric_name(metric), get_metric(metric))
        scores[name] = float(function(predictions, y))
    return scores


def predict(model_or_apply: Any, params: Any, backend: Any, x: Any, *, batch_size: int = 256,
            dtype: Any = None) -> np.ndarray:
    """``apply(params, x)`` for NumPy ``x`` (N, ...), computed in batches of ``batch_size``
    on ``backend`` and returned as one NumPy array (N, ...). ``x`` is cast to ``dtype``
    (default: the parameters' dtype)."""
    backend = get_backend(backend)
    apply = _apply_function(model_or_apply)
    _check_positive_int("batch_size", batch_size)
    x = np.asarray(x)
    dtype = dtype if dtype is not None else _dtype_of(params, backend)
    dtype_name = backend.dtype_name(dtype)
    outputs = [backend.to_numpy(apply(params, backend.asarray(x[start:start + batch_size].astype(dtype_name, copy=False))))
               for start in range(0, x.shape[0], batch_size)]
    if not outputs:
        raise ValueError("predict needs at least one example")
    return np.concatenate(outputs, axis=0)


def _check_checkpoint_options(checkpoint_dir: Any, checkpoint_every: Any, keep_checkpoints: Any, resume: Any,
                              seed: Any) -> None:
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise ValueError("checkpoint_dir must be a folder's path (str or os.PathLike), "
                         f"got {type(checkpoint_dir).__name__}")
    if checkpoint_every is not None:
        _check_positive_int("checkpoint_every", checkpoint_every)
    _check_positive_int("keep_checkpoints", keep_checkpoints)
    if not isinstance(resume, bool):
        raise ValueError(f"resume must be True or False, got {resume!r}")
    if checkpoint_dir is None:
        if resume:
            raise ValueError("resume=True needs checkpoint_dir, the folder holding the checkpoints to resume from")
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every needs checkpoint_dir, the folder to save the checkpoints in")
        return
    if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        raise ValueError(f"checkpoint_dir {os.fspath(checkpoint_dir)!r} is a file, not a folder")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"with a checkpoint_dir, seed must be an int (or None), which a checkpoint records; "
                         f"got {type(seed).__name__}")


# ------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class _LastFinite:
    """Parameters and optimizer state known to come from finite losses only."""

    params: Any
    opt_state: Any
    epoch: int
    step: int


def _read_finite(backend: Any, device_sum: Any, good: _LastFinite, epoch: int, step: int,
                 history: dict[str, list[float]]) -> float:
    """Read a sum of losses from the device; raise TrainingDiverged when it is not finite."""
    value = float(backend.to_numpy(device_sum))
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"the training loss became {value} in epoch {epoch + 1}, between steps {good.step} and {step}; "
            f"the error's .params and .opt_state hold the state after step {good.step}, the last at which every "
            "loss was finite (lower the learning rate, clip gradients, or check the data for NaN)",
            params=good.params, opt_state=good.opt_state, epoch=good.epoch, step=good.step,
            history={name: list(values) for name, values in history.items()},
        )
    return value


def _apply_function(model_or_apply: Any) -> Callable[[Any, Any], Any]:
    apply = getattr(model_or_apply, "apply", model_or_apply)
    if not callable(apply):
        raise TypeError(f"expected a model with apply(params, x) or a function, got {type(model_or_apply).__name__}")
    return apply


def _dtype_of(params: Any, backend: Any) -> str:
    """The dtype name of the first floating-point parameter (float32 when there is none)."""
    for leaf in tree_leaves(params):
        name = backend.dtype_name(leaf.dtype)
        if name.startswith("float"):
            return name
    return "float32"


def _targets_as_moved(y: np.ndarray) -> np.ndarray:
    """Integer labels as int64: torch reads uint8 index arrays as boolean masks."""
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return y.astype(np.int64, copy=False)
    return y


def _metric_name(metric: Any) -> str:
    if isinstance(metric, str):
        return metric
    return getattr(metric, "__name__", type(metric).__name__)


def _check_positive_int(name: str, value: Any, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _progress_bar(total: int, epoch: int, epochs: int, verbose: int, done: int = 0) -> Any:
    """A tqdm bar on standard error, starting at ``done`` steps, or None when verbose is 0,
    stderr is not a terminal, or tqdm is not installed."""
    if not verbose or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False,
                file=sys.stderr)


def _seen(bar: Any, batch_size: int, count: int) -> int:
    """Examples seen so far in this epoch (the bar counts steps; the current one included)."""
    return max(1, min((bar.n + 1) * batch_size, count))
