"""FastAPI dependencies: the database session, the model registry, settings, the admin token.

Routes declare what they need with the ``Annotated`` aliases (``SessionDep``, ``RegistryDep``, ...);
everything lives on ``app.state`` (built by the lifespan in ``app/main.py``), so tests can build
as many apps as they like with their own settings.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.crud.serving import HotReads
from app.services.answer_cache import AnswerCache, LocalLRU
from app.services.catalog import ItemCatalog
from app.services.metrics import ServiceMetrics
from app.services.registry import ModelRegistry
from app.services.retrain import RetrainManager


# Plain attribute reads are ``async def``: FastAPI runs a sync dependency in the threadpool,
# and a thread hop per dependency costs more than the whole lookup.
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the request. Creating one does no I/O; the connection it checked out (if
    any) is released in the threadpool, never on the event loop."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_catalog(request: Request) -> ItemCatalog:
    return request.app.state.catalog


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def get_retrain(request: Request) -> RetrainManager:
    return request.app.state.retrain


@dataclass(frozen=True)
class Serving:
    """What the hot recommendation path needs, in ONE dependency (each costs per request)."""

    session_factory: sessionmaker[Session]
    registry: ModelRegistry
    catalog: ItemCatalog
    metrics: ServiceMetrics
    # Caps the threads answering recommendations at once. Their work is CPU-bound: threads beyond
    # one per core only take turns at the GIL, and the switching costs more than the work.
    limiter: CapacityLimiter
    # The hot path's reads of a user's ratings and ratings version (pooled DBAPI connections).
    reads: HotReads
    # Serialised answers keyed by (user, model version, ratings version, parameters); None: off.
    cache: AnswerCache | None = None
    # The cache's in-process tier (read on the event loop by the hot path), if it has one.
    memory: LocalLRU | None = None
    # Whether app/api/hot_path.py answers plainly valid requests in front of the route.
    hot_path: bool = True
    # Which models' misses the hot path computes on the event loop (None: none).
    inline_misses: InlineMisses | None = None


class InlineMisses:
    """Which misses run on the event loop: those of a model (as the request names it) whose
    recent misses took at most ``max_s`` of CPU, an average over the last few dozen. A model not
    seen yet is tried inline once; a slow one goes to the inference thread from then on."""

    DECAY = 0.9

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self._cost: dict[str | None, float] = {}

    def inline(self, model: str | None) -> bool:
        return self._cost.get(model, 0.0) <= self.max_s

    def record(self, model: str | None, seconds: float) -> None:
        previous = self._cost.get(model)
        self._cost[model] = (
            seconds if previous is None else self.DECAY * previous + (1 - self.DECAY) * seconds
        )


async def get_serving(request: Request) -> Serving:
    return request.app.state.serving


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ServingDep = Annotated[Serving, Depends(get_serving)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
CatalogDep = Annotated[ItemCatalog, Depends(get_catalog)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
RetrainDep = Annotated[RetrainManager, Depends(get_retrain)]

_bearer = HTTPBearer(auto_error=False, description="DEEPREC_ADMIN_TOKEN")


async def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin calls need ``Authorization: Bearer <DEEPREC_ADMIN_TOKEN>``, compared in constant
    time. No token configured: 503 (admin disabled); none sent: 401; a wrong one: 403."""
    configured = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not configured:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "admin is disabled: set DEEPREC_ADMIN_TOKEN to enable the admin endpoints",
        )
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing admin token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.credentials.encode(), configured.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong admin token")


AdminDep = Depends(require_admin)
