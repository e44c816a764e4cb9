"""The hot path's rating write: one user's upsert as plain DBAPI statements in ONE transaction.

Same effect as :func:`app.crud.ratings.upsert_ratings` followed by the route's read-back, without
an ORM session (whose set-up, Core compilation and flush cost several times the statements at
this size): the user's ``ratings_version`` is bumped first (``False``: no such user), then the
items are checked, the ratings upserted and read back, and all of it commits together, so no
reader ever pairs the new ratings with the old version or the reverse.

Anything unusual (an unknown user or item, a database error) rolls back and raises: the caller
then leaves the request to the FastAPI route, which answers it (and its 4xx) as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Dialect

from app.crud.errors import UnknownItemError, UnknownUserError
from app.db.types import utcnow
from app.models import Item, Rating, User

_TABLES = {"user": User.__tablename__, "item": Item.__tablename__, "rating": Rating.__tablename__}


@dataclass(frozen=True, slots=True)
class RatingsWrite:
    """What the route answers: how many were written, the user's total, the given items' values."""

    written: int
    n_ratings: int
    ratings: dict[int, float]  # item id -> the stored rating, for the items of the request


class RatingWriteSQL:
    """The statements for one DBAPI paramstyle (``?`` or ``%s``) and a dialect's timestamps."""

    def __init__(self, dialect: Dialect, placeholder: str) -> None:
        p = placeholder
        names = {**_TABLES, "p": p}
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None
        self.bump = "UPDATE {user} SET ratings_version = ratings_version + 1 WHERE id = {p}".format(
            **names
        )
        self.upsert = (
            "INSERT INTO {rating} (user_id, item_id, rating, rated_at) VALUES ({p}, {p}, {p}, {p}) "
            "ON CONFLICT (user_id, item_id) DO UPDATE "
            "SET rating = excluded.rating, rated_at = excluded.rated_at"
        ).format(**names)
        self.count = "SELECT count(*) FROM {rating} WHERE user_id = {p}".format(**names)
        self._items = "SELECT id FROM {item} WHERE id IN ({{}})".format(**names)
        self._read_back = (
            "SELECT item_id, rating FROM {rating} WHERE user_id = {p} AND item_id IN ({{}})"
        ).format(**names)
        self._p = p
        # The column type's own conversion (SQLite stores UTC text), so a row written here is
        # exactly what the ORM path would have stored.
        column_type = Rating.__table__.c.rated_at.type
        self._stamp = column_type.dialect_impl(dialect).bind_processor(dialect)

    def items(self, n: int) -> str:
        return self._items.format(", ".join([self._p] * n))

    def read_back(self, n: int) -> str:
        return self._read_back.format(", ".join([self._p] * n))

    def stamp(self, moment: datetime) -> Any:
        return moment if self._stamp is None else self._stamp(moment)


def write_ratings(
    connection: Any, sql: RatingWriteSQL, user_id: int, latest: Mapping[int, float]
) -> RatingsWrite:
    """Upsert ``latest`` (item id -> a rating already checked to be in range) for ``user_id`` on
    a DBAPI ``connection`` outside any transaction; commits, or rolls back and raises
    (:class:`UnknownUserError`, :class:`UnknownItemError`, the driver's error)."""
    items = list(latest)
    cursor = connection.cursor()
    try:
        if sql.begin is not None:
            cursor.execute(sql.begin)  # SQLite: take the write lock now, not halfway through
        cursor.execute(sql.bump, (user_id,))
        if cursor.rowcount != 1:
            raise UnknownUserError(user_id)
        cursor.execute(sql.items(len(items)), items)
        if missing := set(items) - {int(row[0]) for row in cursor.fetchall()}:
            raise UnknownItemError(missing)
        now = sql.stamp(utcnow())
        cursor.executemany(sql.upsert, [(user_id, i, latest[i], now) for i in items])
        cursor.execute(sql.read_back(len(items)), [user_id, *items])
        stored = {int(item): float(value) for item, value in cursor.fetchall()}
        cursor.execute(sql.count, (user_id,))
        n_ratings = int(cursor.fetchone()[0])
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return RatingsWrite(written=len(items), n_ratings=n_ratings, ratings=stored)
