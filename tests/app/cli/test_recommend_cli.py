"""``deeprec recommend``: every rating in the data is history; new users are folded in."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from ml.checkpoint import save_checkpoint
from ml.data.schema import RatingsDataset, normalise_ratings
from ml.models.rbm import RBMConfig
from ml.models.rbm_config import RBMTraining
from ml.training.base import TrainingOptions
from ml.training.rbm import train_rbm_checkpoint
from tests.app.cli.runner import deeprec_in_process as deeprec
from tests.app.cli.test_foundation_cli import assert_one_line_error
from tests.conftest import planted_frame

NEW_USER = 999  # not in the training data
NEW_USER_ITEMS = (16, 17, 18, 19, 20)  # odd users' group: items 16..30


@pytest.fixture(scope="module")
def rbm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small RBM trained on the planted groups (the train fold suffices here)."""
    ratings = normalise_ratings(planted_frame())
    items = pd.DataFrame({"item_id": sorted(ratings["item_id"].unique())})
    checkpoint = train_rbm_checkpoint(
        RatingsDataset(name="planted", ratings=ratings, items=items),
        RBMConfig(
            n_hidden=8,
            training=RBMTraining(learning_rate=0.1, batch_size=8, epochs=30, cd_k_step_epochs=10),
        ),
        TrainingOptions(device="cpu", seed=3, progress=False),
        fit="train",
    )
    return save_checkpoint(checkpoint, tmp_path_factory.mktemp("recommend") / "rbm")


@pytest.fixture
def ratings_file(tmp_path: Path) -> Path:
    frame = planted_frame()
    new = pd.DataFrame(
        {"user_id": NEW_USER, "item_id": NEW_USER_ITEMS, "rating": 5.0, "timestamp": 2_000_000}
    )
    path = tmp_path / "ratings.csv"
    pd.concat([frame, new]).to_csv(path, index=False)
    return path


def _read(path: Path) -> list[tuple[int, int]]:
    return [(int(r["user_id"]), int(r["item_id"])) for r in csv.DictReader(path.open())]


def test_never_recommends_a_rated_item(rbm: Path, ratings_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "recs.csv"
    done = deeprec(
        "recommend", "--checkpoint", str(rbm), "--ratings", str(ratings_file),
        "--k", "10", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recommended = _read(out)
    rated = set(
        pd.read_csv(ratings_file)[["user_id", "item_id"]].itertuples(index=False, name=None)
    )
    users = {u for u, _ in recommended}
    assert users == {u for u, _ in rated}  # every user of the data, the new one included
    assert len(recommended) == 10 * len(users)
    assert not set(recommended) & rated


def test_a_user_who_rated_all_but_two_items_gets_those_two(
    rbm: Path, ratings_file: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(ratings_file)
    items = sorted(frame["item_id"].unique())
    left = {items[0], items[-1]}
    greedy = pd.DataFrame(
        {
            "user_id": 998,
            "item_id": [i for i in items if i not in left],
            "rating": 4.0,
            "timestamp": 2_000_000,
        }
    )
    path = tmp_path / "greedy.csv"
    pd.concat([frame, greedy]).to_csv(path, index=False)
    out = tmp_path / "greedy-recs.csv"
    done = deeprec(
        "recommend", "--checkpoint", str(rbm), "--ratings", str(path),
        "--users", "998", "--k", "10", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert {int(r["item_id"]) for r in rows} == left
    assert [int(r["rank"]) for r in rows] == [1, 2]


def test_a_user_absent_from_training_gets_a_fold_in_answer(
    rbm: Path, ratings_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "new.csv"
    done = deeprec(
        "recommend", "--checkpoint", str(rbm), "--ratings", str(ratings_file),
        "--users", str(NEW_USER), "--k", "5", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    items = [item for _, item in _read(out)]
    assert len(items) == 5 and not set(items) & set(NEW_USER_ITEMS)
    # Folded in from the five ratings: the answer is the new user's group (items 16..30).
    assert sum(16 <= item <= 30 for item in items) >= 4, items


def test_protocol_history_is_explicit_and_unknown_users_are_refused(
    rbm: Path, ratings_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.csv"
    done = deeprec(
        "recommend", "--checkpoint", str(rbm), "--ratings", str(ratings_file),
        "--users", "1", "--protocol-history", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(_read(out)) == 10
    assert_one_line_error(
        deeprec(
            "recommend", "--checkpoint", str(rbm), "--ratings", str(ratings_file),
            "--users", "1,12345", "--out", str(out),
        ),
        "unknown user id(s): [12345]",
    )  # fmt: skip
