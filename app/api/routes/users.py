"""Users: create one, read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, status
from sqlalchemy import func, select

from app.api.deps import SessionDep
from app.crud import create_user, get_user
from app.crud.errors import UnknownUserError
from app.models import Rating
from app.schemas.common import BODY_ERROR_RESPONSES, ERROR_RESPONSES, ErrorPublic
from app.schemas.user import UserCreate, UserPublic

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERROR_RESPONSES)

UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Raw user id.")]


def _public(session: SessionDep, user_id: int) -> UserPublic:
    user = get_user(session=session, user_id=user_id)
    if user is None:
        raise UnknownUserError(user_id)
    n = session.scalar(select(func.count()).select_from(Rating).where(Rating.user_id == user_id))
    return UserPublic.model_validate(
        {**UserPublic.model_validate(user).model_dump(exclude={"n_ratings"}), "n_ratings": n or 0}
    )


@router.post(
    "",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        **BODY_ERROR_RESPONSES,
        409: {"model": ErrorPublic, "description": "A user with that id exists, or no id is free."},
    },
)
def create(session: SessionDep, body: Annotated[UserCreate, Body()] = UserCreate()) -> UserPublic:
    """Create a user (no ratings yet: recommendations answer with popularity until they rate)."""
    user = create_user(session=session, user_id=body.id, **body.model_dump(exclude={"id"}))
    return _public(session, user.id)


@router.get("/{user_id}", response_model=UserPublic)
def read(session: SessionDep, user_id: UserId) -> UserPublic:
    """A user and how many ratings they have."""
    return _public(session, user_id)
