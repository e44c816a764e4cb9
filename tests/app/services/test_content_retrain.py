"""The content family through the worker boundary: the retrain job exports the items table
(free text included) beside the ratings, and `deeprec train content` learns from it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from app.core.config import Settings
from app.crud import bulk_load, get_active_model_version
from app.crud.items import create_item
from app.db.session import create_session_factory
from app.models import JobStatus
from app.services.registry import resolve_checkpoint_path
from app.services.retrain import RetrainManager, RetrainRequest, export_items, train_command
from ml.data.items import read_items_csv
from ml.data.schema import RatingsDataset, normalise_ratings
from ml.inference import load_model
from ml.inference.content import ContentRecommender
from tests.app.cli.runner import deeprec_in_process
from tests.conftest import planted_frame


def _planted() -> RatingsDataset:
    ratings = normalise_ratings(planted_frame(n_users=20, n_items=12, per_user=4, seed=1))
    ids = list(range(1, 13))
    items = pd.DataFrame(
        {
            "item_id": pd.Series(ids, dtype="int64"),
            "title": [f"Film {i}" for i in ids],
            "year": pd.Series([1990 + i for i in ids], dtype="Int64"),
            "genres": [["Action"] if i <= 6 else ["Comedy"] for i in ids],
        }
    )
    return RatingsDataset(name="planted", ratings=ratings, items=items, source="test")


def test_retrain_exports_item_metadata_and_trains_the_content_model(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    factory = create_session_factory(sqlite_engine)
    with factory() as session:
        bulk_load(session=session, dataset=_planted())
        create_item(
            session=session, title="Unrated", year=2026, genres=["Western"], description="dust"
        )
        assert export_items(session, tmp_path / "items.csv") == 13
    exported = read_items_csv(tmp_path / "items.csv")
    assert exported.set_index("item_id").loc[13, "description"] == "dust"
    assert exported.set_index("item_id").loc[1, "genres"] == ["Action"]

    settings = Settings(data_dir=tmp_path, database_url=str(sqlite_engine.url))
    jobs = RetrainManager(
        settings=settings,
        session_factory=factory,
        registry=None,
    )
    request = RetrainRequest("content", {"epochs": 5})
    job = jobs.run_job(jobs.create_job(request).id, request)
    assert job.status == JobStatus.succeeded, job.error
    with factory() as session:
        active = get_active_model_version(session=session, model_type="content")
    assert active is not None and "ndcg@10_all" in active.metrics
    model = load_model(
        resolve_checkpoint_path(active.checkpoint_path, settings.resolved_checkpoint_dir)
    )
    assert isinstance(model, ContentRecommender)
    assert "Western" in model.featurizer.genres  # learned from the exported items table
    assert 13 in model.items  # the unrated item is in the catalogue it serves


def test_the_worker_command_passes_the_items_file() -> None:
    line = train_command(
        "py", RetrainRequest("hybrid", {}), Path("r.csv"), Path("out"), Path("items.csv")
    )
    assert line[4] == "hybrid" and line[line.index("--items") + 1] == "items.csv"


def test_train_content_cli_and_its_one_line_errors(tmp_path: Path) -> None:
    data = _planted()
    data.ratings.to_csv(tmp_path / "ratings.csv", index=False)
    items = data.items.assign(genres=["|".join(g) for g in data.items["genres"]])
    items.to_csv(tmp_path / "items.csv", index=False)
    common = ["--ratings", str(tmp_path / "ratings.csv"), "--items", str(tmp_path / "items.csv")]
    done = deeprec_in_process(
        "train", "content", *common, "--out", str(tmp_path / "c"), "--epochs", "3"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model_type"] == "content"
    for extra, message in (
        (["--out", str(tmp_path / "c")], "already exists"),
        (["--out", str(tmp_path / "d"), "--params-json", '{"profile": "loud"}'], "profile"),
        (["--out", str(tmp_path / "d"), "--params-json", '{"n_features": 3}'], "learned"),
    ):
        failed = deeprec_in_process("train", "content", *common, *extra)
        assert failed.returncode == 2 and failed.stderr.startswith("error:"), failed.stderr
        assert message in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    missing = deeprec_in_process(
        "train",
        "hybrid",
        "--ratings",
        str(tmp_path / "ratings.csv"),
        "--items",
        str(tmp_path / "nope.csv"),
        "--out",
        str(tmp_path / "e"),
    )
    assert missing.returncode == 2 and "no such items file" in missing.stderr
