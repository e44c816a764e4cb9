"""The shared fit loop: epochs, validation direction, early stopping, restoring the best state,
the progress hook."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import torch

from ml.training.base import EpochReport, TrainingOptions
from ml.training.loop import BatchTrainer, Validation, epoch_order, fit, mini_batches

OPTIONS = TrainingOptions(device="cpu", seed=0, epochs=6, progress=False)


class LineTrainer(BatchTrainer):
    """Least squares for y = 2x by SGD: a model whose state visibly changes every epoch."""

    def __init__(self) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(self.model.weight)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05)
        self.x = torch.linspace(0, 1, 16).unsqueeze(1)
        self.rng = np.random.default_rng(0)
        self.epochs_seen = 0

    def batches(self) -> Iterator[np.ndarray]:
        return mini_batches(epoch_order(16, self.rng), 4)

    def step(self, batch: np.ndarray) -> Mapping[str, float]:
        x = self.x[torch.from_numpy(batch)]
        loss = ((self.model(x) - 2 * x) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def end_epoch(self, metrics: dict[str, float]) -> None:
        self.epochs_seen += 1
        metrics["weight"] = float(self.model.weight)


def _scores(values: list[float]) -> Any:
    it = iter(values)
    return lambda: next(it)


def test_runs_every_epoch_without_validation_and_reports_each() -> None:
    reports: list[EpochReport] = []
    options = TrainingOptions(device="cpu", epochs=6, progress=False, on_epoch=reports.append)
    result = fit(LineTrainer(), options, name="line")
    history = result.history
    assert history.epochs_run == 6 and history.best_epoch == 6 and not history.stopped_early
    assert [r.epoch for r in reports] == [1, 2, 3, 4, 5, 6]
    assert {r.stage for r in reports} == {"line"} and reports[0].epochs == 6
    assert history.records[-1]["loss"] < history.records[0]["loss"]
    assert history.as_dict()["epochs_run"] == 6


@pytest.mark.parametrize(
    ("mode", "scores", "best"),
    [("max", [0.1, 0.5, 0.2, 0.3, 0.4, 0.0], 2), ("min", [0.9, 0.5, 0.2, 0.3, 0.4, 0.6], 3)],
)
def test_validation_direction_and_restoring_the_best_state(
    mode: str, scores: list[float], best: int
) -> None:
    trainer = LineTrainer()
    validation = Validation(score=_scores(scores), mode=mode, name="val")  # type: ignore[arg-type]
    history = fit(trainer, OPTIONS, validation=validation).history
    assert history.best_epoch == best and history.best_score == scores[best - 1]
    assert [r["val"] for r in history.records] == scores
    assert float(trainer.model.weight) == pytest.approx(history.records[best - 1]["weight"])


def test_early_stopping_with_patience_and_a_ceiling() -> None:
    trainer = LineTrainer()
    validation = Validation(
        score=_scores([0.1, 0.2, 0.6, 0.5, 0.55, 0.6, 0.9]), patience=3, name="val"
    )
    reports: list[EpochReport] = []
    options = TrainingOptions(device="cpu", progress=False, on_epoch=reports.append)
    history = fit(trainer, options, epochs=7, validation=validation).history
    assert history.stopped_early and history.epochs_run == 6 and history.best_epoch == 3
    assert [(r.epoch, r.epochs) for r in reports][-2:] == [(5, 7), (6, 6)]  # the last says so
    assert trainer.epochs_seen == 6
    assert float(trainer.model.weight) == pytest.approx(history.records[2]["weight"])


def test_validates_every_k_epochs_and_at_the_last() -> None:
    calls: list[int] = []
    trainer = LineTrainer()

    def score() -> float:
        calls.append(trainer.epochs_seen)
        return float(len(calls))

    fit(trainer, OPTIONS, epochs=7, validation=Validation(score=score, every=3))
    assert calls == [3, 6, 7]


def test_refuses_bad_settings() -> None:
    with pytest.raises(ValueError):
        fit(LineTrainer(), OPTIONS, epochs=0)
    with pytest.raises(ValueError):
        Validation(score=lambda: 0.0, mode="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Validation(score=lambda: 0.0, patience=0)


def test_never_stops_before_min_epochs() -> None:
    validation = Validation(score=_scores([0.9, 0.8, 0.7, 0.6, 0.5]), patience=1, min_epochs=4)
    history = fit(LineTrainer(), OPTIONS, validation=validation).history
    assert history.epochs_run == 4 and history.best_epoch == 1 and history.stopped_early
