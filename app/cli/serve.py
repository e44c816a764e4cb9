"""``deeprec bootstrap`` (train + activate the default models that have no active version) and
``deeprec serve`` (uvicorn with ``app.main:create_app`` as factory).

A fast first start: ``deeprec bootstrap --required-only`` trains what ``/readyz`` needs
(``DEEPREC_REQUIRED_MODELS``), then ``deeprec serve --train-missing`` answers at once and trains
the other default families as ordinary jobs, one at a time, swapping each in when it is ready.

Bootstrap goes through the SAME code path as the admin retrain endpoint: a ``training_job`` row,
the ratings exported from the database, ``deeprec train MODEL`` in a worker process, the manifest
checked, a ``model_version`` registered and activated.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from app.cli.common import fail, print_json, settings
from app.core.config import get_settings
from app.crud import count_ratings, get_active_model_version
from app.db.errors import DatabaseError
from app.db.migrate import require_current_schema
from app.db.session import create_db_engine, create_session_factory
from app.models import JobStatus
from app.services.retrain import RetrainConflictError, RetrainManager, RetrainRequest
from ml.registry import BY_NAME, model_types


class ProgressBar:
    """``deeprec bootstrap``'s view of a job's progress row: one tqdm bar per training stage."""

    def __init__(self, model_type: str) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.model_type = model_type
        self.bar: Any = None
        self.stage: str | None = None

    def __call__(self, _job_id: int, progress: dict[str, Any]) -> None:
        if "epoch" not in progress:
            return
        stage = str(progress.get("stage") or self.model_type)
        epochs = progress.get("epochs")
        if (
            self.bar is None
            or stage != self.stage
            or epochs != self.bar.total
            or progress["epoch"] < self.bar.n
        ):
            self.close()
            self.stage = stage
            self.bar = self._tqdm(
                total=epochs,
                desc=f"{self.model_type}: {stage}",
                unit="epoch",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.bar.update(int(progress["epoch"]) - self.bar.n)
        if progress.get("figure") is not None and progress.get("value") is not None:
            self.bar.set_postfix_str(f"{progress['figure']}={progress['value']:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def bootstrap(
    models: str | None = typer.Option(
        None, help="Comma-separated model types (default: DEEPREC_DEFAULT_MODELS, e.g. rbm,ease)."
    ),
    epochs: int | None = typer.Option(None, help="Epochs for the neural models (default: theirs)."),
    force: bool = typer.Option(False, help="Retrain even the models that have an active version."),
    required_only: bool = typer.Option(
        False,
        help="Train only DEEPREC_REQUIRED_MODELS (what /readyz needs), for a fast first start; "
        "`deeprec serve --train-missing` trains the others afterwards.",
    ),
    progress: bool = typer.Option(True, help="Show each training job's progress bar."),
) -> None:
    """Train, register and activate each default model type that has no active version."""
    s = settings()
    if models:
        wanted = [m.strip() for m in models.split(",") if m.strip()]
    elif required_only:
        wanted = s.required_model_types
    else:
        wanted = s.default_model_types
    engine = create_db_engine(s.resolved_database_url)
    try:
        require_current_schema(engine)
    except DatabaseError as exc:
        fail(f"{exc} (run `deeprec db upgrade` and `deeprec data load` first)")
    session_factory = create_session_factory(engine)
    with session_factory() as session:
        if count_ratings(session=session) == 0:
            fail("the database holds no ratings: run `deeprec data load` first")
    manager = RetrainManager(settings=s, session_factory=session_factory, registry=None)
    # A start: jobs left `running` by a killed start-up are failed (with the reason) first.
    manager.recover_interrupted()
    report: dict[str, str] = {}
    for model_type in wanted:
        with session_factory() as session:
            active = get_active_model_version(session=session, model_type=model_type)
        if active is not None and not force:
            report[model_type] = f"already active: {active.version}"
            continue
        if model_type not in BY_NAME:
            report[model_type] = f"skipped: unknown model type; known: {', '.join(model_types())}"
            typer.echo(f"warning: {model_type}: {report[model_type]}", err=True)
            continue
        request = RetrainRequest(model_type, {}, epochs=epochs)
        try:
            job = manager.create_job(request)
        except RetrainConflictError as exc:
            report[model_type] = f"skipped: {exc}"
            continue
        typer.echo(f"training {model_type} (job {job.id})...", err=True)
        bar = ProgressBar(model_type) if progress else None
        manager.on_progress = bar
        try:
            job = manager.run_job(job.id, request)
        finally:
            if bar is not None:
                bar.close()
        if job.status == JobStatus.succeeded:
            with session_factory() as session:
                active = get_active_model_version(session=session, model_type=model_type)
            report[model_type] = f"trained and activated: {active.version if active else '?'}"
            typer.echo(f"{model_type}: {report[model_type]}", err=True)
        else:
            report[model_type] = f"failed: {job.error}"
            typer.echo(f"warning: {model_type}: {job.error}", err=True)
    engine.dispose()
    print_json(report)
    if not any(v.startswith(("already active", "trained")) for v in report.values()):
        fail("no model is active: the service would answer with popularity only")


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 inside a container)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads every model)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    access_log: bool = typer.Option(True, help="Log every request."),
    healthcheck_timeout: int | None = typer.Option(
        None,
        min=1,
        help="With --workers > 1: seconds a worker may take to answer the supervisor's health "
        "ping before it is killed as hung (default: DEEPREC_WORKER_HEALTHCHECK_S, 120).",
    ),
    train_missing: bool = typer.Option(
        False,
        help="Once serving, train the default models that have no active version, one job at "
        "a time (visible in the jobs API), and swap each in when ready.",
    ),
) -> None:
    """Run the API with uvicorn (``app.main:create_app`` as factory).

    With several workers, uvicorn's supervisor pings each one and kills those that do not answer
    within ``timeout_worker_healthcheck`` (5 s by default). A worker starting up imports torch
    (a C extension that holds the GIL while it loads) and loads every model: on a busy machine
    that outlasts 5 s, and the worker was killed and restarted for ever. The timeout here is
    long enough for a slow start; a really hung worker is still replaced, just later.
    """
    import uvicorn

    if train_missing:  # the workers read their settings from the environment
        os.environ["DEEPREC_TRAIN_MISSING"] = "true"
        get_settings.cache_clear()

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        proxy_headers=True,
        timeout_worker_healthcheck=healthcheck_timeout or settings().worker_healthcheck_s,
    )
