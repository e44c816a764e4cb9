"""Catalogue search: title text in any case, titles starting with it first, genre, pages.

Titles differ before any space or punctuation: PostgreSQL's collation may skip those when
ordering, SQLite's does not."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.crud.items import search_items
from tests.factories import make_item

TITLES = {
    1: ("Lone Star", ["Western"]),
    2: ("Star", ["Action", "Sci-Fi"]),
    3: ("Stardust", ["Sci-Fi"]),
    4: ("starman", ["Sci-Fi", "Romance"]),
    5: ("Casablanca", ["Romance"]),
    6: ("100% Star_Power", ["Comedy"]),
}


def _load(session: Session) -> None:
    for item_id, (title, genres) in TITLES.items():
        make_item(session, id=item_id, title=title, genres=genres)
    session.commit()


def test_titles_starting_with_the_text_come_first(session: Session) -> None:
    _load(session)
    found, total = search_items(session=session, q="STAR", limit=10, offset=0)
    assert [i.title for i in found] == [
        "Star",
        "Stardust",
        "starman",
        "100% Star_Power",
        "Lone Star",
    ]
    assert total == 5
    page, total = search_items(session=session, q="star", limit=2, offset=2)
    assert [i.id for i in page] == [4, 6] and total == 5


def test_wildcards_are_literal(session: Session) -> None:
    _load(session)
    assert [i.id for i in search_items(session=session, q="0% s", limit=5, offset=0)[0]] == [6]
    assert [i.id for i in search_items(session=session, q="r_p", limit=5, offset=0)[0]] == [6]
    assert search_items(session=session, q="%", limit=5, offset=0)[1] == 1
    assert search_items(session=session, q="s_a", limit=5, offset=0)[1] == 0


def test_genre_filter_with_text_and_pages(session: Session) -> None:
    _load(session)
    found, total = search_items(session=session, genre="sci-fi", limit=2, offset=0)
    assert [i.title for i in found] == ["Star", "Stardust"] and total == 3
    found, total = search_items(session=session, genre="SCI-FI", limit=2, offset=2)
    assert [i.title for i in found] == ["starman"] and total == 3
    found, total = search_items(session=session, q="star", genre="Romance", limit=5, offset=0)
    assert [i.id for i in found] == [4] and total == 1
    everything, total = search_items(session=session, limit=10, offset=0)
    assert total == 6 and [i.id for i in everything] == [6, 5, 1, 2, 3, 4]
