"""Liveness, readiness and Prometheus metrics (unversioned, at the root)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.api.deps import MetricsDep, RegistryDep, SettingsDep
from app.schemas.health import HealthPublic, ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
async def healthz() -> HealthPublic:
    """Liveness: the process answers. Says nothing about models or the database."""
    return HealthPublic()


def _database_status(request: Request) -> str:
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unavailable: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}"
    startup_error = request.app.state.startup_error
    return f"schema problem at start-up: {startup_error}" if startup_error else "ok"


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "Not ready: see `missing`."}},
)
def readyz(request: Request, registry: RegistryDep, settings: SettingsDep) -> JSONResponse:
    """Ready when the database answers and every required model type is loaded."""
    database = _database_status(request)
    loaded = {t: e.version for t, e in registry.snapshot().items()}
    missing = [t for t in settings.required_model_types if t not in loaded]
    body = ReadinessPublic(
        ready=database == "ok" and not missing,
        database=database,
        models=loaded,
        missing=missing,
        errors=registry.errors(),
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format: requests and latency per route, models loaded, inference time."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
