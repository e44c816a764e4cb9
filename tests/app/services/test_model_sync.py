"""Workers pick up active versions changed by another process (retrain or rollback elsewhere)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.crud import activate_model_version, register_model_version
from app.db.session import create_db_engine, create_session_factory
from app.services.model_sync import ActiveVersionSync
from app.services.registry import ModelRegistry
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.schema import RatingsDataset, empty_items, normalise_ratings
from ml.training.baselines import EASETrainingConfig, train_ease
from tests.conftest import planted_frame


def test_sync_loads_what_another_process_activated(sqlite_engine: Engine, tmp_path: Path) -> None:
    ratings = normalise_ratings(planted_frame())
    dataset = RatingsDataset("planted", ratings, empty_items(ratings["item_id"].to_numpy()))
    a = save_checkpoint(train_ease(dataset, EASETrainingConfig(l2=10.0)), tmp_path / "a")
    b = save_checkpoint(train_ease(dataset, EASETrainingConfig(l2=40.0)), tmp_path / "b")
    factory = create_session_factory(sqlite_engine)
    registry = ModelRegistry("cpu")
    sync = ActiveVersionSync(registry, factory, interval_s=0)
    assert sync.sync_once() == []
    with factory() as session:
        v1 = register_model_version(
            session=session, model_type="ease", checkpoint_path=str(a), version="v1",
            sha256=checkpoint_sha256(a), activate=True,
        )  # fmt: skip
    assert sync.sync_once() == ["ease"]
    assert registry.get("ease").version == "v1"
    assert sync.sync_once() == []  # nothing changed
    with factory() as session:
        register_model_version(
            session=session, model_type="ease", checkpoint_path=str(b), version="v2",
            sha256=checkpoint_sha256(b), activate=True,
        )  # fmt: skip
    assert sync.sync_once() == ["ease"]
    assert registry.get("ease").version == "v2"
    # A version that cannot load is skipped (and not retried); the served one stays.
    with factory() as session:
        register_model_version(
            session=session, model_type="ease", checkpoint_path=str(tmp_path / "gone"),
            version="v3", activate=True,
        )  # fmt: skip
    assert sync.sync_once() == []
    assert registry.get("ease").version == "v2"
    assert "no checkpoint folder" in registry.errors()["ease"]
    with factory() as session:
        activate_model_version(session=session, version_id=v1.id)  # a rollback elsewhere
    assert sync.sync_once() == ["ease"]
    assert registry.get("ease").version == "v1"


def test_an_unmigrated_database_is_one_clear_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    sync = ActiveVersionSync(ModelRegistry("cpu"), create_session_factory(engine), interval_s=0.02)
    with caplog.at_level(logging.WARNING, logger="app.services.model_sync"):
        sync.start()
        time.sleep(0.5)  # many intervals
        sync.stop()
    engine.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == "app.services.model_sync"]
    assert len(lines) == 1, lines
    assert "no schema" in lines[0] and "deeprec db upgrade" in lines[0]
    assert "SELECT" not in lines[0] and "\n" not in lines[0]
