"""``deeprec train`` run for a job (``DEEPREC_JOB_ID``): each epoch's progress into the job's row.

The row's ``progress`` is what ``GET /v1/admin/jobs/{id}``, the server's log and ``deeprec
bootstrap``'s progress bar show: ``{"phase": "training", "stage": "rbm", "epoch": 3, "epochs": 20,
"figure": "val_ndcg@10", "value": 0.41, "elapsed_s": 12.0, "eta_s": 68.0}``. Elapsed time counts
from the start of the command; the estimate is the current stage's remaining epochs at its mean
epoch time (a run with several stages says which one it is in). Writing also beats the job's
heartbeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.crud import record_progress
from app.crud.errors import CrudError
from app.db.session import create_db_engine, create_session_factory
from ml.training.base import EpochReport

log = logging.getLogger(__name__)

# Which figure a progress line shows: a validation figure first, then a loss.
FIGURE_PREFERENCE = ("val_", "validation", "loss", "train_rmse", "recon_error", "mse", "d_loss")


def headline(metrics: Mapping[str, float]) -> tuple[str | None, float | None]:
    for prefix in FIGURE_PREFERENCE:
        for name, value in metrics.items():
            if name.startswith(prefix) and isinstance(value, int | float):
                return name, float(value)
    for name, value in metrics.items():
        if name != "epoch" and isinstance(value, int | float):
            return name, float(value)
    return None, None


class JobProgress:
    """The epoch hook of a train command run for job ``job_id`` (at most one write per
    ``min_interval_s``, and always the last epoch of a stage)."""

    def __init__(self, database_url: str, job_id: int, min_interval_s: float = 0.5) -> None:
        self.job_id = job_id
        self.engine = create_db_engine(database_url)
        self.session_factory = create_session_factory(self.engine)
        self.min_interval_s = min_interval_s
        self.started = time.monotonic()
        self._stage: str | None = None
        self._stage_started = self._last_report = self.started
        self._last_write = 0.0
        self._warned = False

    def progress(self, report: EpochReport) -> dict[str, Any]:
        now = time.monotonic()
        if report.stage != self._stage or report.epoch == 1:
            # The stage began when the previous report (or the command) ended.
            self._stage, self._stage_started = report.stage, self._last_report
        self._last_report = now
        figure, value = headline(report.metrics)
        per_epoch = (now - self._stage_started) / max(report.epoch, 1)
        eta = per_epoch * (report.epochs - report.epoch) if report.epochs else None
        return {
            "phase": "training",
            "stage": report.stage,
            "epoch": report.epoch,
            "epochs": report.epochs,
            "figure": figure,
            "value": value,
            "elapsed_s": round(now - self.started, 1),
            "eta_s": None if eta is None else round(max(eta, 0.0), 1),
        }

    def __call__(self, report: EpochReport) -> None:
        row = self.progress(report)
        now = time.monotonic()
        last = report.epochs is not None and report.epoch >= report.epochs
        if not last and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        try:
            with self.session_factory() as session:
                record_progress(session=session, job_id=self.job_id, progress=row)
        except (SQLAlchemyError, CrudError) as exc:  # progress is a courtesy: never fail training
            if not self._warned:
                log.warning("cannot record the progress of job %d: %s", self.job_id, exc)
                self._warned = True
