"""One page of the users who have ratings, with their ratings: what per-user views (the users'
embedding map) read instead of the whole ratings table."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Rating


def rated_users_page(
    *, session: Session, offset: int, limit: int
) -> tuple[list[int], list[Mapping[int, float]]]:
    """The ids of users ``offset`` .. ``offset + limit - 1`` (by id) among those with ratings,
    and each one's ``{item_id: rating}``. Two indexed queries; rows read are those users' only."""
    user_ids = list(
        session.scalars(
            select(Rating.user_id).distinct().order_by(Rating.user_id).offset(offset).limit(limit)
        )
    )
    if not user_ids:
        return [], []
    rows = session.execute(
        select(Rating.user_id, Rating.item_id, Rating.rating)
        .where(Rating.user_id >= user_ids[0], Rating.user_id <= user_ids[-1])
        .order_by(Rating.user_id, Rating.item_id)
    ).all()
    by_user: dict[int, dict[int, float]] = {u: {} for u in user_ids}
    for user_id, item_id, rating in rows:
        by_user[int(user_id)][int(item_id)] = float(rating)
    return user_ids, [by_user[u] for u in user_ids]
