"""Users and items: creation, lookups, genres, popularity."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app import crud
from tests.factories import make_item, make_rating, make_user


def test_create_and_get_user(session: Session) -> None:
    user = crud.create_user(session=session, user_id=7, age=31, gender="F", occupation="writer")
    session.expunge_all()
    stored = crud.get_user(session=session, user_id=7)
    assert stored is not None and (stored.age, stored.gender, stored.occupation) == (
        31,
        "F",
        "writer",
    )
    assert stored.created_at.tzinfo is not None
    assert user.id == 7
    assert crud.get_user(session=session, user_id=8) is None


def test_new_users_get_increasing_free_ids(session: Session) -> None:
    crud.create_user(session=session, user_id=41)
    first = crud.create_user(session=session)
    second = crud.create_user(session=session)
    assert first.id == 42 and second.id == 43


def test_existing_user_id_conflicts_and_writes_nothing(session: Session) -> None:
    crud.create_user(session=session, user_id=5, age=20)
    with pytest.raises(crud.ConflictError):
        crud.create_user(session=session, user_id=5, age=99)
    stored = crud.get_user(session=session, user_id=5)
    assert stored is not None and stored.age == 20
    assert crud.count_users(session=session) == 1


def test_items_by_id_and_genre(session: Session) -> None:
    a = make_item(session, id=1, genres=["Comedy", "Romance"])
    b = make_item(session, id=2, genres=["Action"])
    make_item(session, id=3, genres=[])
    assert crud.get_item(session=session, item_id=1) is a
    assert set(crud.get_items(session=session, item_ids=[2, 1, 99])) == {1, 2}
    assert crud.get_items(session=session, item_ids=[2])[2].title == b.title
    assert crud.item_ids_by_genre(session=session, genre="comedy") == [1]
    assert crud.item_ids_by_genre(session=session, genre="Horror") == []
    assert crud.list_genres(session=session) == ["Action", "Comedy", "Romance"]
    assert crud.all_item_ids(session=session) == [1, 2, 3]


def test_item_popularity_counts_ratings(session: Session) -> None:
    users = [make_user(session) for _ in range(3)]
    items = [make_item(session, id=i) for i in (1, 2, 3)]
    for user in users:
        make_rating(session, user=user, item=items[1])
    make_rating(session, user=users[0], item=items[0])
    assert crud.item_popularity(session=session) == {2: 3, 1: 1}
    assert list(crud.item_popularity(session=session, limit=1)) == [2]
