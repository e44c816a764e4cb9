"""``deeprec db``: schema migrations (Alembic) for the database at ``DEEPREC_DATABASE_URL``."""

from __future__ import annotations

import typer

from app.cli.common import fail, settings
from app.db.errors import DatabaseError
from app.db.session import create_db_engine, display_url

# Alembic is imported inside the commands: it costs about a second, which every other
# ``deeprec`` command would otherwise pay at start-up.

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


def _url() -> str:
    return settings().resolved_database_url


def _migrate(direction: str, revision: str) -> None:
    from app.db import migrate

    url = _url()
    try:
        getattr(migrate, direction)(url, revision)
    except DatabaseError as exc:
        fail(str(exc))
    _echo_current(url)


@app.command()
def upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the latest)."),
) -> None:
    """Migrate the database up to REVISION (creates the SQLite file when missing)."""
    _migrate("upgrade", revision)


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision; `base` drops every table."),
) -> None:
    """Migrate the database down to REVISION."""
    _migrate("downgrade", revision)


@app.command()
def current() -> None:
    """Print the database's revision and whether it is the latest."""
    _echo_current(_url())


def _echo_current(url: str) -> None:
    from app.db import migrate

    try:
        engine = create_db_engine(url)
        try:
            revision = migrate.current_revision(engine)
        finally:
            engine.dispose()
    except DatabaseError as exc:
        fail(str(exc))
    head = migrate.head_revision()
    state = "latest" if revision == head else f"behind {head}: run `deeprec db upgrade`"
    typer.echo(f"{display_url(url)}: {revision or 'not migrated'} ({state})")
