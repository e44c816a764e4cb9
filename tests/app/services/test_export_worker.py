"""A retrain job's ratings export runs in a process of its own (app/services/export_worker.py),
not in a thread of the serving worker: the same file as ``export_ratings``, the same one-line
error for an empty database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.core.config import Settings
from app.db.session import create_session_factory
from app.services.retrain import RetrainError, RetrainManager, export_ratings
from tests.factories import make_item, make_rating, make_user


def test_the_export_process_writes_what_export_ratings_writes(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    factory = create_session_factory(sqlite_engine)
    jobs = RetrainManager(
        settings=Settings(data_dir=tmp_path, database_url=str(sqlite_engine.url)),
        session_factory=factory,
        registry=None,
    )
    with pytest.raises(RetrainError, match="no ratings"):
        jobs._export_ratings(tmp_path / "empty.csv")
    with factory() as session:
        users = [make_user(session) for _ in range(3)]
        items = [make_item(session) for _ in range(4)]
        for u, user in enumerate(users):
            for item in items[u:]:
                make_rating(session, user=user, item=item, rating=1.5 + u)
        assert export_ratings(session, tmp_path / "in-process.csv") == 9
    assert jobs._export_ratings(tmp_path / "worker.csv") == 9
    assert (tmp_path / "worker.csv").read_bytes() == (tmp_path / "in-process.csv").read_bytes()
