"""The in-memory item catalogue: lookups, genres, popularity, refresh when an item appears."""

from __future__ import annotations

from sqlalchemy import Engine

from app.db.session import create_session_factory
from app.services.catalog import ItemCatalog
from tests.factories import make_item, make_rating, make_user


def test_catalogue_reads_items_genres_and_popularity(sqlite_engine: Engine) -> None:
    factory = create_session_factory(sqlite_engine)
    with factory() as session:
        a = make_item(session, title="Alien", genres=["Horror", "Sci-Fi"])
        b = make_item(session, title="Brazil", genres=["Sci-Fi"])
        users = [make_user(session) for _ in range(3)]
        for user in users:
            make_rating(session, user=user, item=b)
        make_rating(session, user=users[0], item=a)
    catalog = ItemCatalog(factory, min_refresh_s=0.0, popularity_ttl_s=0.0)
    assert catalog.get(a.id).title == "Alien"  # type: ignore[union-attr]
    assert catalog.genre_item_ids("sci-fi") == tuple(sorted((a.id, b.id)))
    assert catalog.genre_item_ids("Western") is None
    assert catalog.genres() == ("Horror", "Sci-Fi")
    assert catalog.popularity() == [(b.id, 3), (a.id, 1)]
    with factory() as session:
        c = make_item(session, title="Clue", genres=["Comedy"])
    assert catalog.get(c.id).title == "Clue"  # type: ignore[union-attr]  # refreshed on a miss
    assert set(catalog.get_many([a.id, c.id, 123456])) == {a.id, c.id}
    assert catalog.get(123456) is None
