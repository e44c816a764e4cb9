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

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.signals import Terminated
from app.crud import (
    InvalidTransitionError,
    activate_model_version,
    beat_heartbeat,
    create_training_job,
    get_active_model_version,
    get_training_job,
    mark_failed,
    mark_running,
    mark_succeeded,
    record_progress,
    register_model_version,
    running_job,
)
from app.crud.items import items_frame
from app.models import TrainingJob
from app.services import cpu_budget, worker_process
from app.services.export_worker import NO_RATINGS, write_ratings_csv
from app.services.job_owner import (
    owner_host,
    reap_orphaned_jobs,
    sweep_stale_temp_dirs,
    temp_dir,
)
from app.services.metrics import ServiceMetrics
from app.services.registry import LoadedModel, ModelRegistry, stored_checkpoint_path
from ml.checkpoint import CheckpointError, checkpoint_sha256, read_manifest
from ml.data.items import write_items_csv
from ml.registry import BY_NAME, get_spec

log = logging.getLogger(__name__)

COMPARE_METRIC = "ndcg@10_all"

MAX_ERROR_CHARS = 2000
PROGRESS_LOG_S = 10.0  # at most one progress line per job this often in the service's log
# What a job's owner does with its progress while the worker trains: (job id, progress row).
ProgressHook = Callable[[int, dict[str, Any]], None]


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
    n = write_ratings_csv(session, path)
    if n == 0:
        raise RetrainError(NO_RATINGS)
    return n


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
    words = get_spec(request.model_type).train_words
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
        on_progress: ProgressHook | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.registry = registry
        self.metrics = metrics
        self.python = python
        self.on_progress = on_progress
        self.poll_s = poll_s
        self._lock = threading.RLock()  # submit() holds it while create_job() takes it again
        self._threads: dict[str, threading.Thread] = {}
        self._processes: dict[int, subprocess.Popen[str]] = {}
        self._own_jobs: set[int] = set()  # jobs this process created and has not finished
        self._stopping = threading.Event()

    # ------------------------------------------------------------ submitting
    def create_job(self, request: RetrainRequest) -> TrainingJob:
        """Record a queued job owned by this process; :class:`RetrainConflictError` when one of
        that type is active (after failing the ones whose owner is gone)."""
        self.reap_orphans(model_type=request.model_type)
        with self.session_factory() as session:
            existing = running_job(session=session, model_type=request.model_type)
            if existing is not None:
                raise RetrainConflictError(
                    f"a retrain of {request.model_type} is already {existing.status} "
                    f"(job {existing.id})"
                )
            job = create_training_job(
                session=session,
                model_type=request.model_type,
                params=request.as_json(),
                owner_host=owner_host(),
                owner_pid=os.getpid(),
            )
        with self._lock:
            self._own_jobs.add(job.id)
        return job

    def reap_orphans(self, model_type: str | None = None) -> list[int]:
        """Fail the queued or running jobs whose owner process is gone (see job_owner)."""
        with self._lock:
            own = set(self._own_jobs)
        return reap_orphaned_jobs(
            self.session_factory,
            stale_s=self.settings.job_stale_s,
            model_type=model_type,
            own_jobs=own,
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
        """At a start: fail every job whose owner is gone (jobs of live processes, such as other
        uvicorn workers, are left alone) and remove the temp files killed jobs left behind."""
        sweep_stale_temp_dirs()
        return len(self.reap_orphans())

    def train_missing(self, model_types: list[str]) -> threading.Thread:
        """In the background, one job at a time: train each of ``model_types`` that has no
        active version (ordinary jobs, visible in the jobs API; each is swapped in when ready)."""

        def run() -> None:
            for model_type in model_types:
                if self._stopping.is_set():
                    return
                try:
                    with self.session_factory() as session:
                        if get_active_model_version(session=session, model_type=model_type):
                            continue
                    self.submit(RetrainRequest(model_type, {}))
                except RetrainConflictError as exc:  # another worker or process trains it
                    log.info("not training missing %s: %s", model_type, exc)
                    continue
                except Exception:
                    log.exception("cannot queue a job for missing %s", model_type)
                    continue
                self.wait(model_type)

        thread = threading.Thread(target=run, name="train-missing", daemon=True)
        thread.start()
        return thread

    def wait(self, model_type: str, timeout: float | None = None) -> None:
        thread = self._threads.get(model_type)
        if thread is not None:
            thread.join(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop running train processes (their whole process groups); their jobs end
        ``failed`` (interrupted)."""
        self._stopping.set()
        with self._lock:
            processes = list(self._processes.values())
            threads = list(self._threads.values())
        for process in processes:
            worker_process.stop(process, grace_s=min(5.0, timeout))
        for thread in threads:
            thread.join(timeout)

    # --------------------------------------------------------------- running
    def run_job(self, job_id: int, request: RetrainRequest) -> TrainingJob:
        """Run a queued job to its end in the calling thread; never raises for a failed job."""
        status = "failed"
        with self._lock:
            self._own_jobs.add(job_id)
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
        except (Terminated, KeyboardInterrupt) as exc:  # a CLI stopped: close the job, go on
            reason = str(exc) if isinstance(exc, Terminated) else "stopped by SIGINT"
            with self.session_factory() as session, contextlib.suppress(InvalidTransitionError):
                mark_failed(session=session, job_id=job_id, error=reason)
            log.warning("retrain job %d failed: %s", job_id, reason)
            raise
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
            with self._lock:
                self._own_jobs.discard(job_id)
            if self.metrics is not None:
                self.metrics.retrain_jobs.labels(request.model_type, status).inc()

    def _run(self, job_id: int, request: RetrainRequest) -> int:
        spec = BY_NAME.get(request.model_type)
        if spec is None:
            raise RetrainError(f"unknown model type {request.model_type!r}")
        version = new_version_name(job_id)
        out = self.settings.resolved_checkpoint_dir.resolve() / request.model_type / version
        registered = False
        try:
            # The exported ratings live in a folder named after this PID: removed here on every
            # path, and by the next start's sweep if this process is killed outright.
            tmp = temp_dir()
            try:
                ratings_file: Path | None = None
                if spec.uses_ratings:
                    self._phase(job_id, "exporting ratings")
                    ratings_file = tmp / "ratings.csv"
                    n = self._export_ratings(ratings_file)
                    log.info("retrain job %d: %s on %d ratings", job_id, request.model_type, n)
                items_file: Path | None = None
                if spec.uses_items:
                    items_file = tmp / "items.csv"
                    with self.session_factory() as session:
                        export_items(session, items_file)
                self._phase(job_id, "training")
                self._train(job_id, request, ratings_file, out, items_file)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            self._phase(job_id, "loading the checkpoint")
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
                    checkpoint_path=stored_checkpoint_path(
                        out, self.settings.resolved_checkpoint_dir
                    ),
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
                self.registry.swap(replace(entry, version_id=version_id, metrics=metrics))
            return version_id
        finally:
            if not registered and out.exists():
                shutil.rmtree(out, ignore_errors=True)

    def _export_ratings(self, path: Path) -> int:
        """Every rating as CSV, written by a process of its own (``app.services.export_worker``:
        in a thread here it held the GIL for seconds and stalled the serving event loop), with
        the trainer's thread cap and niceness."""
        command = [self.python, "-m", "app.services.export_worker", str(path)]
        env = {**os.environ, "DEEPREC_DATABASE_URL": self.settings.resolved_database_url}
        env.update(cpu_budget.training_env(self.settings))
        process = worker_process.spawn(command, env)
        cpu_budget.deprioritise(process.pid, self.settings)
        try:
            stdout, stderr = process.communicate(timeout=self.settings.retrain_timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RetrainError(
                f"exporting the ratings ran past {self.settings.retrain_timeout_s:g} s"
            ) from exc
        finally:
            worker_process.stop(process)  # a no-op once it exited
        if process.returncode != 0:
            raise RetrainError(error_line(stderr, process.returncode))
        return int(stdout.split()[-1])

    def _phase(self, job_id: int, phase: str) -> None:
        """Say what the job does now, keeping the last epoch's figures."""
        with self.session_factory() as session:
            job = get_training_job(session=session, job_id=job_id)
            progress = dict(job.progress or {}) if job is not None else {}
            record_progress(session=session, job_id=job_id, progress={**progress, "phase": phase})

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
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DEEPREC_DEVICE": self.settings.device,
            # The worker records its per-epoch progress in this job's row.
            "DEEPREC_JOB_ID": str(job_id),
            "DEEPREC_DATABASE_URL": self.settings.resolved_database_url,
        }
        env.update(cpu_budget.training_env(self.settings))  # thread cap (#14)
        process = worker_process.spawn(command, env)
        cpu_budget.deprioritise(process.pid, self.settings)  # serving wins the CPU (#14)
        with self._lock:
            self._processes[job_id] = process
        try:
            stdout, stderr = self._wait(job_id, process)
        finally:
            worker_process.stop(process)  # a no-op once it exited; else (SIGTERM, a crash) stop it
            with self._lock:
                self._processes.pop(job_id, None)
        if self._stopping.is_set() and process.returncode != 0:
            raise RetrainError("interrupted: the service shut down while training")
        if process.returncode != 0:
            raise RetrainError(error_line(stderr, process.returncode))
        log.debug("retrain job %d train output: %s", job_id, stdout[-2000:])

    def _wait(self, job_id: int, process: subprocess.Popen[str]) -> tuple[str, str]:
        """Wait for the worker, beating the job's heartbeat and passing on its progress."""
        started = time.monotonic()
        last_beat, last_log, last_progress = started, 0.0, None
        while True:
            try:
                return process.communicate(timeout=self.poll_s)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - started > self.settings.retrain_timeout_s:
                worker_process.stop(process, grace_s=1.0)
                process.communicate()
                raise RetrainError(
                    f"the train command ran past {self.settings.retrain_timeout_s:g} s "
                    "and was killed"
                )
            with self.session_factory() as session:
                job = get_training_job(session=session, job_id=job_id)
                progress = dict(job.progress or {}) if job is not None else {}
                if now - last_beat >= self.settings.job_heartbeat_s:
                    beat_heartbeat(session=session, job_id=job_id)
                    last_beat = now
            if progress and progress != last_progress:
                last_progress = progress
                final = progress.get("epoch") == progress.get("epochs")
                if "epoch" in progress and (final or now - last_log >= PROGRESS_LOG_S):
                    log.info("retrain job %d: %s", job_id, describe_progress(progress))
                    last_log = now
                if self.on_progress is not None:
                    self.on_progress(job_id, progress)

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


def describe_progress(progress: dict[str, Any]) -> str:
    """One log line: ``rbm epoch 3/20 val_ndcg@10=0.4012, 12 s elapsed, about 60 s left``."""
    if "epoch" not in progress:
        return str(progress.get("phase", "starting"))
    epochs = progress.get("epochs")
    text = f"{progress.get('stage', '')} epoch {progress['epoch']}/{epochs or '?'}".strip()
    if progress.get("figure") is not None and isinstance(progress.get("value"), int | float):
        text += f" {progress['figure']}={progress['value']:.4f}"
    if isinstance(progress.get("elapsed_s"), int | float):
        text += f", {progress['elapsed_s']:.0f} s elapsed"
    if isinstance(progress.get("eta_s"), int | float):
        text += f", about {progress['eta_s']:.0f} s left"
    return text
