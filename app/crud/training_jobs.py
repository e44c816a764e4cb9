"""Training jobs: queued -> running -> succeeded (with the model version it made) | failed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crud._tx import write
from app.crud.errors import InvalidTransitionError, NotFoundError
from app.db.types import utcnow
from app.models import JobStatus, ModelVersion, TrainingJob

ACTIVE_STATUSES = (JobStatus.queued, JobStatus.running)


def create_training_job(
    *,
    session: Session,
    model_type: str,
    params: dict[str, Any] | None = None,
    owner_host: str | None = None,
    owner_pid: int | None = None,
) -> TrainingJob:
    """A queued job; its owner (the process that will run it) starts its heartbeat now."""
    job = TrainingJob(
        model_type=model_type,
        status=JobStatus.queued,
        params=dict(params or {}),
        owner_host=owner_host,
        owner_pid=owner_pid,
        heartbeat_at=utcnow(),
    )
    with write(session):
        session.add(job)
    return job


def get_training_job(*, session: Session, job_id: int) -> TrainingJob | None:
    return session.get(TrainingJob, job_id)


def list_training_jobs(
    *, session: Session, model_type: str | None = None, limit: int = 100
) -> list[TrainingJob]:
    query = select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)
    if model_type is not None:
        query = query.filter(TrainingJob.model_type == model_type)
    return list(session.scalars(query))


def running_job(*, session: Session, model_type: str) -> TrainingJob | None:
    """The queued or running job of ``model_type``, if any (the oldest one)."""
    return session.scalar(
        select(TrainingJob)
        .filter(TrainingJob.model_type == model_type, TrainingJob.status.in_(ACTIVE_STATUSES))
        .order_by(TrainingJob.id)
        .limit(1)
    )


def active_jobs(*, session: Session, model_type: str | None = None) -> list[TrainingJob]:
    """Every queued or running job (of ``model_type`` when given), oldest first."""
    query = select(TrainingJob).filter(TrainingJob.status.in_(ACTIVE_STATUSES))
    if model_type is not None:
        query = query.filter(TrainingJob.model_type == model_type)
    return list(session.scalars(query.order_by(TrainingJob.id)))


def beat_heartbeat(*, session: Session, job_id: int) -> None:
    """The job's owner is alive: a start-up leaves jobs with a recent heartbeat alone."""
    with write(session):
        job = session.get(TrainingJob, job_id)
        if job is not None and job.status in ACTIVE_STATUSES:
            job.heartbeat_at = utcnow()


def mark_running(*, session: Session, job_id: int) -> TrainingJob:
    with write(session):
        job = _job(session, job_id, allowed=(JobStatus.queued,), to=JobStatus.running)
        job.status = JobStatus.running
        job.started_at = job.heartbeat_at = utcnow()
    return job


def mark_succeeded(*, session: Session, job_id: int, model_version_id: int) -> TrainingJob:
    with write(session):
        job = _job(session, job_id, allowed=(JobStatus.running,), to=JobStatus.succeeded)
        if session.get(ModelVersion, model_version_id) is None:
            raise NotFoundError(f"unknown model version {model_version_id}")
        job.status = JobStatus.succeeded
        job.model_version_id = model_version_id
        job.finished_at = utcnow()
    return job


def mark_failed(*, session: Session, job_id: int, error: str) -> TrainingJob:
    """A queued or running job failed; ``error`` says why (kept as text)."""
    with write(session):
        job = _job(session, job_id, allowed=ACTIVE_STATUSES, to=JobStatus.failed)
        job.status = JobStatus.failed
        job.error = error
        job.finished_at = utcnow()
    return job


def record_progress(*, session: Session, job_id: int, progress: dict[str, Any]) -> TrainingJob:
    """Store a running job's progress (epoch of n, figure, elapsed, estimate) and beat its heart."""
    with write(session):
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise NotFoundError(f"unknown training job {job_id}")
        job.progress = dict(progress)
        job.heartbeat_at = utcnow()
    return job


def _job(
    session: Session, job_id: int, *, allowed: tuple[JobStatus, ...], to: JobStatus
) -> TrainingJob:
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise NotFoundError(f"unknown training job {job_id}")
    if job.status not in allowed:
        raise InvalidTransitionError(f"training job {job_id} is {job.status}, cannot become {to}")
    return job
