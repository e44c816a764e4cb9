"""Retraining jobs: export the ratings, train in a worker process, register, activate, hot-swap.

A job runs in a background thread of the service (never on the event loop) and goes through:

1. the ratings currently in the database are exported to a temporary CSV file;
2. ``python -m app.cli.main train MODEL --ratings FILE --out DIR --params-json JSON`` runs as a
   SUBPROCESS (the web app never imports training code: a crash or a leak there cannot take the
   service down, and import-linter keeps it that way);
3. the checkpoint's manifest is read: it must be of the right model type and carry metrics
   (training AND evaluation succeeded);
4. the checkpoint is loaded (sha256 verified) while the old version keeps answering;
5. a ``model_version`` row is registered, activated in the database, and swapped into the registry.

Any failure leaves the active version as it was and the job ``failed`` with the one-line reason
(the ``error: ...`` line the train command printed, for bad params). The same code path serves
``deeprec bootstrap`` (synchronously, without a live registry).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.crud import (
    InvalidTransitionError,
    activate_model_version,
    all_ratings_frame,
    create_training_job,
    get_active_model_version,
    get_training_job,
    mark_failed,
    mark_running,
    mark_succeeded,
    register_model_version,
    running_job,
)
from app.crud.items import items_frame
from app.models import JobStatus, TrainingJob
from app.services.metrics import ServiceMetrics
from app.services.registry import LoadedModel, ModelRegistry
from ml.checkpoint import CheckpointError, checkpoint_sha256, read_manifest
from ml.data.items import write_items_csv
from ml.inference import LOADERS

log = logging.getLogger(__name__)

COMPARE_METRIC = "ndcg@10_all"

# model_type -> the `deeprec train ...` words that make it, and whether it trains on ratings
# (the ratings exported from the database) or on digit images (the configured image set).
TRAIN_COMMANDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "rbm": (("rbm",), True),
    "autoencoder": (("autoencoder", "--target", "ratings"), True),
    "autorec": (("autorec",), True),
    "ease": (("ease",), True),
    "popularity": (("popularity",), True),
    "autoencoder-images": (("autoencoder", "--target", "digits"), False),
    "rbm-images": (("rbm-images",), False),
    "dbn": (("dbn",), False),
    # The conditional GAN serves labelled and unlabelled samples and trains in 400 epochs
    # (bench/results/gan.md); the unconditional default needs 1000.
    "gan": (("gan", "--conditional", "--epochs", "400"), False),
    "content": (("content",), True),
    "hybrid": (("hybrid",), True),
}
# Model types that also learn from item metadata: the job exports the items table beside the
# ratings and passes it as ``--items``.
METADATA_MODELS = frozenset({"content", "hybrid"})
MAX_ERROR_CHARS = 2000


class RetrainConflictError(RuntimeError):
    """A retrain of that model type is already queued or running (HTTP 409)."""


class RetrainError(RuntimeError):
    """A step of the job failed; the message is the job's recorded reason."""


@dataclass(frozen=True)
class RetrainRequest:
    model_type: str
    params: dict[str, Any]
    epochs: int | None = None
    seed: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"params": self.params, "epochs": self.epochs, "seed": self.seed}


def _owner() -> dict[str, Any]:
    """Which process runs a job: recorded with it so a restart can tell orphans from live jobs."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned(job: TrainingJob, horizon: datetime) -> bool:
    owner = (job.params or {}).get("worker") or {}
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return owner["pid"] != os.getpid() and not _process_alive(owner["pid"])
    return job.created_at < horizon


def error_line(stderr: str, returncode: int) -> str:
    """The reason a train command gave: its last ``error: ...`` line, else its last line."""
    # Typer draws usage errors in a box: keep the words, drop the frame.
    lines = [line.strip(" \t│╭╮╰╯─") for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[:MAX_ERROR_CHARS]
    if lines:
        return f"train command exited with code {returncode}: {lines[-1]}"[:MAX_ERROR_CHARS]
    return f"train command exited with code {returncode}"


def export_ratings(session: Session, path: Path) -> int:
    """Write every rating in the database as CSV (user_id,item_id,rating,timestamp)."""
    frame = all_ratings_frame(session=session)
    if frame.empty:
        raise RetrainError("the database holds no ratings to train on (run `deeprec data load`)")
    frame.to_csv(path, index=False)
    return len(frame)


def export_items(session: Session, path: Path) -> int:
    """Write every item's metadata as CSV (``ml.data.items``'s layout)."""
    frame = items_frame(session=session)
    write_items_csv(frame, path)
    return len(frame)


def train_command(
    python: str,
    request: RetrainRequest,
    ratings: Path | None,
    out: Path,
    items: Path | None = None,
) -> list[str]:
    """The worker's command line: ``python -m app.cli.main train ...`` for the model type."""
    words, _ = TRAIN_COMMANDS.get(request.model_type, ((request.model_type,), True))
    command = [python, "-m", "app.cli.main", "train", *words]
    if ratings is not None:
        command += ["--ratings", str(ratings)]
    if items is not None:
        command += ["--items", str(items)]
    command += ["--out", str(out), "--params-json", json.dumps(request.params)]
    if request.epochs is not None:
        command += ["--epochs", str(request.epochs)]
    if request.seed is not None:
        command += ["--seed", str(request.seed)]
    return command


def new_version_name(job_id: int) -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-job{job_id}"


class RetrainManager:
    """Submits and runs retrain jobs; at most one queued or running job per model type."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: Callable[[], Session],
        registry: ModelRegistry | None,
        metrics: ServiceMetrics | None = None,
        python: str = sys.executable,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.registry = registry
        self.metrics = metrics
        self.python = python
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._processes: dict[int, subprocess.Popen[str]] = {}
        self._stopping = threading.Event()

    # ------------------------------------------------------------ submitting
    def create_job(self, request: RetrainRequest) -> TrainingJob:
        """Record a queued job; :class:`RetrainConflictError` when one of that type is active."""
        with self.session_factory() as session:
            existing = running_job(session=session, model_type=request.model_type)
            if existing is not None:
                raise RetrainConflictError(
                    f"a retrain of {request.model_type} is already {existing.status} "
                    f"(job {existing.id})"
                )
            return create_training_job(
                session=session,
                model_type=request.model_type,
                params={**request.as_json(), "worker": _owner()},
            )

    def submit(self, request: RetrainRequest) -> TrainingJob:
        """Queue a job and start it in a background thread; returns the queued job."""
        if self._stopping.is_set():
            raise RetrainConflictError("the service is shutting down")
        with self._lock:
            thread = self._threads.get(request.model_type)
            if thread is not None and thread.is_alive():
                raise RetrainConflictError(f"a retrain of {request.model_type} is already running")
            job = self.create_job(request)
            thread = threading.Thread(
                target=self.run_job,
                args=(job.id, request),
                name=f"retrain-{request.model_type}-{job.id}",
                daemon=True,
            )
            self._threads[request.model_type] = thread
            thread.start()
        log.info("retrain job %d queued: %s %s", job.id, request.model_type, request.as_json())
        return job

    def recover_interrupted(self) -> int:
        """Fail the jobs whose worker died under them: started by a process of this host that
        no longer runs, or older than the retrain timeout (their subprocess would have been
        killed by now). Jobs of live processes (other uvicorn workers) are left alone."""
        horizon = datetime.now(UTC) - timedelta(seconds=self.settings.retrain_timeout_s + 60)
        with self.session_factory() as session:
            active = list(
                session.scalars(
                    select(TrainingJob).where(
                        TrainingJob.status.in_((JobStatus.queued, JobStatus.running))
                    )
                )
            )
            stale = [job.id for job in active if _orphaned(job, horizon)]
            for job_id in stale:
                mark_failed(
                    session=session,
                    job_id=job_id,
                    error="interrupted: the process running the job stopped before it finished",
                )
        if stale:
            log.warning("marked %d interrupted retrain job(s) failed: %s", len(stale), stale)
        return len(stale)

    def wait(self, model_type: str, timeout: float | None = None) -> None:
        thread = self._threads.get(model_type)
        if thread is not None:
            thread.join(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop running train processes; their jobs end ``failed`` (interrupted)."""
        self._stopping.set()
        with self._lock:
            processes = list(self._processes.values())
            threads = list(self._threads.values())
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for thread in threads:
            thread.join(timeout)

    # --------------------------------------------------------------- running
    def run_job(self, job_id: int, request: RetrainRequest) -> TrainingJob:
        """Run a queued job to its end in the calling thread; never raises for a failed job."""
        status = "failed"
        try:
            with self.session_factory() as session:
                mark_running(session=session, job_id=job_id)
            version_id = self._run(job_id, request)
            with self.session_factory() as session:
                job = mark_succeeded(session=session, job_id=job_id, model_version_id=version_id)
            status = "succeeded"
            log.info(
                "retrain job %d succeeded: %s version id %d", job_id, request.model_type, version_id
            )
            return job
        except Exception as exc:
            reason = (
                str(exc)
                if isinstance(exc, RetrainError | CheckpointError)
                else (f"{type(exc).__name__}: {exc}")
            )
            reason = reason.strip()[:MAX_ERROR_CHARS] or type(exc).__name__
            if not isinstance(exc, RetrainError | CheckpointError):
                log.exception("retrain job %d crashed", job_id)
            else:
                log.warning("retrain job %d failed: %s", job_id, reason)
            with self.session_factory() as session:
                try:
                    return mark_failed(session=session, job_id=job_id, error=reason)
                except InvalidTransitionError:  # another process already closed the job
                    log.warning("retrain job %d was closed elsewhere: %s", job_id, reason)
                    closed = get_training_job(session=session, job_id=job_id)
                    assert closed is not None
                    return closed
        finally:
            if self.metrics is not None:
                self.metrics.retrain_jobs.labels(request.model_type, status).inc()

    def _run(self, job_id: int, request: RetrainRequest) -> int:
        if request.model_type not in LOADERS:
            raise RetrainError(f"unknown model type {request.model_type!r}")
        version = new_version_name(job_id)
        out = self.settings.resolved_checkpoint_dir.resolve() / request.model_type / version
        registered = False
        _, uses_ratings = TRAIN_COMMANDS.get(request.model_type, ((request.model_type,), True))
        try:
            with tempfile.TemporaryDirectory(prefix="deeprec-retrain-") as tmp:
                ratings_file: Path | None = None
                if uses_ratings:
                    ratings_file = Path(tmp) / "ratings.csv"
                    with self.session_factory() as session:
                        n = export_ratings(session, ratings_file)
                    log.info("retrain job %d: %s on %d ratings", job_id, request.model_type, n)
                items_file: Path | None = None
                if request.model_type in METADATA_MODELS:
                    items_file = Path(tmp) / "items.csv"
                    with self.session_factory() as session:
                        export_items(session, items_file)
                self._train(job_id, request, ratings_file, out, items_file)
            manifest = read_manifest(out)
            if manifest.get("model_type") != request.model_type:
                raise RetrainError(
                    f"the train command wrote a {manifest.get('model_type')!r} checkpoint, "
                    f"not {request.model_type!r}"
                )
            metrics = manifest.get("metrics") or {}
            if not metrics:
                raise RetrainError("the checkpoint carries no evaluation metrics; not activated")
            entry = self._load(request.model_type, version, out)
            with self.session_factory() as session:
                row = register_model_version(
                    session=session,
                    model_type=request.model_type,
                    checkpoint_path=str(out),
                    sha256=entry.sha256 if entry else checkpoint_sha256(out),
                    metrics=metrics,
                    params=request.as_json(),
                    version=version,
                )
                registered = True
                self._check_not_worse(session, request.model_type, metrics)
                activate_model_version(session=session, version_id=row.id)
                version_id = row.id
            if self.registry is not None and entry is not None:
                self.registry.swap(
                    LoadedModel(
                        model_type=entry.model_type,
                        version=entry.version,
                        model=entry.model,
                        checkpoint_path=entry.checkpoint_path,
                        sha256=entry.sha256,
                        version_id=version_id,
                        metrics=metrics,
                    )
                )
            return version_id
        finally:
            if not registered and out.exists():
                shutil.rmtree(out, ignore_errors=True)

    def _train(
        self,
        job_id: int,
        request: RetrainRequest,
        ratings: Path | None,
        out: Path,
        items: Path | None = None,
    ) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        command = train_command(self.python, request, ratings, out, items)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEEPREC_DEVICE": self.settings.device}
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        with self._lock:
            self._processes[job_id] = process
        try:
            stdout, stderr = process.communicate(timeout=self.settings.retrain_timeout_s)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise RetrainError(
                f"the train command ran past {self.settings.retrain_timeout_s:g} s and was killed"
            ) from exc
        finally:
            with self._lock:
                self._processes.pop(job_id, None)
        if self._stopping.is_set() and process.returncode != 0:
            raise RetrainError("interrupted: the service shut down while training")
        if process.returncode != 0:
            raise RetrainError(error_line(stderr, process.returncode))
        log.debug("retrain job %d train output: %s", job_id, stdout[-2000:])

    def _load(self, model_type: str, version: str, out: Path) -> LoadedModel | None:
        """Load the new checkpoint (proves it serves) without swapping it in yet."""
        if self.registry is None:
            read_manifest(out)
            return None
        return self.registry.load(model_type=model_type, version=version, checkpoint_path=out)

    def _check_not_worse(self, session: Session, model_type: str, metrics: dict[str, Any]) -> None:
        if not self.settings.retrain_require_not_worse:
            return
        active = get_active_model_version(session=session, model_type=model_type)
        if active is None:
            return
        old, new = active.metrics.get(COMPARE_METRIC), metrics.get(COMPARE_METRIC)
        if isinstance(old, int | float) and isinstance(new, int | float) and new < old:
            raise RetrainError(
                f"not activated: {COMPARE_METRIC} {new:.4f} is below the active version "
                f"{active.version}'s {old:.4f} (the new version stays registered)"
            )
