"""Database fixtures for every test under tests/app: a real SQLite file and a real PostgreSQL.

Tests using ``db_url`` (an EMPTY database), ``migrated_url``, ``engine``, ``session_factory`` or
``session`` (schema at head, by Alembic) run twice: on a fresh SQLite file and on a fresh
PostgreSQL database (created with a unique name on the server of ``DEEPREC_TEST_DATABASE_URL``
and dropped afterwards). The PostgreSQL case skips with a reason when that variable is unset.
Use ``sqlite_url`` / ``sqlite_engine`` for tests that only need SQLite.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db import migrate
from app.db.admin import temporary_postgres_database
from app.db.session import create_db_engine, create_session_factory

POSTGRES_URL_ENV = "DEEPREC_TEST_DATABASE_URL"
TEST_DB_PREFIX = "deeprec_test"
POSTGRES_SKIP_REASON = (
    f"PostgreSQL tests need {POSTGRES_URL_ENV} (e.g. "
    "postgresql+psycopg://postgres@127.0.0.1:5432/test); it is unset, so only SQLite runs"
)


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db-template") / "deeprec.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _migrated_postgres_template() -> Iterator[str]:
    """A database migrated once per session; each test clones it (CREATE DATABASE ... TEMPLATE),
    which is much faster than migrating every test's database."""
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    with temporary_postgres_database(admin_url, prefix=TEST_DB_PREFIX) as url:
        migrate.upgrade(url)
        yield str(make_url(url).database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Which database a test runs on: each test using the fixtures below runs on both."""
    if request.param == "postgres" and postgres_admin_url() is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    return str(request.param)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'deeprec.db'}"


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """An EMPTY database: a SQLite file, or a throw-away PostgreSQL database."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with temporary_postgres_database(str(postgres_admin_url()), prefix=TEST_DB_PREFIX) as url:
        yield url


@pytest.fixture
def migrated_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with the schema at head (a copy of a template migrated once per session)."""
    if db_kind == "sqlite":
        template: Path = request.getfixturevalue("_migrated_sqlite_template")
        target = tmp_path / "migrated.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("_migrated_postgres_template")
    with temporary_postgres_database(
        str(postgres_admin_url()), prefix=TEST_DB_PREFIX, template=template_name
    ) as url:
        yield url


def _engine(url: str) -> Iterator[Engine]:
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on a migrated database, SQLite then PostgreSQL."""
    yield from _engine(migrated_url)


@pytest.fixture
def sqlite_engine(tmp_path: Path, _migrated_sqlite_template: Path) -> Iterator[Engine]:
    """A migrated SQLite file only (for tests where the database kind does not matter)."""
    target = tmp_path / "only-sqlite.db"
    shutil.copyfile(_migrated_sqlite_template, target)
    yield from _engine(f"sqlite:///{target}")


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session
