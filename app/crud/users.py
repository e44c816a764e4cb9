"""Users: create and read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.crud._tx import write
from app.crud.errors import ConflictError
from app.models import User

# Ids are 32-bit signed integers in every table and route (PostgreSQL INTEGER, the API's
# ``le=2**31 - 1``): an id above this would be stored but then refused everywhere.
MAX_USER_ID = 2**31 - 1
# Concurrent creations may pick the same free id; the loser retries with the next one.
_ALLOCATION_ATTEMPTS = 5


class UserIdsExhaustedError(ConflictError):
    """Every id from 1 to ``MAX_USER_ID`` is taken."""


def next_free_user_id(session: Session) -> int:
    """The id a new user gets: one above the largest if that fits in ``MAX_USER_ID``, else the
    lowest free id (a gap left by explicit ids); :class:`UserIdsExhaustedError` when none is."""
    top = session.scalar(select(func.max(User.id)))
    if top is None or top < 1:
        return 1
    if top < MAX_USER_ID:
        return int(top) + 1
    if session.get(User, 1) is None:
        return 1
    after = aliased(User)
    gap = session.scalar(
        select(func.min(User.id + 1)).where(
            User.id < MAX_USER_ID, ~exists().where(after.id == User.id + 1)
        )
    )
    if gap is None:
        raise UserIdsExhaustedError(f"every user id from 1 to {MAX_USER_ID} is taken")
    return int(gap)


def create_user(
    *,
    session: Session,
    user_id: int | None = None,
    age: int | None = None,
    gender: str | None = None,
    occupation: str | None = None,
    zip_code: str | None = None,
) -> User:
    """A new user; with ``user_id=None`` the next free id in 1..``MAX_USER_ID`` (see
    :func:`next_free_user_id`)."""
    fields: dict[str, Any] = {
        "age": age,
        "gender": gender,
        "occupation": occupation,
        "zip_code": zip_code,
    }
    if user_id is None:
        return _create_with_free_id(session, fields)
    user = User(id=user_id, **fields)
    with write(session):
        if user_id is not None and session.get(User, user_id) is not None:
            raise ConflictError(f"user {user_id} already exists")
        session.add(user)
        try:
            session.flush()
        except IntegrityError as exc:
            raise ConflictError(f"user {user_id} already exists") from exc
        if user_id is not None:
            sync_user_id_sequence(session)
    return user


def _create_with_free_id(session: Session, fields: dict[str, Any]) -> User:
    for attempt in range(_ALLOCATION_ATTEMPTS):
        try:
            with write(session):
                user = User(id=next_free_user_id(session), **fields)
                session.add(user)
                session.flush()
            return user
        except IntegrityError:  # another request took that id first
            if attempt == _ALLOCATION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def get_user(*, session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def count_users(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def sync_user_id_sequence(session: Session) -> None:
    """After rows with explicit ids, move PostgreSQL's id sequence past the largest id so a
    user created without an id gets a free one (SQLite does this by itself)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('app_user', 'id'), "
            f"LEAST(COALESCE((SELECT MAX(id) FROM app_user), 0)::bigint + 1, {MAX_USER_ID}), false)"
        )
    )
