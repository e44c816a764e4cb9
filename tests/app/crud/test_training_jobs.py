"""Training jobs: queued -> running -> succeeded | failed, and nothing else."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app import crud
from app.models import JobStatus


def test_job_lifecycle_to_success(session: Session) -> None:
    job = crud.create_training_job(session=session, model_type="rbm", params={"epochs": 3})
    assert job.status is JobStatus.queued and job.started_at is None and job.created_at
    assert crud.running_job(session=session, model_type="rbm").id == job.id
    assert crud.running_job(session=session, model_type="ease") is None

    crud.mark_running(session=session, job_id=job.id)
    version = crud.register_model_version(session=session, model_type="rbm", checkpoint_path="/c")
    crud.mark_succeeded(session=session, job_id=job.id, model_version_id=version.id)

    session.expunge_all()
    done = crud.get_training_job(session=session, job_id=job.id)
    assert done.status is JobStatus.succeeded and done.params == {"epochs": 3}
    assert done.model_version_id == version.id and done.model_version.checkpoint_path == "/c"
    assert done.created_at <= done.started_at <= done.finished_at
    assert crud.running_job(session=session, model_type="rbm") is None


def test_job_failure_keeps_the_error(session: Session) -> None:
    job = crud.create_training_job(session=session, model_type="dbn")
    crud.mark_running(session=session, job_id=job.id)
    crud.mark_failed(session=session, job_id=job.id, error="error: unknown parameter(s) ['x']")
    session.expunge_all()
    failed = crud.get_training_job(session=session, job_id=job.id)
    assert failed.status is JobStatus.failed and "unknown parameter" in failed.error
    assert failed.finished_at is not None


def test_invalid_transitions_are_refused(session: Session) -> None:
    job = crud.create_training_job(session=session, model_type="gan")
    version = crud.register_model_version(session=session, model_type="gan", checkpoint_path="/g")
    with pytest.raises(crud.InvalidTransitionError):
        crud.mark_succeeded(session=session, job_id=job.id, model_version_id=version.id)
    crud.mark_running(session=session, job_id=job.id)
    with pytest.raises(crud.InvalidTransitionError):
        crud.mark_running(session=session, job_id=job.id)
    with pytest.raises(crud.NotFoundError):
        crud.mark_succeeded(session=session, job_id=job.id, model_version_id=version.id + 1)
    assert crud.get_training_job(session=session, job_id=job.id).status is JobStatus.running
    with pytest.raises(crud.NotFoundError):
        crud.mark_running(session=session, job_id=job.id + 1)


def test_list_jobs_newest_first(session: Session) -> None:
    a = crud.create_training_job(session=session, model_type="rbm")
    b = crud.create_training_job(session=session, model_type="ease")
    assert [j.id for j in crud.list_training_jobs(session=session)] == [b.id, a.id]
    assert [j.id for j in crud.list_training_jobs(session=session, model_type="rbm")] == [a.id]
