"""Checkpoint paths are recorded relative to the checkpoint folder: a data folder moved or
restored from a backup keeps serving its own files. Old absolute rows keep loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.crud import get_active_model_version, register_model_version
from app.db.session import create_session_factory
from app.services.registry import (
    ModelRegistry,
    resolve_checkpoint_path,
    stored_checkpoint_path,
    version_kwargs,
)
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.schema import RatingsDataset, empty_items, normalise_ratings
from ml.training.baselines import EASETrainingConfig, train_ease
from tests.conftest import planted_frame


@pytest.fixture(scope="module")
def ease_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ratings = normalise_ratings(planted_frame())
    dataset = RatingsDataset("planted", ratings, empty_items(ratings["item_id"].to_numpy()))
    root = tmp_path_factory.mktemp("paths")
    return save_checkpoint(train_ease(dataset, EASETrainingConfig(l2=10.0)), root / "ease")


def test_paths_inside_the_folder_are_stored_relative(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    assert stored_checkpoint_path(root / "ease" / "v1", root) == "ease/v1"
    assert stored_checkpoint_path(tmp_path / "elsewhere", root) == str(tmp_path / "elsewhere")
    assert resolve_checkpoint_path("ease/v1", root) == root / "ease" / "v1"
    assert resolve_checkpoint_path(tmp_path / "elsewhere", root) == tmp_path / "elsewhere"


def test_a_moved_data_folder_keeps_serving(
    sqlite_engine: Engine, tmp_path: Path, ease_checkpoint: Path
) -> None:
    old_root = tmp_path / "old" / "checkpoints"
    shutil.copytree(ease_checkpoint, old_root / "ease" / "v1")
    shutil.copytree(ease_checkpoint, old_root / "ease" / "v0")
    sha = checkpoint_sha256(ease_checkpoint)
    with create_session_factory(sqlite_engine)() as session:
        register_model_version(
            session=session,
            model_type="ease",
            checkpoint_path=stored_checkpoint_path(old_root / "ease" / "v1", old_root),
            sha256=sha,
            version="v1",
            activate=True,
        )
        old_style = register_model_version(  # as rows were written before: absolute
            session=session,
            model_type="ease",
            checkpoint_path=str(old_root / "ease" / "v0"),
            sha256=sha,
            version="v0",
        )
        active = get_active_model_version(session=session, model_type="ease")
        assert active is not None and active.checkpoint_path == "ease/v1"
        active_kwargs, old_kwargs = version_kwargs(active), version_kwargs(old_style)

    assert ModelRegistry("cpu", checkpoint_dir=old_root).load(**old_kwargs).version == "v0"
    new_root = tmp_path / "restored" / "checkpoints"
    shutil.move(old_root.parent, new_root.parent)  # the whole data folder moves
    registry = ModelRegistry("cpu", checkpoint_dir=new_root)
    entry = registry.load(**active_kwargs)
    assert entry.version == "v1" and entry.checkpoint_path == str(new_root / "ease" / "v1")
    moved_old = registry.load(**old_kwargs)  # the absolute path is gone: found by its place
    assert moved_old.checkpoint_path == str(new_root / "ease" / "v0")
