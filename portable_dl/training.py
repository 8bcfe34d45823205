"""Training: the loop around one compiled step.

:func:`fit` runs epochs of steps (:mod:`portable_dl.train_step`) over seeded, shuffled
mini-batches, with validation, metrics, early stopping and a progress bar, configured by one
:class:`~portable_dl.fit_config.FitConfig` built from its keyword arguments. It keeps the
device busy: the losses are summed on the device and read back once per epoch (or every
``check_every`` steps), because a read is a host synchronization and at small batch sizes
the fixed cost per step is the run time.

Before the first step the data is checked on the host (:mod:`portable_dl.fit_data`): a NaN
or an infinity in the inputs or targets, or a class label outside the model's outputs,
raises ValueError naming the array and its first bad row.

A loss that becomes NaN or infinite, or parameters that do (a NaN gradient under a finite
loss), stop :func:`fit` with :class:`TrainingDiverged`, which carries the parameters and
optimizer state of the last check at which the losses and parameters were all finite;
training never returns silently with diverged parameters. The parameters' finiteness is
computed on the device and added to the loss sum just before it is read, so both come back
in one read, at no extra synchronization.

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

import dataclasses
import functools
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PortableDLError, ShapeError
from .fit_batches import Call, DeviceData, HostData, epoch_calls, placed_data
from .fit_checkpoints import CheckpointFolder, Epochs, Progress, run_settings
from .fit_config import EarlyStopping, FitConfig, int_at_least, metric_name
from .fit_data import prepared_data, targets_as_moved
from .metrics import get_metric
from .registry import backend as get_backend
from .registry import using
from .train_step import TrainStep, make_train_step
from .tree import tree_leaves

__all__ = [
    "TrainingDiverged",
    "TrainStep",
    "make_train_step",
    "EarlyStopping",
    "FitConfig",
    "FitResult",
    "fit",
    "evaluate",
    "predict",
]


class TrainingDiverged(PortableDLError, FloatingPointError):
    """The training loss, or a parameter the optimizer updated, became NaN or infinite.

    ``params`` and ``opt_state`` are those of the last check at which every loss and every
    updated parameter so far was finite (``step`` steps into training, ``epoch`` full
    epochs done); ``history`` is the history of the completed epochs. Resume from them with
    a smaller learning rate.
    """

    def __init__(
        self, message: str, *, params: Any, opt_state: Any, epoch: int, step: int, history: dict[str, list[float]]
    ):
        super().__init__(message)
        self.params = params
        self.opt_state = opt_state
        self.epoch = epoch
        self.step = step
        self.history = history


# ------------------------------------------------------------------ the loop
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
    opt_state: Any = None,
    **settings: Any,
) -> FitResult:
    """Train ``params`` on NumPy data ``x`` (N, ...) and ``y`` (N, ...) for ``epochs`` epochs.

    ``model_or_apply`` is a model (anything with ``apply(params, x)``) or the function
    itself; ``loss_fn(predictions, targets) -> scalar`` is a loss such as
    ``losses.cross_entropy``; ``regularizer(params) -> scalar`` (``l2_penalty`` with its
    ``lam`` bound) is added to it. Batches are shuffled each epoch by one
    ``numpy.random.default_rng(seed)`` stream, so the same seed gives the same history.
    ``opt_state``: state to resume from (default: a fresh one). The keyword settings are
    those of :class:`~portable_dl.fit_config.FitConfig` (the signature lists them with their
    defaults); a bad value raises ValueError naming it, before anything is trained.

    Data, checked and prepared on the host before the first step, the same on every backend:

    - ``x`` is cast to ``dtype`` (default: the parameters' floating dtype); floating targets
      ``y`` are cast to it too (float64 NumPy targets train a float32 model in float32);
      integer targets are moved as int64 (some frameworks treat uint8 indices as masks).
    - A NaN or infinite value in ``x``, ``y`` or ``validation_data`` raises ValueError naming
      the array (``"x"``, ``"y"``, ``"validation x"``, ``"validation y"``) and its first bad
      row: such data would silently poison the parameters (relu maps a NaN input to 0, so the
      loss stays finite while the first layer's gradient is NaN).
    - Integer targets of shape (N,) with a model whose output has shape (N, C) are class
      labels: fit applies the model (eagerly) to the first example to learn C, and labels
      outside ``[0, C)`` (training or validation) raise ValueError naming the first one.

    ``validation_data=(x_val, y_val)`` is evaluated after every epoch with the loss and
    ``metrics`` (names from :mod:`portable_dl.metrics` or ``f(predictions, targets)``).
    ``early_stopping``: see :class:`EarlyStopping`. ``trainable``: a mask from
    ``nn.trainable_mask``.

    The losses are read from the device every ``check_every`` steps (default: once per
    epoch); between reads the arrays are synchronized every ``sync_every`` steps, which
    bounds the graph a lazy framework (MLX) builds. A NaN or infinite loss, or a NaN or
    infinite parameter (a NaN gradient under a finite loss), raises :class:`TrainingDiverged`
    carrying the parameters of the last good read: each read adds ``sum(param * 0)`` over the
    parameters (0, or NaN) to the loss sum on the device, so it costs no extra synchronization.
    ``verbose=0`` is silent; ``verbose=1`` prints a line per epoch and shows a progress bar
    when standard error is a terminal.

    Fewer calls, fewer copies (neither changes a number: the same batches in the same order,
    the same updates, so neither is recorded for resuming, and a run saved with one value
    resumes with another):

    - ``steps_per_call=k`` (int >= 1, default 1) stacks k consecutive batches of the
      shuffled order, ``(k, b, ...)``, into one call of a k-step function
      (``make_train_step(..., steps_per_call=k)``), which pays a compiled call's fixed cost
      once per k steps. The rest of each epoch (fewer than k full batches left, and the
      short last batch) runs on the single step, which shares the optimizer state. Losses
      are read, the device synchronized and checkpoints written between calls: each at the
      first call boundary at or after a multiple of ``check_every``, ``sync_every`` or
      ``checkpoint_every`` steps. Steps are still counted one by one (``step-<steps>``
      files, :class:`TrainingDiverged`'s ``step``), and the progress bar advances by k.
    - ``data_on_device`` (``"auto"``, True or False): with True, ``x`` and ``y`` are moved to
      the device once per fit call and the rows are gathered there with ``xp.take`` by the
      same seeded permutation (only the row indices cross); with False, the batches are cut
      in NumPy and copied to the device. Either way the batches of several consecutive
      calls are cut and moved at once and split with ``xp.unstack``
      (:func:`portable_dl.fit_batches.chunk_calls`): the same batches, fewer fixed costs
      (JAX's move of a small array costs more than a step at batch 10). ``"auto"`` (default)
      moves them to a device other than the CPU when ``x`` (in ``dtype``) and ``y`` take at
      most 1 GiB together (:func:`portable_dl.fit_batches.moves_data`); on the CPU the data
      already is in the memory the step reads. Validation data stays on the host.

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
      Resuming needs the same number of examples and optimizer (name and hyperparameters),
      the same parameter and optimizer-state shapes, and the same settings that
      :class:`~portable_dl.fit_config.FitConfig` marks for resuming (``epochs``,
      ``batch_size``, validation set size, ``metrics``, ``shuffle``, ``seed``,
      ``early_stopping``, ``dtype``): otherwise :class:`~portable_dl.errors.CheckpointError`
      names what differs, and nothing is changed.

    Data parallel (``world``, a :class:`~portable_dl.distributed.World` of several processes,
    each calling fit with the same data, seed and settings): ``batch_size`` is per process;
    each global batch of ``world.size * batch_size`` examples of the one shuffled order is cut
    into contiguous slices by rank, and the step averages the gradients in one collective, so
    the ranks follow the one-process run with the global batch (to rounding). The parameters
    (and a given ``opt_state``) are checked to have one shape on every rank and broadcast from
    rank 0; validation is split over the ranks and gathered; only rank 0 prints and writes
    checkpoints (the others wait), which record the global batch size, so a run resumes on
    any number of processes with the same global batch. See :mod:`portable_dl.distributed`.
    Not yet with ``steps_per_call`` > 1 or ``data_on_device=True`` (ValueError); the data
    stays on the host.

    A KeyboardInterrupt (Ctrl-C) during training stops it after the last completed step:
    with a ``checkpoint_dir`` the state of that step is saved (resume continues exactly
    there), and fit returns a :class:`FitResult` with ``interrupted=True`` holding that
    step's params and optimizer state and the history of the completed epochs; without a
    ``checkpoint_dir`` it returns the same, saving nothing. A second Ctrl-C while that
    checkpoint is written aborts fit (the previous checkpoint file stands).
    """
    unknown = sorted(set(settings) - set(FitConfig.names()))
    if unknown:
        raise TypeError(
            f"fit() got unexpected keyword arguments {', '.join(unknown)}; its settings are "
            f"{', '.join(FitConfig.names())} (and opt_state)"
        )
    config = FitConfig(epochs=epochs, batch_size=batch_size, **settings)
    backend = get_backend(backend)
    apply = _apply_function(model_or_apply)
    x = np.asarray(x)
    dtype_name = backend.dtype_name(config.dtype if config.dtype is not None else _dtype_of(params, backend))
    config = dataclasses.replace(config, dtype=dtype_name)
    x, y, validation = prepared_data(apply, params, backend, x, np.asarray(y), config.validation_data, dtype_name)
    world = config.world if config.world is not None and config.world.size > 1 else None
    run_config = config
    if world is not None:
        from .distributed import fitting

        if world.backend.name != backend.name:
            raise ValueError(f"fit on the {backend.name} backend was given a world of the {world.backend.name} backend")
        params, opt_state = fitting.start(world, params, opt_state)
        # Checkpoints record the global batch, so that a run resumes on any number of ranks.
        run_config = dataclasses.replace(config, batch_size=config.batch_size * world.size)
        if world.rank != 0:
            config = run_config = dataclasses.replace(run_config, verbose=0)

    def objective(params_: Any, batch: tuple[Any, Any]) -> Any:
        inputs, targets = batch
        loss = loss_fn(apply(params_, inputs), targets)
        return loss if config.regularizer is None else backend.xp.add(loss, config.regularizer(params_))

    step = make_train_step(
        objective,
        optimizer,
        backend,
        compile=config.compile,
        trainable=config.trainable,
        world=world,
        precision=config.precision,
    )
    # k steps in one call, from the same objective and optimizer: the single step above runs
    # each epoch's remainder, and both share the optimizer state (MultiStep.init is step.init).
    multi_step = None
    if config.steps_per_call > 1:
        multi_step = make_train_step(
            objective,
            optimizer,
            backend,
            compile=config.compile,
            trainable=config.trainable,
            steps_per_call=config.steps_per_call,
            precision=config.precision,
        )
    opt_state = step.init(params) if opt_state is None else opt_state
    generator = np.random.default_rng(config.seed)
    progress = Progress(
        params,
        opt_state,
        step=0,
        batch=0,
        device_sum=None,
        read_sum=0.0,
        epochs=Epochs(0, {"loss": []}, generator.bit_generator.state),
    )
    folder, resumed_from = None, None
    if config.checkpoint_dir is not None:
        folder_args = (
            config.checkpoint_dir,
            config.keep_checkpoints,
            backend,
            optimizer,
            run_settings(run_config, x.shape[0], optimizer),
        )
        folder = CheckpointFolder(*folder_args) if world is None else fitting.RankZeroFolder(world, *folder_args)
        restore_best = config.early_stopping is not None and config.early_stopping.restore_best
        progress, resumed_from = folder.open(progress, config.resume, restore_best)
        generator.bit_generator.state = progress.epochs.rng_state
        if resumed_from is not None and config.verbose:
            print(
                f"resuming from {resumed_from}: epoch {progress.epochs.index + 1}/{config.epochs}, "
                f"step {progress.step}",
                file=sys.stdout,
                flush=True,
            )

    # Data parallel: each rank cuts its slice on the host (distributed.fitting.rank_batches).
    data = placed_data(x, y, backend, dtype_name, config.data_on_device) if world is None else None
    loop = _FitLoop(
        config=run_config,
        world=world,
        step=step,
        multi_step=multi_step,
        data=data,
        backend=backend,
        apply=apply,
        loss_fn=loss_fn,
        x=x,
        y=y,
        validation=validation,
        generator=generator,
        folder=folder,
        progress=progress,
        saved=None if resumed_from is None else (progress, resumed_from),
    )
    try:
        try:
            # fit's backend current for the whole loop: each compiled call then skips entering it
            # (a few µs a step, at batch 10 a few per cent).
            with using(backend):
                loop.run()
        except TrainingDiverged as error:
            # A NaN that a lost rank caused (a partial sum, see distributed.step) is a lost rank.
            if world is not None and world.lost_ranks(wait=3.0):
                raise world.failure(error) from error
            raise
    except KeyboardInterrupt:
        # Saved here, not in a finally: a second Ctrl-C during this save propagates, and the
        # save is atomic, so the previous checkpoint file stands.
        path = loop.save() if folder is not None else None
        if config.verbose:
            where = f"saved {path}" if path is not None else "nothing saved (no checkpoint_dir)"
            print(f"interrupted after step {loop.progress.step}: {where}", file=sys.stdout, flush=True)
        return loop.result(interrupted=True, checkpoint=path)
    return loop.result(interrupted=False, checkpoint=loop.save() if folder is not None else None)


# help(fit) and IDEs show every setting with its default: the signature is built from FitConfig,
# so that a new setting is declared in one place.
fit.__signature__ = inspect.signature(fit).replace(
    parameters=[
        *(p for p in inspect.signature(fit).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD),
        *(
            inspect.Parameter(
                setting.name, inspect.Parameter.KEYWORD_ONLY, default=setting.default, annotation=setting.type
            )
            for setting in dataclasses.fields(FitConfig)
            if setting.name not in ("epochs", "batch_size")
        ),
    ]
)


@dataclass
class _FitLoop:
    """The epochs of one :func:`fit` call, as ``config`` says. ``progress`` always holds the
    state after the last completed step; ``saved`` pairs the last progress saved with its
    checkpoint file."""

    config: FitConfig
    step: TrainStep
    multi_step: TrainStep | None  # config.steps_per_call single steps in one call, or None when that is 1
    data: HostData | DeviceData | None  # where the batches are cut (fit_batches.placed_data); None with a world
    backend: Any
    apply: Callable[[Any, Any], Any]
    loss_fn: Callable[[Any, Any], Any]
    x: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None  # as prepared from config.validation_data
    generator: np.random.Generator
    folder: CheckpointFolder | None
    progress: Progress
    saved: tuple[Progress, Path] | None = None
    world: Any = None  # a World of several processes; config.batch_size is then the global batch
    good: _LastFinite = field(init=False)  # the last state whose losses and parameters were all read finite
    weights: dict[tuple[int, Any], Any] = field(default_factory=dict)  # examples per batch on the device, by dtype

    def __post_init__(self) -> None:
        progress = self.progress
        self.good = _LastFinite(progress.params, progress.opt_state, progress.epochs.index, progress.step)

    def run(self) -> None:
        while self.progress.epochs.index < self.config.epochs and not self.progress.epochs.stopped_early:
            self.run_epoch()
            self.end_epoch()
            if self.folder is not None and self.config.checkpoint_every is None:
                self.save()

    def run_epoch(self) -> None:
        """The steps of the epoch in progress, from its first batch not yet done, one call at
        a time (k stacked batches with ``steps_per_call=k``, else one). Reads, syncs and
        checkpoints happen between calls: each at the first call boundary at or after a
        multiple of its ``*_every`` in steps, so a call of k steps that passes one does it
        once, right after the call (with k = 1, exactly at the multiple)."""
        config, progress = self.config, self.progress
        count = self.x.shape[0]
        bar = _progress_bar(
            math.ceil(count / config.batch_size),
            progress.epochs.index,
            config.epochs,
            config.verbose,
            done=progress.batch,
        )
        try:
            for call, share in self.calls(progress.batch):
                params, opt_state, device_sum = self.run_call(call, share)
                before = progress.step
                self.progress = progress = Progress(
                    params,
                    opt_state,
                    progress.step + call.steps,
                    progress.batch + call.steps,
                    device_sum,
                    progress.read_sum,
                    progress.epochs,
                )
                if _passed(before, progress.step, config.check_every):
                    read = self.read_losses(progress.epochs.index)
                    self.progress = progress = progress._replace(device_sum=None, read_sum=progress.read_sum + read)
                    if bar is not None:
                        seen = max(1, min((bar.n + call.steps) * config.batch_size, count))
                        bar.set_postfix(loss=f"{progress.read_sum / seen:.4f}", refresh=False)
                elif config.sync_every and _passed(before, progress.step, config.sync_every):
                    self.backend.synchronize((progress.params, progress.opt_state, progress.device_sum))
                if _passed(before, progress.step, config.checkpoint_every):
                    self.save()
                if bar is not None:
                    bar.update(call.steps)
        finally:
            if bar is not None:
                bar.close()

    def run_call(self, call: Call, share: Any) -> tuple[Any, Any, Any]:
        """``(params, opt_state, loss sum)`` after ``call``: its steps from the current progress,
        and the device's sum of loss x batch size extended by each of its batches, in order."""
        progress, xp = self.progress, self.backend.xp
        if call.steps > 1:
            params, opt_state, losses = self.multi_step(progress.params, progress.opt_state, call.batch)
            weighted = xp.multiply(losses, self.examples(call.examples, losses))  # (k,): each batch holds as many
            return params, opt_state, _summed_in_order(progress.device_sum, weighted, xp)
        if share is None:
            params, opt_state, loss = self.step(progress.params, progress.opt_state, call.batch)
        else:
            params, opt_state, loss = self.step(progress.params, progress.opt_state, call.batch, share)
        weighted = xp.multiply(loss, self.examples(call.examples, loss))
        return params, opt_state, weighted if progress.device_sum is None else xp.add(progress.device_sum, weighted)

    def examples(self, count: int, loss: Any) -> Any:
        """``count`` as a 0-d array of ``loss``'s dtype on the device, made once per fit call:
        the product with it is the one with the Python number (the same float, the same
        rounding), without converting that number at every step (TensorFlow: 40 µs a step)."""
        key = (count, loss.dtype)  # the framework's dtype object: hashable, and cheaper than its name
        weight = self.weights.get(key)
        if weight is None:
            weight = self.weights[key] = self.backend.asarray(float(count), self.backend.dtype_name(loss.dtype))
        return weight

    def calls(self, skip: int) -> Any:
        """``(call, this rank's share of the global batch or None)`` from the ``skip``-th batch
        of the epoch in progress (:func:`~portable_dl.fit_batches.epoch_calls`)."""
        config = self.config
        if self.world is not None:
            from .distributed.fitting import rank_batches

            for batch, examples, share in rank_batches(
                self.x,
                self.y,
                config.batch_size // self.world.size,
                self.world,
                self.backend,
                shuffle=config.shuffle,
                generator=self.generator,
                dtype=config.dtype,
                skip=skip,
            ):
                yield Call(batch, 1, examples), share
            return
        for call in epoch_calls(
            self.data,
            config.batch_size,
            config.steps_per_call,
            shuffle=config.shuffle,
            generator=self.generator,
            skip=skip,
        ):
            yield call, None

    def end_epoch(self) -> None:
        """The epoch's loss and validation scores into the history, early stopping, and the
        start of the next epoch, committed together."""
        config, progress, epochs = self.config, self.progress, self.progress.epochs
        total = progress.read_sum + self.read_losses(epochs.index + 1)
        history = {name: list(values) for name, values in epochs.history.items()}
        history["loss"].append(total / self.x.shape[0])
        if self.validation is not None:
            score = evaluate
            if self.world is not None:
                from .distributed.fitting import evaluate_sharded

                score = functools.partial(evaluate_sharded, self.world)
            scores = score(
                self.apply,
                progress.params,
                self.loss_fn,
                self.backend,
                *self.validation,
                batch_size=max(config.batch_size, 256),
                metrics=list(config.metric_functions().items()),
                dtype=config.dtype,
            )
            for name, value in scores.items():
                history.setdefault(f"val_{name}", []).append(value)
        if config.verbose:
            summary = ", ".join(f"{name} {values[-1]:.4f}" for name, values in history.items())
            print(f"epoch {epochs.index + 1}/{config.epochs}: {summary}", file=sys.stdout, flush=True)
        next_epochs = epochs._replace(
            index=epochs.index + 1, history=history, rng_state=self.generator.bit_generator.state
        )
        stopper = config.early_stopping
        if stopper is not None:
            value = history[stopper.monitor][-1]
            if stopper.improved(value, epochs.best_value):
                best_file = epochs.best_file
                if self.folder is not None and stopper.restore_best:
                    best_file = self.folder.save_best(progress.params, progress.opt_state, epochs.index, progress.step)
                next_epochs = next_epochs._replace(
                    best=(progress.params, progress.opt_state, epochs.index),
                    best_value=value,
                    waited=0,
                    best_file=best_file,
                )
            else:
                next_epochs = next_epochs._replace(
                    waited=epochs.waited + 1, stopped_early=epochs.waited + 1 >= stopper.patience
                )
        self.progress = Progress(progress.params, progress.opt_state, progress.step, 0, None, 0.0, next_epochs)

    def read_losses(self, epochs_done: int) -> float:
        """Read the losses summed on the device since the last read (0.0 when there are none);
        raise TrainingDiverged when the sum is not finite. ``epochs_done`` is recorded with
        the state that the read proved finite."""
        progress = self.progress
        if progress.device_sum is None:
            return 0.0
        # The parameters' finiteness rides on the read of the losses: one host transfer for both.
        xp = self.backend.xp
        checked_sum = xp.add(progress.device_sum, _zero_unless_finite(progress.params, progress.device_sum, xp))
        value = _read_finite(
            self.backend, checked_sum, self.good, progress.epochs.index, progress.step, progress.epochs.history
        )
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
        stopper = self.config.early_stopping
        if not interrupted and stopper is not None and stopper.restore_best and epochs.best is not None:
            params, opt_state, best_epoch = epochs.best
        return FitResult(params, opt_state, epochs.history, best_epoch, epochs.stopped_early, interrupted, checkpoint)


def evaluate(
    model_or_apply: Any,
    params: Any,
    loss_fn: Callable[[Any, Any], Any],
    backend: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int = 256,
    metrics: Sequence[Any] = (),
    dtype: Any = None,
) -> dict[str, float]:
    """The loss and ``metrics`` of ``params`` on NumPy data ``x`` (N, ...), ``y`` (N, ...).

    Returns ``{"loss": float, "<metric>": float, ...}``. The loss is ``loss_fn`` of the
    predictions for all N examples at once (computed in batches, then joined), so it means
    the same as on one big batch. ``metrics`` are names, callables, or (name, callable) pairs.
    ``x`` and floating targets ``y`` are cast to ``dtype`` (default: the parameters' floating
    dtype), integer targets moved as int64, as in :func:`fit`.
    """
    backend = get_backend(backend)
    dtype_name = backend.dtype_name(dtype if dtype is not None else _dtype_of(params, backend))
    y = targets_as_moved(np.asarray(y), dtype_name)
    predictions = predict(model_or_apply, params, backend, x, batch_size=batch_size, dtype=dtype_name)
    if predictions.shape[:1] != y.shape[:1]:
        raise ShapeError(
            f"evaluate needs x and y with the same number of examples, got {predictions.shape[0]} and {y.shape[0]}"
        )
    loss = loss_fn(backend.asarray(predictions), backend.asarray(y))
    scores = {"loss": float(backend.to_numpy(loss))}
    for metric in metrics:
        name, function = metric if isinstance(metric, tuple) else (metric_name(metric), get_metric(metric))
        scores[name] = float(function(predictions, y))
    return scores


def predict(
    model_or_apply: Any, params: Any, backend: Any, x: Any, *, batch_size: int = 256, dtype: Any = None
) -> np.ndarray:
    """``apply(params, x)`` for NumPy ``x`` (N, ...), computed in batches of ``batch_size``
    on ``backend`` and returned as one NumPy array (N, ...). ``x`` is cast to ``dtype``
    (default: the parameters' dtype)."""
    backend = get_backend(backend)
    apply = _apply_function(model_or_apply)
    int_at_least(1)("batch_size", batch_size)
    x = np.asarray(x)
    dtype = dtype if dtype is not None else _dtype_of(params, backend)
    dtype_name = backend.dtype_name(dtype)
    outputs = [
        backend.to_numpy(apply(params, backend.asarray(x[start : start + batch_size].astype(dtype_name, copy=False))))
        for start in range(0, x.shape[0], batch_size)
    ]
    if not outputs:
        raise ValueError("predict needs at least one example")
    return np.concatenate(outputs, axis=0)


# ------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class _LastFinite:
    """Parameters and optimizer state known to come from finite losses and finite updates only."""

    params: Any
    opt_state: Any
    epoch: int
    step: int


def _read_finite(
    backend: Any, device_sum: Any, good: _LastFinite, epoch: int, step: int, history: dict[str, list[float]]
) -> float:
    """Read a sum of losses (with :func:`_zero_unless_finite` of the parameters added) from the
    device; raise TrainingDiverged when it is not finite."""
    value = float(backend.to_numpy(device_sum))
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"the training loss or an updated parameter became {value} in epoch {epoch + 1}, between steps "
            f"{good.step} and {step}; the error's .params and .opt_state hold the state after step {good.step}, "
            "the last at which every loss and parameter was finite (lower the learning rate, clip gradients, or "
            "look for an operation whose gradient is NaN, such as sqrt at 0)",
            params=good.params,
            opt_state=good.opt_state,
            epoch=good.epoch,
            step=good.step,
            history={name: list(values) for name, values in history.items()},
        )
    return value


def _passed(before: int, after: int, every: int | None) -> bool:
    """Whether the steps ``before + 1 .. after`` of one call include a multiple of ``every``
    (never when ``every`` is None): with one step per call, whether ``after`` is one."""
    return every is not None and after // every > before // every


def _summed_in_order(total: Any, terms: Any, xp: Any) -> Any:
    """``total + terms[0] + terms[1] + ...`` on the device, added one at a time, left to right
    (``total`` None starts from ``terms[0]``): the same additions, in the same order, as k
    single steps make, so the epoch loss does not depend on k.

    Not ``cumulative_sum``: torch's accumulates float32 in float64 and XLA's is a parallel
    scan, so its last element is not the left-to-right float32 sum (the epoch loss of a
    k = 4 run then differed from k = 1's in the 7th digit)."""
    for term in xp.unstack(terms):
        total = term if total is None else xp.add(total, term)
    return total


def _zero_unless_finite(params: Any, like: Any, xp: Any) -> Any:
    """On the device: 0 in ``like``'s dtype when every floating leaf of ``params`` is finite,
    else NaN (``inf * 0`` and ``nan * 0`` are NaN, and NaN survives a sum).

    Why the parameters, and only when the losses are read: relu maps a NaN to 0, so a NaN
    gradient can hide under a finite loss and only the updated parameters show it; a NaN
    parameter stays NaN in every later update, so parameters found finite at a read were
    finite at every step before it, and every state fit returns, saves or keeps as the last
    good one is checked. Checking once per read instead of in every step costs nothing per
    step (inside the step it cost eager backends 6-25% per step). ``sum(leaf * 0)`` rather
    than a sum of squares, which large finite values could overflow to inf."""
    total = None
    for leaf in tree_leaves(params):
        if not xp.isdtype(leaf.dtype, "real floating"):
            continue
        term = xp.sum(xp.multiply(leaf, 0.0))
        if term.dtype != like.dtype:
            term = xp.astype(term, like.dtype)
        total = term if total is None else xp.add(total, term)
    return xp.multiply(like, 0.0) if total is None else total


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


def _progress_bar(total: int, epoch: int, epochs: int, verbose: int, done: int = 0) -> Any:
    """A tqdm bar on standard error, starting at ``done`` steps, or None when verbose is 0 or
    stderr is not a terminal. (tqdm is a dependency; imported here, where a bar is drawn.)"""
    if not verbose or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False, file=sys.stderr
    )
