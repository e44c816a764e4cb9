"""``deeprec bootstrap`` (train + activate the default models that have no active version) and
``deeprec serve`` (uvicorn with ``app.main:create_app`` as factory).

Bootstrap goes through the SAME code path as the admin retrain endpoint: a ``training_job`` row,
the ratings exported from the database, ``deeprec train MODEL`` in a worker process, the manifest
checked, a ``model_version`` registered and activated.
"""

from __future__ import annotations

import typer

from app.cli.common import fail, print_json, settings
from app.cli.train import app as train_app
from app.crud import count_ratings, get_active_model_version
from app.db.errors import DatabaseError
from app.db.migrate import require_current_schema
from app.db.session import create_db_engine, create_session_factory
from app.models import JobStatus
from app.services.retrain import (
    TRAIN_COMMANDS,
    RetrainConflictError,
    RetrainManager,
    RetrainRequest,
)


def _train_commands() -> set[str]:
    return {
        c.name or (c.callback.__name__ if c.callback else "") for c in train_app.registered_commands
    }


def bootstrap(
    models: str | None = typer.Option(
        None, help="Comma-separated model types (default: DEEPREC_DEFAULT_MODELS, e.g. rbm,ease)."
    ),
    epochs: int | None = typer.Option(None, help="Epochs for the neural models (default: theirs)."),
    force: bool = typer.Option(False, help="Retrain even the models that have an active version."),
) -> None:
    """Train, register and activate each default model type that has no active version."""
    s = settings()
    wanted = [m.strip() for m in models.split(",")] if models else s.default_model_types
    engine = create_db_engine(s.resolved_database_url)
    try:
        require_current_schema(engine)
    except DatabaseError as exc:
        fail(f"{exc} (run `deeprec db upgrade` and `deeprec data load` first)")
    session_factory = create_session_factory(engine)
    with session_factory() as session:
        if count_ratings(session=session) == 0:
            fail("the database holds no ratings: run `deeprec data load` first")
    available = _train_commands()
    manager = RetrainManager(settings=s, session_factory=session_factory, registry=None)
    report: dict[str, str] = {}
    for model_type in wanted:
        with session_factory() as session:
            active = get_active_model_version(session=session, model_type=model_type)
        if active is not None and not force:
            report[model_type] = f"already active: {active.version}"
            continue
        words, _ = TRAIN_COMMANDS.get(model_type, ((model_type,), True))
        if words[0] not in available:
            report[model_type] = f"skipped: no `deeprec train {model_type}` command in this build"
            typer.echo(f"warning: {model_type}: {report[model_type]}", err=True)
            continue
        typer.echo(f"training {model_type} (this may take a while)...", err=True)
        try:
            job = manager.create_job(RetrainRequest(model_type, {}, epochs=epochs))
        except RetrainConflictError as exc:
            report[model_type] = f"skipped: {exc}"
            continue
        job = manager.run_job(job.id, RetrainRequest(model_type, {}, epochs=epochs))
        if job.status == JobStatus.succeeded:
            with session_factory() as session:
                active = get_active_model_version(session=session, model_type=model_type)
            report[model_type] = f"trained and activated: {active.version if active else '?'}"
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
) -> None:
    """Run the API with uvicorn (``app.main:create_app`` as factory)."""
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        proxy_headers=True,
        # A worker importing torch and loading models on a busy machine can miss uvicorn's 5 s
        # health ping and be killed in a loop (#14 saw it with 2 workers on 2 busy cores).
        timeout_worker_healthcheck=60,
    )
