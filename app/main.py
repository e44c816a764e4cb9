"""The FastAPI application: ``create_app()`` and the lifespan that opens the database and loads
the ACTIVE version of every model type into the registry.

Run it with ``deeprec serve`` (uvicorn with ``app.main:create_app`` as factory). Start-up with no
database schema or no checkpoint is healthy but not ready: ``/readyz`` says what is missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import CapacityLimiter
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.body import BodyError, RequestBodyGuard
from app.api.deps import InlineMisses, Serving
from app.api.hot_path import RecommendationHotPath
from app.api.main import api_router
from app.api.methods import http_error
from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
from app.crud import CrudError, list_active_model_versions
from app.crud.errors import ConflictError, InvalidValueError, NotFoundError
from app.crud.serving import HotReads
from app.db.session import create_db_engine, create_session_factory
from app.services.answer_cache import build_answer_cache, memory_tier
from app.services.catalog import ItemCatalog
from app.services.cpu_budget import (
    apply_switch_interval,
    apply_torch_threads,
    freeze_start_up_objects,
)
from app.services.errors import InvalidRequestError
from app.services.loop_watch import LoopWatch
from app.services.metrics import PrometheusMiddleware, ServiceMetrics
from app.services.model_sync import ActiveVersionSync
from app.services.precompute import Precomputer
from app.services.registry import ModelNotLoadedError, ModelRegistry, version_kwargs
from app.services.retrain import RetrainConflictError, RetrainManager
from app.web import install_studio
from ml.device import resolve_device
from ml.registry import BY_NAME

log = logging.getLogger(__name__)


def load_active_models(app: FastAPI) -> None:
    """Load the active version of every known model type; failures are logged and recorded
    (``/readyz`` shows them), never fatal."""
    registry: ModelRegistry = app.state.registry
    try:
        with app.state.session_factory() as session:
            active = list_active_model_versions(session=session)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        log.warning("no model versions read (is the database migrated?): %s", reason)
        app.state.startup_error = reason
        return
    for row in active:
        if row.model_type not in BY_NAME:
            log.warning(
                "ignoring active version %s of unknown type %r", row.version, row.model_type
            )
            continue
        try:
            registry.load_and_swap(**version_kwargs(row))
        except Exception as exc:
            log.error("cannot load %s version %s: %s", row.model_type, row.version, exc)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    restore_threads = apply_torch_threads(settings.torch_threads)
    restore_switch = apply_switch_interval(settings.gil_switch_ms)
    device = resolve_device(settings.device)
    engine = create_db_engine(settings.resolved_database_url)
    session_factory = create_session_factory(engine)
    registry = ModelRegistry(device, checkpoint_dir=settings.resolved_checkpoint_dir)
    metrics: ServiceMetrics = app.state.metrics
    metrics.watch_models(registry)
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.registry = registry
    app.state.catalog = ItemCatalog(session_factory, popularity_ttl_s=settings.popularity_cache_s)
    app.state.retrain = RetrainManager(
        settings=settings, session_factory=session_factory, registry=registry, metrics=metrics
    )
    limiter = CapacityLimiter(settings.inference_threads)
    cache = build_answer_cache(settings, metrics)
    reads = HotReads(engine)
    app.state.precompute = None
    if cache is not None:  # listens before the first load: the start-up versions are filled too
        app.state.precompute = Precomputer(
            cache=cache,
            reads=reads,
            session_factory=session_factory,
            catalog=app.state.catalog,
            metrics=metrics,
            max_users=settings.cache_precompute_users,
            # Where the hot path computes misses on the loop, the precompute does too.
            loop=asyncio.get_running_loop()
            if reads.on_event_loop and memory_tier(cache) is cache
            else None,
        )
        registry.add_swap_listener(app.state.precompute.on_swap)
    app.state.serving = Serving(
        session_factory,
        registry,
        app.state.catalog,
        metrics,
        limiter,
        reads,
        cache,
        memory=memory_tier(cache),
        hot_path=settings.hot_path,
        inline_misses=InlineMisses(settings.inline_miss_ms / 1000)
        if settings.inline_miss_ms > 0
        else None,
    )
    app.state.startup_error = None
    log.info("starting on device %s with database %s", device, engine.url.render_as_string())
    await run_in_threadpool(load_active_models, app)
    if app.state.startup_error is None:
        try:
            await run_in_threadpool(app.state.retrain.recover_interrupted)
        except SQLAlchemyError as exc:
            log.warning("cannot check for interrupted retrain jobs: %s", exc)
    log.info("serving models: %s", registry.model_types() or "none")
    if settings.train_missing and app.state.startup_error is None:
        missing = [m for m in settings.default_model_types if m not in registry.model_types()]
        if missing:
            log.info("training the missing models in the background: %s", ", ".join(missing))
            app.state.retrain.train_missing(missing)
    app.state.model_sync = ActiveVersionSync(registry, session_factory, settings.model_sync_s)
    app.state.model_sync.start()
    watch = LoopWatch(settings.loop_stall_ms, metrics) if settings.loop_stall_ms > 0 else None
    if watch is not None:
        watch.start()
    unfreeze = freeze_start_up_objects()  # no full-collection pauses over them (cpu_budget)
    try:
        yield
    finally:
        unfreeze()
        if watch is not None:
            watch.stop()
        app.state.model_sync.stop()
        await run_in_threadpool(app.state.retrain.shutdown)
        if app.state.precompute is not None:
            await run_in_threadpool(app.state.precompute.stop)
        if cache is not None:
            cache.close()
        reads.stop()
        engine.dispose()
        restore_threads()
        restore_switch()


def _error(code: int, detail: object) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


def install_error_handlers(app: FastAPI) -> None:
    """Every error is JSON ``{"detail": ...}`` with the right status; never a bare 500 page."""

    app.add_exception_handler(StarletteHTTPException, http_error)

    @app.exception_handler(BodyError)
    async def bad_body(_: Request, exc: BodyError) -> JSONResponse:
        return _error(exc.status_code, exc.detail)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _error(status.HTTP_404_NOT_FOUND, str(exc))

    @app.exception_handler(ConflictError)
    @app.exception_handler(RetrainConflictError)
    @app.exception_handler(CrudError)  # any other refused write: a conflict with stored state
    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return _error(status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(InvalidValueError)
    @app.exception_handler(InvalidRequestError)
    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))

    @app.exception_handler(ModelNotLoadedError)
    async def not_loaded(_: Request, exc: ModelNotLoadedError) -> JSONResponse:
        code = status.HTTP_422_UNPROCESSABLE_CONTENT if exc.unknown_type else 503
        return _error(code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, errors)

    @app.exception_handler(SQLAlchemyError)
    async def database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error: %s", exc)
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, "the database is unavailable")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal server error")


class DeepRecAPI(FastAPI):
    """The FastAPI application with the recommendation hot path (:mod:`app.api.hot_path`) in
    front of its whole middleware stack: each request goes to ``front`` first, which answers
    plainly valid recommendation reads and rating writes itself and hands every other request
    to :meth:`stack`."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await self.stack(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's middleware stack and routes."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> DeepRecAPI:
    """A new application; ``settings`` default to the environment (``DEEPREC_*``)."""
    settings = settings or get_settings()
    app = DeepRecAPI(
        title="DeepRec",
        summary="Recommendations from RBMs, autoencoders, DBNs and GANs.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.include_router(api_router)
    install_studio(app)
    install_error_handlers(app)
    app.add_middleware(RequestBodyGuard, max_bytes=settings.max_upload_bytes)
    app.add_middleware(PrometheusMiddleware, metrics=app.state.metrics)
    app.front = RecommendationHotPath(
        app.stack,
        state=app.state,
        metrics=app.state.metrics,
        max_body_bytes=settings.max_upload_bytes,
    )
    return app
