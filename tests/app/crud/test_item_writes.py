"""Creating and editing items (POST/PATCH /v1/items), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.crud.errors import ConflictError, InvalidValueError, UnknownItemError
from app.crud.items import create_item, get_item, items_frame, update_item
from tests.factories import make_item


def test_created_items_get_the_next_free_id_and_keep_their_metadata(session: Session) -> None:
    make_item(session, id=40)
    first = create_item(session=session, title="A", year=2026, genres=["Comedy"], description="x")
    second = create_item(session=session, title="B")
    assert (first.id, second.id) == (41, 42)
    session.expunge_all()
    stored = get_item(session=session, item_id=41)
    assert stored is not None
    assert (stored.title, stored.year, stored.genres, stored.description) == (
        "A",
        2026,
        ["Comedy"],
        "x",
    )
    frame = items_frame(session=session).set_index("item_id")
    assert frame.loc[41, "genres"] == ["Comedy"] and frame.loc[41, "description"] == "x"


def test_an_existing_id_is_a_conflict_and_nothing_is_written(session: Session) -> None:
    make_item(session, id=5, title="Old")
    with pytest.raises(ConflictError, match="item 5 already exists"):
        create_item(session=session, title="New", item_id=5)
    session.expunge_all()
    stored = get_item(session=session, item_id=5)
    assert stored is not None and stored.title == "Old"


def test_updates_change_only_the_fields_sent(session: Session) -> None:
    item = create_item(session=session, title="A", year=2000, genres=["Drama"])
    update_item(session=session, item_id=item.id, changes={"genres": ["Action"], "year": None})
    session.expunge_all()
    stored = get_item(session=session, item_id=item.id)
    assert stored is not None
    assert (stored.title, stored.year, stored.genres) == ("A", None, ["Action"])
    with pytest.raises(UnknownItemError):
        update_item(session=session, item_id=999, changes={"title": "X"})
    with pytest.raises(InvalidValueError, match="cannot change"):
        update_item(session=session, item_id=item.id, changes={"id": 3})
