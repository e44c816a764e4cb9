"""The one fit loop behind every trainer: epochs, progress, validation, early stopping, history.

A family supplies a *trainer* (its model, optimiser(s) and data) and the loop drives it::

    class MyTrainer(BatchTrainer):          # or any object with the `Trainer` methods
        def __init__(...): self.model = ...; self.optimizer = ...
        def batches(self): ...              # this epoch's mini-batches, in order
        def step(self, batch) -> dict:      # one update; the family's own hook: a CD chain
            ...                             # step, a GAN's two optimisers, an autograd step
            return {"loss": float(loss)}

    result = fit(MyTrainer(...), options, epochs=100, name="my-model",
                 validation=Validation(score=lambda: val_ndcg(trainer.model), mode="max",
                                       every=5, patience=4, name="val_ndcg@10"))
    result.history.best_epoch, result.history.epochs_run, result.history.records

API (stable; other trainers are ported to it):

- ``Trainer`` (protocol): ``train_epoch() -> dict[str, float]``, ``state_dict()``,
  ``load_state_dict(state)``. ``BatchTrainer`` implements ``train_epoch`` as the mean of
  ``step(batch)`` over ``batches()``, plus ``end_epoch(metrics)`` for epoch-level figures, and
  snapshots ``self.model`` (override ``state_dict``/``load_state_dict`` for several modules).
- ``Validation(score, mode="max"|"min", every=1, patience=None, min_delta=0.0,
  min_epochs=0, name=..., restore_best=True)``: ``score()`` measures the current model on a
  validation slice (the trainer's model is in eval mode then; train mode is the trainer's own
  business); ``patience`` counts validations without an improvement larger than ``min_delta``
  before the loop stops (None: run to ``epochs``; never before ``min_epochs``); with
  ``restore_best`` the best validated state comes back at the end (a deep copy of
  ``state_dict()``).
- ``fit(trainer, options, *, epochs=None, name, validation=None, postfix=None) -> FitResult``:
  ``epochs`` (default ``options.epochs``) is the ceiling. Each epoch's metrics (plus the
  validation figure under ``validation.name``) are logged and passed to ``options.on_epoch``
  as an ``EpochReport`` (stage = ``name``; ``epochs`` the ceiling, or the epoch itself when the
  stage stops early there): that is how jobs record their progress. A tqdm bar
  shows ``postfix`` (default: the first metric) when ``options.progress``.
- ``FitResult``: ``trainer`` and ``history``; ``Fitted[M]``: ``model`` and ``history`` (what a
  family's ``fit_*`` returns; ``train_seconds``/``best_epoch``/``best_score`` shortcuts);
  ``FitHistory``: ``stage``, ``records`` (one dict per
  epoch), ``epochs_run``, ``max_epochs``, ``best_epoch`` (the last epoch without validation),
  ``best_score``, ``metric``, ``mode``, ``stopped_early``, ``train_seconds``, ``as_dict()``.
- ``epoch_order(n, rng)`` and ``mini_batches(order, batch_size)``: the shuffled index batches
  most trainers iterate.
"""

from __future__ import annotations

import copy
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np
from tqdm.auto import tqdm

from ml.training.base import TrainingOptions, log_epoch

Mode = Literal["max", "min"]
MODES: tuple[str, ...] = ("max", "min")


class Trainer(Protocol):
    """What the loop drives: one epoch at a time, and a state it can snapshot and restore."""

    def train_epoch(self) -> dict[str, float]: ...

    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


class BatchTrainer(ABC):
    """A trainer as mini-batch steps: the family writes ``batches`` and ``step`` only.

    Subclasses set ``self.model`` (snapshotted for the best epoch); ``step`` may run any number
    of optimisers (a GAN's discriminator then generator) or a manual update (CD).
    """

    model: Any

    @abstractmethod
    def batches(self) -> Iterable[Any]:
        """This epoch's mini-batches, in training order."""

    @abstractmethod
    def step(self, batch: Any) -> Mapping[str, float]:
        """One update on ``batch``; its figures (averaged over the epoch by the loop)."""

    def start_epoch(self) -> None:
        """Before the first batch of an epoch (default: the model in train mode)."""
        if hasattr(self.model, "train"):
            self.model.train()

    def end_epoch(self, metrics: dict[str, float]) -> None:
        """After the last batch: add epoch-level figures to ``metrics`` in place."""
        return None

    def train_epoch(self) -> dict[str, float]:
        self.start_epoch()
        totals: dict[str, float] = {}
        steps = 0
        for batch in self.batches():
            for name, value in self.step(batch).items():
                totals[name] = totals.get(name, 0.0) + float(value)
            steps += 1
        if steps == 0:
            raise ValueError("an epoch without mini-batches: no training data")
        metrics = {name: total / steps for name, total in totals.items()}
        self.end_epoch(metrics)
        return metrics

    def state_dict(self) -> Mapping[str, Any]:
        return self.model.state_dict()  # type: ignore[no-any-return]

    def load_state_dict(self, state: Mapping[str, Any]) -> Any:
        return self.model.load_state_dict(state)


@dataclass(frozen=True)
class Validation:
    """A figure measured on a validation slice, its direction and the early-stopping rule."""

    score: Callable[[], float]
    mode: Mode = "max"
    every: int = 1  # validate every `every` epochs (and always at the last planned epoch)
    patience: int | None = None  # validations without improvement before stopping; None: never
    min_delta: float = 0.0  # an improvement must exceed this
    min_epochs: int = 0  # never stop before this epoch (early validation figures are noisy)
    name: str = "validation"
    restore_best: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")

    def improves(self, score: float, best: float | None) -> bool:
        if math.isnan(score):
            return False
        if best is None:
            return True
        gain = score - best if self.mode == "max" else best - score
        return gain > self.min_delta


@dataclass
class FitHistory:
    """What one run of the loop did, epoch by epoch (uniform across families)."""

    stage: str
    max_epochs: int
    records: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0  # the epoch whose state the trainer holds at the end
    best_score: float | None = None
    metric: str | None = None  # the validation figure's name, None without validation
    mode: str | None = None
    stopped_early: bool = False
    train_seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.records)

    def last(self, name: str) -> float:
        """The last epoch's ``name`` figure."""
        return self.records[-1][name]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "max_epochs": self.max_epochs,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "metric": self.metric,
            "mode": self.mode,
            "stopped_early": self.stopped_early,
            "train_seconds": round(self.train_seconds, 3),
            "records": self.records,
        }


T = TypeVar("T")
M = TypeVar("M")


@dataclass
class FitResult(Generic[T]):
    trainer: T
    history: FitHistory


@dataclass
class Fitted(Generic[M]):
    """What a family's ``fit_*`` returns: the trained model (eval mode) and the loop's history."""

    model: M
    history: FitHistory

    @property
    def train_seconds(self) -> float:
        return self.history.train_seconds

    @property
    def best_epoch(self) -> int:
        return self.history.best_epoch

    @property
    def best_score(self) -> float | None:
        return self.history.best_score


def fit(
    trainer: T,
    options: TrainingOptions,
    *,
    epochs: int | None = None,
    name: str = "model",
    validation: Validation | None = None,
    postfix: str | None = None,
) -> FitResult[T]:
    """Train ``trainer`` (a ``Trainer``) for up to ``epochs``; see the module docstring."""
    runner: Trainer = trainer  # type: ignore[assignment]
    planned = options.epochs if epochs is None else epochs
    if planned <= 0:
        raise ValueError(f"epochs must be positive, got {planned}")
    history = FitHistory(
        stage=name,
        max_epochs=planned,
        metric=validation.name if validation else None,
        mode=validation.mode if validation else None,
    )
    best_state: Mapping[str, Any] | None = None
    stale = 0
    started = time.perf_counter()
    bar = tqdm(range(1, planned + 1), desc=name, unit="epoch", disable=not options.progress)
    for epoch in bar:
        metrics = runner.train_epoch()
        if validation is not None and (epoch % validation.every == 0 or epoch == planned):
            model = getattr(runner, "model", None)
            if model is not None and hasattr(model, "eval"):
                model.eval()
            score = float(validation.score())
            metrics[validation.name] = score
            if validation.improves(score, history.best_score):
                history.best_score, history.best_epoch, stale = score, epoch, 0
                if validation.restore_best:
                    best_state = copy.deepcopy(runner.state_dict())
            else:
                stale += 1
        patience = validation.patience if validation is not None else None
        stop = (
            patience is not None
            and stale >= patience
            and epoch < planned
            and epoch >= validation.min_epochs  # type: ignore[union-attr]
        )
        history.records.append(metrics)
        # A stage that stops early reports its last epoch as the last (epochs = epoch), so a
        # job's progress row records it and reads as finished.
        log_epoch(name, epoch, metrics, epochs=epoch if stop else planned, options=options)
        shown = postfix if postfix in metrics else next(iter(metrics), None)
        if shown is not None:
            bar.set_postfix({shown: f"{metrics[shown]:.4f}"})
        if stop:
            history.stopped_early = True
            break
    bar.close()
    if validation is None or history.best_score is None:
        history.best_epoch = history.epochs_run
    elif best_state is not None and history.best_epoch != history.epochs_run:
        runner.load_state_dict(best_state)
    elif not validation.restore_best:
        history.best_epoch = history.epochs_run
    history.train_seconds = time.perf_counter() - started
    return FitResult(trainer, history)


def epoch_order(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fresh permutation of ``n`` examples for one epoch."""
    return rng.permutation(n)


def mini_batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order``, ``batch_size`` at a time (the last may be shorter)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
