"""The migration tests reuse the database fixtures of tests/app."""

from tests.app.conftest import db_kind, db_url, sqlite_url  # noqa: F401
