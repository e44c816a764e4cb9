"""Ratings: a user's ratings, upserts, and the whole table as a ratings frame for retraining."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.crud._dialect import insert_for, table_of
from app.crud._tx import write
from app.crud.errors import InvalidValueError, UnknownItemError, UnknownUserError
from app.db.types import utcnow
from app.models import MAX_RATING, MIN_RATING, Item, Rating, User

RatingInput = tuple[int, float, datetime | None]


def check_rating(value: float) -> float:
    value = float(value)
    if not MIN_RATING <= value <= MAX_RATING:  # also refuses NaN
        raise InvalidValueError(f"rating {value} is outside {MIN_RATING}..{MAX_RATING}")
    return value


def get_user_ratings(
    *, session: Session, user_id: int, item_ids: Collection[int] | None = None
) -> dict[int, float]:
    """``{item_id: rating}`` for the user (empty for a user without ratings or unknown), only
    of ``item_ids`` when given."""
    ratings = table_of(Rating).c  # Core on the session's connection: no ORM rows to build
    statement = select(ratings.item_id, ratings.rating).where(ratings.user_id == user_id)
    if item_ids is not None:
        statement = statement.where(ratings.item_id.in_(list(item_ids)))
    return {item_id: rating for item_id, rating in session.connection().execute(statement)}


def count_user_ratings(*, session: Session, user_id: int) -> int:
    """How many ratings the user has (one indexed count, no rows fetched)."""
    ratings = table_of(Rating)
    statement = select(func.count()).select_from(ratings).where(ratings.c.user_id == user_id)
    return session.connection().scalar(statement) or 0


def count_ratings(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Rating)) or 0


def bump_ratings_version(*, session: Session, user_id: int) -> bool:
    """Add one to the user's ``ratings_version`` (``False``: no such user). Call it inside the
    transaction that changes the user's ratings: cached answers are keyed by this number, so the
    write and the bump become visible together and no reader can pair new ratings with an old
    version or the reverse. On PostgreSQL the row lock also orders concurrent writes of one user.
    """
    users = table_of(User).c
    # A Core statement on the session's connection: the ORM's bulk-update path costs several
    # times the UPDATE itself, and no loaded User object needs to follow it.
    result = session.connection().execute(
        update(table_of(User))
        .where(users.id == user_id)
        .values(ratings_version=users.ratings_version + 1)
    )
    return bool(result.rowcount)


def upsert_ratings(*, session: Session, user_id: int, ratings: Iterable[RatingInput]) -> int:
    """Insert or update the user's ratings of items, all or nothing; returns how many were written.

    Each entry is ``(item_id, rating, rated_at)``; ``rated_at=None`` means now. A later entry for
    the same item wins. An unknown user or item, or a rating outside 0.5..5, raises before
    anything is written.
    """
    now = utcnow()
    latest: dict[int, tuple[float, datetime]] = {}
    for item_id, value, rated_at in ratings:
        latest[int(item_id)] = (check_rating(value), rated_at or now)
    if not latest:
        return 0
    with write(session):
        if not bump_ratings_version(session=session, user_id=user_id):
            raise UnknownUserError(user_id)
        items = table_of(Item).c
        known = set(
            session.connection().scalars(select(items.id).where(items.id.in_(list(latest))))
        )
        if missing := set(latest) - known:
            raise UnknownItemError(missing)
        rows = [
            {"user_id": user_id, "item_id": item_id, "rating": value, "rated_at": rated_at}
            for item_id, (value, rated_at) in latest.items()
        ]
        session.execute(_upsert_statement(session), rows)
    return len(rows)


_UPSERTS: dict[str, Any] = {}


def _upsert_statement(session: Session) -> Any:
    """The ratings upsert of the session's dialect, built once: building ``excluded`` costs more
    than a one-rating write itself."""
    name = session.get_bind().dialect.name
    statement = _UPSERTS.get(name)
    if statement is None:
        insert = insert_for(session, table_of(Rating))
        statement = insert.on_conflict_do_update(
            index_elements=["user_id", "item_id"],
            set_={"rating": insert.excluded.rating, "rated_at": insert.excluded.rated_at},
        )
        _UPSERTS[name] = statement
    return statement


def delete_rating(*, session: Session, user_id: int, item_id: int) -> bool:
    """Remove one rating; ``False`` when there was none."""
    with write(session):
        rating = session.scalar(
            select(Rating).filter(Rating.user_id == user_id, Rating.item_id == item_id)
        )
        if rating is None:
            return False
        session.delete(rating)
        bump_ratings_version(session=session, user_id=user_id)
    return True


def all_ratings_frame(*, session: Session) -> pd.DataFrame:
    """Every rating in the ratings schema (user_id int64, item_id int64, rating float32,
    timestamp int64 seconds), sorted by (user_id, item_id): what ``ml.data`` trainers take."""
    rows = session.execute(
        select(Rating.user_id, Rating.item_id, Rating.rating, Rating.rated_at).order_by(
            Rating.user_id, Rating.item_id
        )
    ).all()
    if not rows:
        return pd.DataFrame(
            {
                "user_id": np.array([], dtype=np.int64),
                "item_id": np.array([], dtype=np.int64),
                "rating": np.array([], dtype=np.float32),
                "timestamp": np.array([], dtype=np.int64),
            }
        )
    user_ids, item_ids, values, rated_at = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_ids, dtype=np.int64),
            "item_id": np.asarray(item_ids, dtype=np.int64),
            "rating": np.asarray(values, dtype=np.float32),
            "timestamp": np.asarray([_epoch(t) for t in rated_at], dtype=np.int64),
        }
    )


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
