"""Admin (bearer token): retrain a model, follow the job, list versions, roll back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from app.api.deps import AdminDep, RegistryDep, RetrainDep, SessionDep
from app.core.params import ParamsError
from app.crud import (
    activate_model_version,
    get_model_version,
    get_training_job,
    list_model_versions,
    list_training_jobs,
)
from app.crud.errors import NotFoundError
from app.models import ModelVersion, TrainingJob
from app.schemas.admin import JobPublic, ModelVersionPublic, RetrainCreate
from app.schemas.common import BODY_ERROR_RESPONSES, ErrorPublic
from app.services.registry import ModelRegistry, version_kwargs
from app.services.retrain import RetrainRequest
from app.services.retrain_params import check_retrain_params
from ml.registry import BY_NAME, model_types

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[AdminDep],
    responses={
        401: {"model": ErrorPublic, "description": "No admin token sent."},
        403: {"model": ErrorPublic, "description": "Wrong admin token."},
        404: {"model": ErrorPublic, "description": "Unknown job or model version."},
        422: {"model": ErrorPublic, "description": "Invalid parameters."},
        503: {"model": ErrorPublic, "description": "Admin is disabled (no token configured)."},
    },
)


def _job(job: TrainingJob) -> JobPublic:
    return JobPublic.model_validate(job)


def _version(row: ModelVersion, registry: ModelRegistry) -> ModelVersionPublic:
    served = registry.find(row.model_type)
    public = ModelVersionPublic.model_validate(row)
    public.serving = served is not None and served.version == row.version
    return public


@router.post(
    "/retrain",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **BODY_ERROR_RESPONSES,
        409: {"model": ErrorPublic, "description": "That model is being retrained."},
    },
)
def retrain(body: RetrainCreate, jobs: RetrainDep) -> JobPublic:
    """Retrain a model on the ratings now in the database, in a worker process.

    The new version is registered and swapped in only if training and evaluation succeed; a
    failure leaves the active version serving and the job ``failed`` with the reason.
    """
    if body.model not in BY_NAME:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"unknown model {body.model!r}; known: {model_types()}",
        )
    try:  # the train command's own check, now: a bad parameter is a 422, not a failed job
        check_retrain_params(body.model, body.params)
    except ParamsError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    job = jobs.submit(
        RetrainRequest(
            model_type=body.model, params=body.params, epochs=body.epochs, seed=body.seed
        )
    )
    return _job(job)


@router.get("/jobs", response_model=list[JobPublic])
def jobs(
    session: SessionDep,
    model: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobPublic]:
    """Recent retrain jobs, newest first."""
    return [_job(j) for j in list_training_jobs(session=session, model_type=model, limit=limit)]


@router.get("/jobs/{job_id}", response_model=JobPublic)
def job(session: SessionDep, job_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> JobPublic:
    """One job: queued, running, succeeded (with its model version) or failed (with the reason)."""
    found = get_training_job(session=session, job_id=job_id)
    if found is None:
        raise NotFoundError(f"unknown training job {job_id}")
    return _job(found)


@router.get("/models", response_model=list[ModelVersionPublic])
def models(
    session: SessionDep,
    registry: RegistryDep,
    model: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ModelVersionPublic]:
    """Registered model versions, newest first; ``serving`` marks the ones answering now."""
    return [_version(r, registry) for r in list_model_versions(session=session, model_type=model)]


@router.post(
    "/models/{version_id}/activate",
    response_model=ModelVersionPublic,
    responses={409: {"model": ErrorPublic, "description": "The checkpoint cannot be loaded."}},
)
def activate(
    session: SessionDep,
    registry: RegistryDep,
    version_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> ModelVersionPublic:
    """Serve this version (e.g. roll back): loaded and verified first, then swapped in."""
    row = get_model_version(session=session, version_id=version_id)
    if row is None:
        raise NotFoundError(f"unknown model version {version_id}")
    if row.model_type not in BY_NAME:
        raise HTTPException(status.HTTP_409_CONFLICT, f"unknown model type {row.model_type!r}")
    try:
        entry = registry.load(**version_kwargs(row))
    except Exception as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"cannot load version {row.version}: {exc}"
        ) from exc
    row = activate_model_version(session=session, version_id=version_id)
    registry.swap(entry)
    return _version(row, registry)
