"""``deeprec db`` and ``deeprec data load`` against a real SQLite file (and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import crud
from app.cli.common import CLIError
from app.cli.main import cli
from app.core.config import get_settings
from app.db.session import create_db_engine, create_session_factory

RATINGS_CSV = "user_id,item_id,rating,timestamp\n1,10,4,100\n1,11,5,101\n2,10,3.5,102\n3,12,1,103\n"


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _invoke(monkeypatch: pytest.MonkeyPatch, url: str, *args: str):
    monkeypatch.setenv("DEEPREC_DATABASE_URL", url)
    get_settings.cache_clear()
    return CliRunner().invoke(cli, list(args))


def test_upgrade_load_twice_downgrade(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_database: None
) -> None:
    ratings = tmp_path / "mine.csv"
    ratings.write_text(RATINGS_CSV)

    result = _invoke(monkeypatch, db_url, "db", "current")
    assert result.exit_code == 0 and "not migrated" in result.output
    result = _invoke(monkeypatch, db_url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0002_jobs_versions_content (latest)" in result.output, result.output

    for added in ("added 3 users, 3 items, 4 ratings", "added 0 users, 0 items, 0 ratings"):
        result = _invoke(monkeypatch, db_url, "data", "load", "--ratings", str(ratings))
        assert result.exit_code == 0, result.output
        assert added in result.output and "(now 3 users, 3 items, 4 ratings)" in result.output

    engine = create_db_engine(db_url)
    try:
        with create_session_factory(engine)() as session:
            assert crud.get_user_ratings(session=session, user_id=1) == {10: 4.0, 11: 5.0}
    finally:
        engine.dispose()

    result = _invoke(monkeypatch, db_url, "db", "downgrade", "base")
    assert result.exit_code == 0 and "not migrated" in result.output


def test_load_into_unmigrated_database_says_to_upgrade(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_database: None
) -> None:
    ratings = tmp_path / "mine.csv"
    ratings.write_text(RATINGS_CSV)
    result = _invoke(monkeypatch, sqlite_url, "data", "load", "--ratings", str(ratings))
    assert isinstance(result.exception, CLIError)
    assert "not migrated; run `deeprec db upgrade`" in str(result.exception)


def test_out_of_range_ratings_file_is_refused(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_database: None
) -> None:
    ratings = tmp_path / "bad.csv"
    ratings.write_text("user_id,item_id,rating\n1,10,4\n1,11,9\n")
    assert _invoke(monkeypatch, sqlite_url, "db", "upgrade").exit_code == 0
    result = _invoke(monkeypatch, sqlite_url, "data", "load", "--ratings", str(ratings))
    assert isinstance(result.exception, CLIError)
    assert "outside 0.5..5.0" in str(result.exception)


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    """The real console entry point: no traceback, exit status 2, one ``error:`` line."""
    env = {**os.environ, "DEEPREC_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    env["DEEPREC_DATA_DIR"] = str(tmp_path)
    ratings = tmp_path / "mine.csv"
    ratings.write_text(RATINGS_CSV)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "data", "load", "--ratings", str(ratings)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the database at sqlite:///{tmp_path / 'fresh.db'} is not migrated; "
        "run `deeprec db upgrade`"
    ]
    assert "Traceback" not in done.stderr
