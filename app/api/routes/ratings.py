"""A user's ratings: write one or many (upsert), read them back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.api.deps import SessionDep
from app.api.routes.users import UserId
from app.crud import get_user, get_user_ratings, upsert_ratings
from app.crud.errors import InvalidValueError, UnknownUserError
from app.schemas.common import ERROR_RESPONSES
from app.schemas.rating import RatingCreate, RatingPublic, RatingsCreate, RatingsWritten

router = APIRouter(prefix="/v1/users", tags=["ratings"], responses=ERROR_RESPONSES)

RatingsBody = Annotated[
    RatingCreate | RatingsCreate | list[RatingCreate],
    Body(
        description='One rating, {"ratings": [...]}, or a JSON list of ratings.',
        openapi_examples={
            "one": {"value": {"item_id": 50, "rating": 5}},
            "many": {
                "value": {"ratings": [{"item_id": 50, "rating": 5}, {"item_id": 98, "rating": 4}]}
            },
        },
    ),
]


@router.post("/{user_id}/ratings", response_model=RatingsWritten)
def rate(session: SessionDep, user_id: UserId, body: RatingsBody) -> RatingsWritten:
    """Create or update the user's ratings, all or nothing; the next recommendations use them."""
    if isinstance(body, RatingCreate):
        entries = [body]
    elif isinstance(body, RatingsCreate):
        entries = body.ratings
    else:
        entries = body
    if not entries:
        raise InvalidValueError("no ratings given")
    written = upsert_ratings(
        session=session,
        user_id=user_id,
        ratings=[(r.item_id, r.rating, None) for r in entries],
    )
    current = get_user_ratings(session=session, user_id=user_id)
    given = {r.item_id for r in entries}
    return RatingsWritten(
        user_id=user_id,
        written=written,
        n_ratings=len(current),
        ratings=[RatingPublic(item_id=i, rating=current[i]) for i in sorted(given)],
    )


@router.get("/{user_id}/ratings", response_model=list[RatingPublic])
def list_ratings(session: SessionDep, user_id: UserId) -> list[RatingPublic]:
    """Every rating of the user, by item id."""
    if get_user(session=session, user_id=user_id) is None:
        raise UnknownUserError(user_id)
    current = get_user_ratings(session=session, user_id=user_id)
    return [RatingPublic(item_id=i, rating=r) for i, r in sorted(current.items())]
