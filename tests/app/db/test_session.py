"""Engines: SQLite pragmas, one-line errors for bad or unreachable URLs, the schema check."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text

from app.db import migrate
from app.db.errors import DatabaseUnavailableError, DatabaseURLError, SchemaNotMigratedError
from app.db.session import check_connection, create_db_engine, display_url
from app.models import ModelVersion
from tests.factories import make_model_version


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_file_folder_is_created(tmp_path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}")
    try:
        check_connection(engine)
    finally:
        engine.dispose()
    assert (tmp_path / "a" / "b" / "x.db").exists()


def test_unreachable_server_is_one_clear_line() -> None:
    url = f"postgresql+psycopg://deeprec:secret@127.0.0.1:{_free_port()}/nowhere"
    engine = create_db_engine(url)
    with pytest.raises(DatabaseUnavailableError) as caught:
        check_connection(engine)
    message = str(caught.value)
    assert message.startswith("cannot reach the database at postgresql+psycopg://deeprec:***@")
    assert "secret" not in message
    assert "\n" not in message


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y"])
def test_bad_url_is_refused(url: str) -> None:
    with pytest.raises(DatabaseURLError) as caught:
        create_db_engine(url)
    assert "\n" not in str(caught.value)


def test_display_url_hides_the_password() -> None:
    assert display_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"


def test_schema_check_before_and_after_upgrade(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        with pytest.raises(SchemaNotMigratedError, match="run `deeprec db upgrade`"):
            migrate.require_current_schema(engine)
        migrate.upgrade(db_url)
        migrate.require_current_schema(engine)
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc(engine: Engine, session) -> None:
    moment = datetime(2021, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    row = make_model_version(session, created_at=moment)
    session.expunge_all()
    stored = session.scalar(select(ModelVersion.created_at).filter_by(id=row.id))
    assert stored == moment
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == datetime(2021, 6, 1, 10, 0, tzinfo=UTC)


def test_naive_timestamps_are_refused(sqlite_engine: Engine) -> None:
    from app.db.session import create_session_factory

    with (
        create_session_factory(sqlite_engine)() as session,
        pytest.raises(Exception, match="naive"),
    ):
        make_model_version(session, created_at=datetime(2021, 6, 1, 12, 0))
