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

This module imports no framework.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .data import batches
from .errors import PortableDLError, ShapeError
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
    whether early stopping ended training.
    """

    params: Any
    opt_state: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = -1
    stopped_early: bool = False


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

    def objective(params_: Any, batch: tuple[Any, Any]) -> Any:
        inputs, targets = batch
        loss = loss_fn(apply(params_, inputs), targets)
        return loss if regularizer is None else backend.xp.add(loss, regularizer(params_))

    step = make_train_step(objective, optimizer, backend, compile=compile, trainable=trainable)
    opt_state = step.init(params) if opt_state is None else opt_state
    generator = np.random.default_rng(seed)
    history: dict[str, list[float]] = {"loss": []}
    steps_per_epoch = math.ceil(x.shape[0] / batch_size)
    xp = backend.xp
    good = _Checkpoint(params, opt_state, epoch=0, step=0)
    best, best_value, waited, stopped_early = None, None, 0, False
    steps_done = 0

    for epoch in range(epochs):
        bar = _progress_bar(steps_per_epoch, epoch, epochs, verbose)
        epoch_sum, read_sum = None, 0.0  # on the device since the last read; read so far
        try:
            for inputs, targets in batches(x, y, batch_size, backend, shuffle=shuffle, seed=generator, dtype=dtype):
                params, opt_state, loss = step(params, opt_state, (inputs, targets))
                weighted = xp.multiply(loss, float(inputs.shape[0]))
                epoch_sum = weighted if epoch_sum is None else xp.add(epoch_sum, weighted)
                steps_done += 1
                if check_every is not None and steps_done % check_every == 0:
                    read_sum += _read_finite(backend, epoch_sum, good, epoch, steps_done, history)
                    epoch_sum = None
                    good = _Checkpoint(params, opt_state, epoch, steps_done)
                    if bar is not None:
                        bar.set_postfix(loss=f"{read_sum / _seen(bar, batch_size, x.shape[0]):.4f}", refresh=False)
                elif sync_every and steps_done % sync_every == 0:
                    backend.synchronize((params, opt_state, epoch_sum))
                if bar is not None:
                    bar.update(1)
            if epoch_sum is not None:
                read_sum += _read_finite(backend, epoch_sum, good, epoch, steps_done, history)
        finally:
            if bar is not None:
                bar.close()
        good = _Checkpoint(params, opt_state, epoch + 1, steps_done)
        history["loss"].append(read_sum / x.shape[0])
        if validation_data is not None:
            scores = evaluate(apply, params, loss_fn, backend, *validation_data, batch_size=max(batch_size, 256),
                              metrics=list(metric_functions.items()), dtype=dtype)
            for name, value in scores.items():
                history.setdefault(f"val_{name}", []).append(value)
        if verbose:
            summary = ", ".join(f"{name} {values[-1]:.4f}" for name, values in history.items())
            print(f"epoch {epoch + 1}/{epochs}: {summary}", file=sys.stdout, flush=True)
        if early_stopping is not None:
            value = history[early_stopping.monitor][-1]
            if early_stopping.improved(value, best_value):
                best, best_value, waited = (params, opt_state, epoch), value, 0
            else:
                waited += 1
                if waited >= early_stopping.patience:
                    stopped_early = True
                    break

    best_epoch = len(history["loss"]) - 1
    if early_stopping is not None and early_stopping.restore_best and best is not None:
        params, opt_state, best_epoch = best
    return FitResult(params, opt_state, history, best_epoch, stopped_early)


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


# ------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class _Checkpoint:
    """Parameters and optimizer state known to come from finite losses only."""

    params: Any
    opt_state: Any
    epoch: int
    step: int


def _read_finite(backend: Any, device_sum: Any, good: _Checkpoint, epoch: int, step: int,
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


def _progress_bar(total: int, epoch: int, epochs: int, verbose: int) -> Any:
    """A tqdm bar on standard error, or None when verbose is 0, stderr is not a terminal,
    or tqdm is not installed."""
    if not verbose or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False, file=sys.stderr)


def _seen(bar: Any, batch_size: int, count: int) -> int:
    """Examples seen so far in this epoch (the bar counts steps; the current one included)."""
    return max(1, min((bar.n + 1) * batch_size, count))
