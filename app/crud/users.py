"""Users: create and read."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.crud._tx import write
from app.crud.errors import ConflictError
from app.models import User


def create_user(
    *,
    session: Session,
    user_id: int | None = None,
    age: int | None = None,
    gender: str | None = None,
    occupation: str | None = None,
    zip_code: str | None = None,
) -> User:
    """A new user; with ``user_id=None`` the database picks the next free id."""
    user = User(id=user_id, age=age, gender=gender, occupation=occupation, zip_code=zip_code)
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
            "COALESCE((SELECT MAX(id) FROM app_user), 0) + 1, false)"
        )
    )
