"""Streaming load from MovieLens files: chunked, exact, idempotent, and all or nothing even when
the loading process is killed mid-load (a real subprocess, SIGKILL)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import crud
from app.crud import bulk
from app.db.session import create_session_factory
from ml.data.movielens import RatingsFiles, folder_files, read_ratings_file
from ml.data.schema import empty_items
from ml.data.synthetic import shape_named, write_dataset

ROOT = Path(__file__).resolve().parents[3]
SMALL = shape_named("ml-1m").scaled(0.01)  # 604 users, 371 items, 12,080 ratings


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic-ml-1m")
    write_dataset(SMALL, folder, seed=1)
    return folder


def _source(files: RatingsFiles, chunk_rows: int) -> crud.LoadSource:
    items = files.items if files.items is not None else empty_items(np.empty(0, dtype=np.int64))
    return crud.LoadSource(files.name, items, files.users, files.chunks(chunk_rows))


def test_chunked_file_load_is_exact_and_idempotent(session: Session, small_folder: Path) -> None:
    files = folder_files(small_folder, "small")
    ticks: list[int] = []
    first = crud.stream_load(session=session, source=_source(files, 1_000), progress=ticks.append)
    assert (first.users_added, first.items_added, first.ratings_added) == (
        SMALL.users,
        SMALL.items,
        SMALL.ratings,
    )
    assert sum(ticks) == SMALL.ratings and len(ticks) == -(-SMALL.ratings // 1_000)
    stored = crud.all_ratings_frame(session=session)
    pd.testing.assert_frame_equal(stored, read_ratings_file(files.ratings_path))
    item = crud.get_item(session=session, item_id=1)
    assert item is not None and item.title.startswith("Synthetic Movie 1") and item.genres
    user = crud.get_user(session=session, user_id=1)
    assert user is not None and user.gender in ("F", "M") and user.age is not None

    again = crud.stream_load(session=session, source=_source(files, 5_000))
    assert again.rows_added == 0 and again.ratings_total == SMALL.ratings


def test_deferred_constraints_come_back(
    session: Session, small_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL checks foreign keys and builds plain indexes after a big insert: they must be
    there again afterwards, with the same names."""
    monkeypatch.setattr(bulk, "FK_RECHECK_ROWS", 1)
    crud.stream_load(session=session, source=_source(folder_files(small_folder, "s"), 4_000))
    assert crud.count_ratings(session=session) == SMALL.ratings
    with pytest.raises(IntegrityError):
        session.execute(
            text("INSERT INTO rating (user_id, item_id, rating) VALUES (999999, 1, 3.0)")
        )
        session.flush()
    session.rollback()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        names = session.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'rating'")
        ).scalars()
        assert "ix_rating_item_id" in set(names)


def test_a_bad_rating_in_a_late_chunk_leaves_nothing(session: Session, tmp_path: Path) -> None:
    lines = [f"{u},{i},4,0" for u in range(1, 6) for i in range(1, 6)] + ["6,1,9,0"]
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines))
    files = folder_files(tmp_path, "bad")
    with pytest.raises(crud.InvalidValueError, match="outside"):
        crud.stream_load(session=session, source=_source(files, 4))
    assert crud.count_ratings(session=session) == crud.count_users(session=session) == 0


def _load_command(folder: Path, url: str) -> subprocess.Popen[str]:
    """``deeprec data load`` in a real process (the data command group alone: no torch import,
    so the test starts fast), chunks small enough that the load takes many round trips."""
    code = "from app.cli.common import run_cli; from app.cli.data import app; run_cli(app)"
    return subprocess.Popen(
        [sys.executable, "-c", code, "load", "--ratings", str(folder), "--chunk-rows", "200"],
        cwd=ROOT,
        env={**os.environ, "DEEPREC_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_killed_load_leaves_nothing_then_a_rerun_completes(
    migrated_url: str, engine: Engine, small_folder: Path
) -> None:
    process = _load_command(small_folder, migrated_url)
    assert process.stderr is not None
    started = threading.Event()

    def watch() -> None:  # the progress bar says some ratings are in: kill it there
        buffer = ""
        while not started.is_set() and (char := process.stderr.read(1)):  # type: ignore[union-attr]
            buffer = (buffer + char)[-200:]
            counts = re.findall(r"\| *([\d.]+)k?/", buffer)
            if counts and float(counts[-1]) > 0:
                started.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert started.wait(timeout=120), "the load never reported progress"
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL  # killed, not finished
    with create_session_factory(engine)() as session:
        assert crud.count_ratings(session=session) == 0
        assert crud.count_users(session=session) == 0
        assert crud.all_item_ids(session=session) == []
        result = crud.stream_load(
            session=session, source=_source(folder_files(small_folder, "s"), 5_000)
        )
    assert result.ratings_total == SMALL.ratings
