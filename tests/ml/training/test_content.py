"""The content family end to end: train on planted data, checkpoint round trip, new items served
from their metadata without retraining."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ml.data.schema import RatingsDataset, normalise_ratings
from ml.inference import load_model, load_recommender
from ml.inference.content import ContentRecommender, ItemMeta
from ml.models.content import ContentConfig
from ml.training.base import TrainingOptions
from ml.training.content import catalogue, train_content, train_hybrid
from tests.conftest import planted_frame

N_ITEMS = 30
GENRES = ("Action", "Comedy")  # items 1..15 Action, 16..30 Comedy; odd users like Comedy
CONFIG = ContentConfig(code_dim=8, n_hidden=32, epochs=200, batch_size=16, ease_l2=10.0)
OPTIONS = TrainingOptions(device="cpu", seed=3, progress=False)


def _genre(item_id: int) -> str:
    return GENRES[0] if item_id <= N_ITEMS // 2 else GENRES[1]


@pytest.fixture(scope="module")
def dataset() -> RatingsDataset:
    ratings = normalise_ratings(planted_frame(n_users=40, n_items=N_ITEMS, per_user=8, seed=0))
    ids = list(range(1, N_ITEMS + 3))  # two catalogue items nobody rated
    items = pd.DataFrame(
        {
            "item_id": pd.Series(ids, dtype="int64"),
            "title": [f"{_genre(i)} film {i}" for i in ids],
            "year": pd.Series([1990 + i % 10 for i in ids], dtype="Int64"),
            "genres": [[_genre(i)] for i in ids],
            "description": [f"a {_genre(i).lower()} story" for i in ids],
        }
    )
    return RatingsDataset(name="planted", ratings=ratings, items=items, source="test")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, dataset: RatingsDataset) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("content")
    return {
        "content": save_checkpoint(train_content(dataset, CONFIG, OPTIONS), root / "content"),
        "hybrid": save_checkpoint(train_hybrid(dataset, CONFIG, OPTIONS), root / "hybrid"),
    }


def test_catalogue_covers_rated_and_unrated_items(dataset: RatingsDataset) -> None:
    items = catalogue(dataset)
    assert [i.id for i in items] == list(range(1, N_ITEMS + 3))
    assert items[0].description == "a action story"


@pytest.mark.parametrize("model_type", ["content", "hybrid"])
def test_checkpoint_round_trip_and_figures(saved: dict[str, Path], model_type: str) -> None:
    checkpoint = load_checkpoint(saved[model_type], model_type=model_type)
    assert checkpoint.metrics["ndcg@10_all"] > 0
    first = load_recommender(saved[model_type])
    second = load_recommender(saved[model_type])
    assert isinstance(first, ContentRecommender)
    ratings = {i: 5.0 for i in range(16, 24)}
    answer = first.recommend(ratings, 5)
    assert answer == second.recommend(ratings, 5)  # deterministic after a reload
    assert len({i for i, _ in answer}) == 5 and not set(ratings) & {i for i, _ in answer}
    assert all(_genre(i) == "Comedy" for i, _ in answer if i <= N_ITEMS)


def test_training_is_deterministic_under_a_seed(dataset: RatingsDataset) -> None:
    a = train_content(dataset, CONFIG, OPTIONS).tensors["item_codes"]
    b = train_content(dataset, CONFIG, OPTIONS).tensors["item_codes"]
    assert np.array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("model_type", ["content", "hybrid"])
def test_a_new_item_is_recommended_and_has_neighbours_without_retraining(
    saved: dict[str, Path], dataset: RatingsDataset, model_type: str
) -> None:
    model = load_recommender(saved[model_type])
    assert isinstance(model, ContentRecommender)
    new = ItemMeta(500, "Comedy film 500", 1995, ("Comedy",), "a comedy story")
    model.sync_catalogue([*catalogue(dataset), new])
    comedy_fan = {i: 5.0 for i in range(16, 24)}
    top = [i for i, _ in model.recommend(comedy_fan, 8)]
    assert 500 in top
    action_fan = {i: 5.0 for i in range(1, 9)}
    assert 500 not in [i for i, _ in model.recommend(action_fan, 8)]
    neighbours = model.similar_items(500, 5)
    assert neighbours is not None and all(_genre(i) == "Comedy" for i, _ in neighbours)
    assert 500 in [i for i, _ in model.similar_items(20, 16) or []]
    assert model.similar_items(999, 5) is None


def test_a_damaged_checkpoint_is_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    checkpoint = load_checkpoint(saved["hybrid"])
    checkpoint.tensors["mapping"] = checkpoint.tensors["mapping"][:, :3]
    save_checkpoint(checkpoint, tmp_path / "bad")
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_model(tmp_path / "bad")


def test_an_empty_catalogue_answers_nothing(saved: dict[str, Path]) -> None:
    model = load_recommender(saved["content"])
    assert isinstance(model, ContentRecommender)
    model.sync_catalogue([])
    assert model.recommend({1: 5.0}, 5) == []
    assert model.similar_items(1, 5) is None
