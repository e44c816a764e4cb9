"""The synthetic MovieLens-shaped generator: exact shape, seeded, readable by the loaders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ml.data.errors import DataError
from ml.data.movielens import load_folder
from ml.data.synthetic import SHAPES, SyntheticShape, shape_named, write_dataset

SMALL_DAT = shape_named("ml-1m").scaled(0.01)  # whole stars, ratings.dat/movies.dat/users.dat
SMALL_CSV = shape_named("ml-25m").scaled(0.0002)  # half stars, ratings.csv/movies.csv


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("shape", [SMALL_DAT, SMALL_CSV], ids=["dat", "csv"])
def test_files_have_the_exact_shape_and_load(tmp_path: Path, shape: SyntheticShape) -> None:
    write_dataset(shape, tmp_path, seed=3)
    data = load_folder(tmp_path, shape.name)
    assert data.stats() == {"ratings": shape.ratings, "users": shape.users, "items": shape.items}
    per_user = data.ratings.groupby("user_id").size()
    assert per_user.min() >= shape.min_per_user
    ratings = data.ratings["rating"].to_numpy()
    allowed = np.arange(0.5, 5.01, 0.5) if shape.half_stars else np.arange(1.0, 5.01)
    assert set(np.unique(ratings)) <= set(allowed)
    if shape.half_stars:
        assert (ratings % 1 == 0.5).any()
    stamps = data.ratings["timestamp"].to_numpy()
    assert stamps.min() >= shape.first_timestamp and stamps.max() <= shape.last_timestamp
    assert len(data.items) == shape.items and data.items["year"].notna().all()
    assert (data.users is not None) == shape.with_users_file


def test_popularity_is_skewed_and_ratings_carry_signal(tmp_path: Path) -> None:
    write_dataset(SMALL_DAT, tmp_path, seed=0)
    ratings = load_folder(tmp_path, "x").ratings
    per_item = ratings.groupby("item_id").size().sort_values(ascending=False).to_numpy()
    top_decile = per_item[: len(per_item) // 10].sum() / per_item.sum()
    assert top_decile > 0.3  # Zipf: a tenth of the items take far more than a tenth of ratings
    # Item means differ far more than noise alone would make them (biases + taste).
    means = ratings.groupby("item_id")["rating"].mean()
    assert means.std() > 0.3


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_dataset(SMALL_CSV, tmp_path / name, seed=seed)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["ratings.csv"] != _digest(tmp_path / "c")["ratings.csv"]


def test_refuses_to_overwrite_and_impossible_shapes(tmp_path: Path) -> None:
    write_dataset(SMALL_DAT, tmp_path, seed=0)
    with pytest.raises(DataError, match="already exists"):
        write_dataset(SMALL_DAT, tmp_path, seed=0)
    with pytest.raises(DataError, match="cannot be spread"):
        SyntheticShape("bad", 10, 10, 5, half_stars=False, layout="dat",
                       first_timestamp=0, last_timestamp=1)  # fmt: skip
    with pytest.raises(DataError, match="unknown shape"):
        shape_named("ml-2m")


def test_published_shapes() -> None:
    assert [(s.users, s.items, s.ratings) for s in SHAPES.values()] == [
        (6_040, 3_706, 1_000_209),
        (69_878, 10_677, 10_000_054),
        (162_541, 59_047, 25_000_095),
    ]


@pytest.mark.slow
def test_a_collaborative_model_beats_popularity(tmp_path: Path) -> None:
    """Users choose and rate by taste, so EASE must do clearly better than popularity."""
    from ml.data.splits import protocol_split
    from ml.evaluation.evaluate import evaluate_ranking
    from ml.models.baselines import EASE, EASEConfig, Popularity

    write_dataset(SMALL_DAT, tmp_path, seed=0)
    split = protocol_split(load_folder(tmp_path, "x").ratings)
    ndcg = {
        name: evaluate_ranking(model.score, split.train, split.test)["ndcg@10_all"]
        for name, model in (
            ("popularity", Popularity.fit(split.train)),
            ("ease", EASE.fit(split.train, EASEConfig(100.0))),
        )
    }
    assert ndcg["ease"] > 1.2 * ndcg["popularity"]
