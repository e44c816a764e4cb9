"""Ratings CRUD: upserts change ratings, and a failed write leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app import crud
from tests.factories import make_item, make_user


def test_upsert_inserts_then_updates(session: Session) -> None:
    user = make_user(session)
    a, b = make_item(session), make_item(session)
    assert crud.upsert_ratings(session=session, user_id=user.id, ratings=[(a.id, 4.0, None)]) == 1
    assert crud.get_user_ratings(session=session, user_id=user.id) == {a.id: 4.0}

    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    crud.upsert_ratings(
        session=session, user_id=user.id, ratings=[(a.id, 1.5, when), (b.id, 5.0, None)]
    )
    assert crud.get_user_ratings(session=session, user_id=user.id) == {a.id: 1.5, b.id: 5.0}
    assert crud.count_ratings(session=session) == 2
    frame = crud.all_ratings_frame(session=session)
    assert frame.loc[frame["item_id"] == a.id, "timestamp"].item() == int(when.timestamp())


def test_later_entry_for_the_same_item_wins(session: Session) -> None:
    user, item = make_user(session), make_item(session)
    crud.upsert_ratings(
        session=session, user_id=user.id, ratings=[(item.id, 2.0, None), (item.id, 3.5, None)]
    )
    assert crud.get_user_ratings(session=session, user_id=user.id) == {item.id: 3.5}


def test_unknown_item_writes_nothing(session: Session) -> None:
    user, item = make_user(session), make_item(session)
    crud.upsert_ratings(session=session, user_id=user.id, ratings=[(item.id, 3.0, None)])
    with pytest.raises(crud.UnknownItemError, match="424242") as caught:
        crud.upsert_ratings(
            session=session,
            user_id=user.id,
            ratings=[(item.id, 5.0, None), (424242, 4.0, None)],
        )
    assert caught.value.item_ids == [424242]
    assert crud.get_user_ratings(session=session, user_id=user.id) == {item.id: 3.0}


@pytest.mark.parametrize("value", [0.0, 5.5, float("nan")])
def test_out_of_range_rating_writes_nothing(session: Session, value: float) -> None:
    user, a, b = make_user(session), make_item(session), make_item(session)
    with pytest.raises(crud.InvalidValueError):
        crud.upsert_ratings(
            session=session, user_id=user.id, ratings=[(a.id, 4.0, None), (b.id, value, None)]
        )
    assert crud.count_ratings(session=session) == 0


def test_unknown_user_is_refused(session: Session) -> None:
    item = make_item(session)
    with pytest.raises(crud.UnknownUserError):
        crud.upsert_ratings(session=session, user_id=31337, ratings=[(item.id, 4.0, None)])
    assert crud.count_ratings(session=session) == 0


def test_delete_rating(session: Session) -> None:
    user, item = make_user(session), make_item(session)
    crud.upsert_ratings(session=session, user_id=user.id, ratings=[(item.id, 4.0, None)])
    assert crud.delete_rating(session=session, user_id=user.id, item_id=item.id)
    assert not crud.delete_rating(session=session, user_id=user.id, item_id=item.id)
    assert crud.get_user_ratings(session=session, user_id=user.id) == {}


def test_all_ratings_frame_has_the_ratings_schema(session: Session) -> None:
    empty = crud.all_ratings_frame(session=session)
    assert list(empty.columns) == ["user_id", "item_id", "rating", "timestamp"] and empty.empty
    u1, u2 = make_user(session), make_user(session)
    i1, i2 = make_item(session), make_item(session)
    crud.upsert_ratings(session=session, user_id=u2.id, ratings=[(i2.id, 2.0, None)])
    crud.upsert_ratings(
        session=session, user_id=u1.id, ratings=[(i2.id, 5.0, None), (i1.id, 1.0, None)]
    )
    frame = crud.all_ratings_frame(session=session)
    assert frame.dtypes.to_dict() == {
        "user_id": np.dtype("int64"),
        "item_id": np.dtype("int64"),
        "rating": np.dtype("float32"),
        "timestamp": np.dtype("int64"),
    }
    assert frame[["user_id", "item_id"]].values.tolist() == [
        [u1.id, i1.id],
        [u1.id, i2.id],
        [u2.id, i2.id],
    ]
    assert frame["rating"].tolist() == [1.0, 5.0, 2.0]
