"""Items: lookups by id and genre, popularity counts; creating and updating items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.crud._tx import write
from app.crud.errors import ConflictError, InvalidValueError, UnknownItemError
from app.models import Item, Rating


def get_item(*, session: Session, item_id: int) -> Item | None:
    return session.get(Item, item_id)


def get_items(*, session: Session, item_ids: Iterable[int]) -> dict[int, Item]:
    """The items among ``item_ids`` that exist, keyed by id (unknown ids are left out)."""
    wanted = sorted({int(i) for i in item_ids})
    found: dict[int, Item] = {}
    for start in range(0, len(wanted), 900):  # stay under SQLite's bound-parameter limit
        chunk = wanted[start : start + 900]
        found.update(
            {item.id: item for item in session.scalars(select(Item).filter(Item.id.in_(chunk)))}
        )
    return found


def count_items(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Item)) or 0


def all_item_ids(*, session: Session) -> list[int]:
    return list(session.scalars(select(Item.id).order_by(Item.id)))


def item_ids_by_genre(*, session: Session, genre: str) -> list[int]:
    """Ids of the items tagged with ``genre`` (case-insensitive), ascending.

    Genres are a JSON list; filtering in Python keeps one query that works the same on SQLite and
    PostgreSQL (the catalogue is small next to the ratings).
    """
    wanted = genre.strip().casefold()
    rows = session.execute(select(Item.id, Item.genres).order_by(Item.id))
    return [item_id for item_id, genres in rows if any(g.casefold() == wanted for g in genres)]


def list_genres(*, session: Session) -> list[str]:
    genres: set[str] = set()
    for item_genres in session.scalars(select(Item.genres)):
        genres.update(item_genres)
    return sorted(genres)


def item_popularity(*, session: Session, limit: int | None = None) -> dict[int, int]:
    """Number of ratings per item, most rated first (ties by id); items never rated are absent."""
    count = func.count(Rating.id).label("n")
    query = (
        select(Rating.item_id, count)
        .group_by(Rating.item_id)
        .order_by(count.desc(), Rating.item_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return {item_id: n for item_id, n in session.execute(query)}


# ------------------------------------------------------------------ writes (POST/PATCH /v1/items)
ITEM_FIELDS = ("title", "year", "genres", "description")


def create_item(
    *,
    session: Session,
    title: str,
    year: int | None = None,
    genres: Sequence[str] = (),
    description: str | None = None,
    item_id: int | None = None,
) -> Item:
    """A new item; with ``item_id=None`` it gets the next id after the largest one.

    Two concurrent creates may pick the same id: the loser's insert fails on the primary key
    and it tries the next id (a few times), so both succeed. An explicit ``item_id`` that
    exists is a :class:`ConflictError`.
    """
    for _ in range(5):
        with write(session):
            chosen = item_id
            if chosen is None:
                chosen = (session.scalar(select(func.max(Item.id))) or 0) + 1
            elif session.get(Item, chosen) is not None:
                raise ConflictError(f"item {chosen} already exists")
            item = Item(
                id=chosen, title=title, year=year, genres=list(genres), description=description
            )
            session.add(item)
            try:
                session.flush()
            except IntegrityError as exc:
                if item_id is not None:
                    raise ConflictError(f"item {item_id} already exists") from exc
                session.rollback()
                continue
        return item
    raise ConflictError("could not allocate an item id (too many concurrent creates); retry")


def update_item(*, session: Session, item_id: int, changes: Mapping[str, Any]) -> Item:
    """Set the given metadata fields (title, year, genres, description) of an existing item."""
    unknown = sorted(set(changes) - set(ITEM_FIELDS))
    if unknown:
        raise InvalidValueError(f"cannot change {unknown}; changeable: {list(ITEM_FIELDS)}")
    with write(session):
        item = session.get(Item, item_id)
        if item is None:
            raise UnknownItemError([item_id])
        for name, value in changes.items():
            setattr(item, name, list(value) if name == "genres" else value)
    return item


def items_frame(*, session: Session) -> pd.DataFrame:
    """Every item's metadata (item_id, title, year, genres, description), ascending by id: what
    the content models train on."""
    rows = session.execute(
        select(Item.id, Item.title, Item.year, Item.genres, Item.description).order_by(Item.id)
    ).all()
    return pd.DataFrame(
        {
            "item_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "title": [r[1] for r in rows],
            "year": pd.array([r[2] for r in rows], dtype="Int64"),
            "genres": [list(r[3] or []) for r in rows],
            "description": [r[4] for r in rows],
        }
    )


def _like_pattern(text: str) -> str:
    """``%text%`` for a case-insensitive LIKE, with the wildcards in ``text`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_items(
    *, session: Session, q: str | None = None, genre: str | None = None, limit: int, offset: int
) -> tuple[list[Item], int]:
    """One page of the catalogue and the number of matches in all.

    ``q`` matches anywhere in the title, case-insensitively; titles that START with it come
    first, then by title in any case. ``genre``
    keeps the items tagged with it (case-insensitive). Genres are a JSON list, filtered in Python
    as in :func:`item_ids_by_genre`, so the query is the same on SQLite and PostgreSQL.
    """
    query = select(Item)
    order: list[Any] = []
    needle = (q or "").strip().casefold()
    if needle:
        title = func.lower(Item.title)
        query = query.where(title.like(_like_pattern(needle), escape="\\"))
        prefix = _like_pattern(needle)[1:]
        order.append(case((title.like(prefix, escape="\\"), 0), else_=1))
    query = query.order_by(*order, func.lower(Item.title), Item.title, Item.id)
    wanted = (genre or "").strip().casefold()
    if wanted:
        matches = [
            item
            for item in session.scalars(query)
            if any(g.casefold() == wanted for g in item.genres or ())
        ]
        return matches[offset : offset + limit], len(matches)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page = list(session.scalars(query.limit(limit).offset(offset)))
    return page, int(total or 0)
