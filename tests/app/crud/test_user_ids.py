"""Auto-assigned user ids stay within 1..2^31-1 (the range every table and route takes), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.crud.users import MAX_USER_ID, next_free_user_id


def test_after_the_largest_id_the_lowest_free_one_is_used(session: Session) -> None:
    crud.create_user(session=session, user_id=MAX_USER_ID)
    assert crud.create_user(session=session).id == 1  # nothing below: start at 1
    for user_id in (2, 3, 5):
        crud.create_user(session=session, user_id=user_id)
    assert [crud.create_user(session=session).id for _ in range(3)] == [4, 6, 7]
    assert next_free_user_id(session) == 8


def test_below_the_limit_ids_follow_the_largest(session: Session) -> None:
    crud.create_user(session=session, user_id=MAX_USER_ID - 2)
    assert crud.create_user(session=session).id == MAX_USER_ID - 1
    assert crud.create_user(session=session).id == MAX_USER_ID
    assert crud.create_user(session=session).id == 1


def test_concurrent_creations_get_distinct_ids(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        crud.create_user(session=session, user_id=MAX_USER_ID)
    ids: list[int] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with session_factory() as own:
                ids.append(crud.create_user(session=own).id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(ids) == [1, 2, 3, 4, 5, 6]
