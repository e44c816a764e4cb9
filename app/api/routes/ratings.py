"""A user's ratings: write one or many (upsert), read them back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.body import check_media_type, parse_json
from app.api.deps import SessionDep, SessionFactoryDep
from app.api.routes.users import UserId
from app.crud import count_user_ratings, get_user, get_user_ratings, upsert_ratings
from app.crud.errors import InvalidValueError, UnknownUserError
from app.schemas.common import ERROR_RESPONSES, MEDIA_ERROR_RESPONSES
from app.schemas.rating import (
    MAX_RATINGS_PER_REQUEST,
    RatingCreate,
    RatingPublic,
    RatingsCreate,
    RatingsWritten,
)

router = APIRouter(prefix="/v1/users", tags=["ratings"], responses=ERROR_RESPONSES)

_one = RatingCreate.model_json_schema()
# The body's schema, written out (the route parses the body itself, off the event loop).
RATINGS_BODY_SCHEMA: dict[str, Any] = {
    "description": 'One rating, {"ratings": [...]}, or a JSON list of ratings '
    f"(at most {MAX_RATINGS_PER_REQUEST}).",
    "anyOf": [
        _one,
        {
            "type": "object",
            "properties": {
                "ratings": {
                    "type": "array",
                    "items": _one,
                    "minItems": 1,
                    "maxItems": MAX_RATINGS_PER_REQUEST,
                }
            },
            "required": ["ratings"],
            "additionalProperties": False,
        },
        {"type": "array", "items": _one, "minItems": 1, "maxItems": MAX_RATINGS_PER_REQUEST},
    ],
}
_body = TypeAdapter(RatingCreate | RatingsCreate | list[RatingCreate])


def parse_ratings(body: bytes) -> list[RatingCreate]:
    """The ratings of a request body, validated: every form obeys ``MAX_RATINGS_PER_REQUEST``
    (checked BEFORE the entries are validated one by one). CPU-bound: called in the threadpool."""
    parsed = parse_json(body)
    many = parsed.get("ratings") if isinstance(parsed, dict) else parsed
    if isinstance(many, list) and len(many) > MAX_RATINGS_PER_REQUEST:
        raise RequestValidationError(
            [
                {
                    "loc": ["body"] if many is parsed else ["body", "ratings"],
                    "msg": f"at most {MAX_RATINGS_PER_REQUEST} ratings per request, "
                    f"got {len(many)}",
                    "type": "too_long",
                }
            ]
        )
    try:
        value = _body.validate_python(parsed)
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors()]
        raise RequestValidationError(errors) from exc  # answered like FastAPI's own validation
    if isinstance(value, RatingCreate):
        return [value]
    if isinstance(value, RatingsCreate):
        return value.ratings
    if not value:
        raise InvalidValueError("no ratings given")
    return value


@router.post(
    "/{user_id}/ratings",
    response_model=RatingsWritten,
    responses=MEDIA_ERROR_RESPONSES,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": RATINGS_BODY_SCHEMA,
                    "examples": {
                        "one": {"value": {"item_id": 50, "rating": 5}},
                        "many": {
                            "value": {
                                "ratings": [
                                    {"item_id": 50, "rating": 5},
                                    {"item_id": 98, "rating": 4},
                                ]
                            }
                        },
                    },
                }
            },
            "required": True,
        }
    },
)
async def rate(
    request: Request, session_factory: SessionFactoryDep, user_id: UserId
) -> RatingsWritten:
    """Create or update the user's ratings, all or nothing; the next recommendations use them.

    The body is read here (within the app's byte limit) and parsed, validated and written in
    the threadpool: a large list never stalls the event loop.
    """
    check_media_type(request.headers.get("content-type"), png=False)
    body = await request.body()

    def write() -> RatingsWritten:
        entries = parse_ratings(body)
        with session_factory() as session:
            written = upsert_ratings(
                session=session,
                user_id=user_id,
                ratings=[(r.item_id, r.rating, None) for r in entries],
            )
            given = {r.item_id for r in entries}
            current = get_user_ratings(session=session, user_id=user_id, item_ids=given)
            n_ratings = count_user_ratings(session=session, user_id=user_id)
        return RatingsWritten(
            user_id=user_id,
            written=written,
            n_ratings=n_ratings,
            ratings=[RatingPublic(item_id=i, rating=current[i]) for i in sorted(given)],
        )

    return await run_in_threadpool(write)


@router.get("/{user_id}/ratings", response_model=list[RatingPublic])
def list_ratings(session: SessionDep, user_id: UserId) -> list[RatingPublic]:
    """Every rating of the user, by item id."""
    if get_user(session=session, user_id=user_id) is None:
        raise UnknownUserError(user_id)
    current = get_user_ratings(session=session, user_id=user_id)
    return [RatingPublic(item_id=i, rating=r) for i, r in sorted(current.items())]
