"""The initial revision upgrades, downgrades and upgrades again on SQLite and PostgreSQL, and the
schema it builds is exactly the ORM's."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import app.models  # noqa: F401
from app.db import migrate
from app.db.base import Base
from app.db.session import create_db_engine

TABLES = {"app_user", "item", "rating", "model_version", "training_job"}


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_db_engine(url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert _tables(db_url) == set()
    migrate.upgrade(db_url)
    assert _tables(db_url) == TABLES
    assert _revision(db_url) == migrate.head_revision() == "0002_jobs_versions_content"

    migrate.downgrade(db_url, "base")
    assert _tables(db_url) == set()
    assert _revision(db_url) is None

    migrate.upgrade(db_url)
    assert _tables(db_url) == TABLES
    assert _revision(db_url) == "0002_jobs_versions_content"


def test_migrated_schema_matches_the_orm(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_named_constraints_and_indexes(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = create_db_engine(db_url)
    try:
        inspector = inspect(engine)
        rating_uniques = {u["name"] for u in inspector.get_unique_constraints("rating")}
        rating_checks = {c["name"] for c in inspector.get_check_constraints("rating")}
        rating_indexes = {i["name"] for i in inspector.get_indexes("rating")}
        version_indexes = {i["name"]: i for i in inspector.get_indexes("model_version")}
        fks = {fk["name"] for fk in inspector.get_foreign_keys("rating")}
    finally:
        engine.dispose()
    assert "uq_rating_user_id_item_id" in rating_uniques
    assert "ck_rating_rating_range" in rating_checks
    assert "ix_rating_item_id" in rating_indexes
    assert version_indexes["uq_model_version_one_active"]["unique"]
    assert fks == {"fk_rating_user_id_app_user", "fk_rating_item_id_item"}
