"""Bulk load: idempotent, creates users found only in the ratings, all or nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from app import crud
from ml.data.schema import RatingsDataset
from tests.conftest import planted_frame
from tests.factories import ratings_dataset


@pytest.fixture
def planted() -> RatingsDataset:
    return ratings_dataset(planted_frame(n_users=20, n_items=12, per_user=4))


def test_bulk_load_twice_adds_nothing(session: Session, planted: RatingsDataset) -> None:
    ticks: list[int] = []
    first = crud.bulk_load(session=session, dataset=planted, chunk_size=7, progress=ticks.append)
    stats = planted.stats()
    assert (first.users_added, first.items_added, first.ratings_added) == (
        stats["users"],
        stats["items"],
        stats["ratings"],
    )
    assert sum(ticks) == crud.load_row_count(planted)

    second = crud.bulk_load(session=session, dataset=planted)
    assert second.rows_added == 0
    assert (second.users_total, second.items_total, second.ratings_total) == (
        stats["users"],
        stats["items"],
        stats["ratings"],
    )
    frame = crud.all_ratings_frame(session=session)
    pd.testing.assert_frame_equal(frame, planted.ratings)


def test_users_only_in_ratings_are_created_bare(session: Session, planted: RatingsDataset) -> None:
    crud.bulk_load(session=session, dataset=planted)
    user = crud.get_user(session=session, user_id=1)
    assert user is not None and user.age is None and user.occupation is None
    # A new user after a bulk load gets a free id (PostgreSQL's sequence was moved on).
    fresh = crud.create_user(session=session, age=30)
    assert fresh.id == int(planted.ratings["user_id"].max()) + 1


def test_reload_keeps_existing_ratings_and_adds_new_ones(
    session: Session, planted: RatingsDataset
) -> None:
    crud.bulk_load(session=session, dataset=planted)
    extra = pd.concat(
        [
            planted.ratings.assign(rating=1.0),  # same pairs, other values: left as they are
            pd.DataFrame({"user_id": [999], "item_id": [1], "rating": [3.0], "timestamp": [0]}),
        ]
    )
    result = crud.bulk_load(session=session, dataset=ratings_dataset(extra))
    assert (result.users_added, result.items_added, result.ratings_added) == (1, 0, 1)
    assert crud.get_user_ratings(session=session, user_id=999) == {1: 3.0}
    stored = crud.all_ratings_frame(session=session)
    pd.testing.assert_frame_equal(
        stored[stored["user_id"] != 999].reset_index(drop=True), planted.ratings
    )


def test_failed_bulk_load_leaves_nothing(session: Session, planted: RatingsDataset) -> None:
    bad = planted.ratings.copy()
    bad.loc[len(bad) - 1, "rating"] = 7.0
    dataset = RatingsDataset(name="bad", ratings=bad, items=planted.items)
    with pytest.raises(crud.InvalidValueError, match="1 rating"):
        crud.bulk_load(session=session, dataset=dataset)
    assert crud.count_users(session=session) == 0
    assert crud.count_ratings(session=session) == 0


def test_failure_mid_load_rolls_everything_back(session: Session, planted: RatingsDataset) -> None:
    """Interrupted while the ratings stream in (users and items already sent): nothing stays."""
    before_ratings = crud.load_row_count(planted) - planted.stats()["ratings"]
    done = 0

    def interrupt(rows: int) -> None:
        nonlocal done
        done += rows
        if done > before_ratings:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        crud.bulk_load(session=session, dataset=planted, chunk_size=5, progress=interrupt)
    assert crud.count_users(session=session) == 0
    assert crud.count_ratings(session=session) == 0
    assert crud.all_item_ids(session=session) == []


@pytest.mark.slow
def test_ml100k_loads_completely(session: Session, ml100k: RatingsDataset) -> None:
    result = crud.bulk_load(session=session, dataset=ml100k)
    assert (result.users_total, result.items_total, result.ratings_total) == (943, 1682, 100000)
    user = crud.get_user(session=session, user_id=1)
    assert user is not None and (user.age, user.gender, user.occupation) == (24, "M", "technician")
    toy_story = crud.get_item(session=session, item_id=1)
    assert toy_story is not None and toy_story.year == 1995
    assert "Animation" in toy_story.genres
