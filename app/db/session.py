"""Engines and session factories from a URL.

SQLite (the embedded default) runs in WAL mode with foreign keys enforced and a busy timeout, so
the API and a loader can share the file; PostgreSQL is the scale path. Connection problems are
turned into one-line :class:`~app.db.errors.DatabaseError` messages with the password hidden.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import DBAPIError as SQLAlchemyDBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.db.errors import DatabaseUnavailableError, DatabaseURLError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def parse_url(url: str | URL) -> URL:
    """The URL parsed, or a :class:`DatabaseURLError` saying what is wrong with it."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(f"invalid database URL {url!r}: {exc}") from exc


def display_url(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except DatabaseURLError:
        return "<invalid URL>"


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe under WAL, much faster commits
    finally:
        cursor.close()


def create_db_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing.

    Raises :class:`DatabaseURLError` for an unparsable URL or a driver that is not installed.
    Nothing connects yet: call :func:`check_connection` to find out whether the server answers.
    """
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}  # used from FastAPI's threadpool
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError, TypeError) as exc:
        raise DatabaseURLError(
            f"unsupported database URL {display_url(parsed)}: {exc}".splitlines()[0]
        ) from exc
    if is_sqlite:
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def check_connection(engine: Engine) -> None:
    """Connect once; a :class:`DatabaseUnavailableError` with a one-line reason if that fails."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyDBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise DatabaseUnavailableError(
            f"cannot reach the database at {display_url(engine.url)}: {reason}"
        ) from exc


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (``expire_on_commit=False``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
