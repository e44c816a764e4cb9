"""Every write to a user's ratings bumps their ratings_version in the same transaction, and the
hot-path reads return the ratings with the version they belong to (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.crud.serving import HotReads, most_active_users
from tests.conftest import planted_frame
from tests.factories import make_item, make_rating, make_user, ratings_dataset


def reads(session: Session) -> HotReads:
    session.commit()  # the hot reads use their own pooled connections
    return HotReads(session.get_bind())  # type: ignore[arg-type]


def version_of(session: Session, user_id: int) -> int:
    return reads(session).ratings_version(user_id)


def test_upsert_and_delete_bump_the_version(session: Session) -> None:
    user, a, b = make_user(session), make_item(session), make_item(session)
    assert version_of(session, user.id) == 0
    crud.upsert_ratings(session=session, user_id=user.id, ratings=[(a.id, 4.0, None)])
    assert version_of(session, user.id) == 1
    crud.upsert_ratings(
        session=session, user_id=user.id, ratings=[(a.id, 2.0, None), (b.id, 5.0, None)]
    )
    assert version_of(session, user.id) == 2
    assert crud.delete_rating(session=session, user_id=user.id, item_id=a.id)
    assert version_of(session, user.id) == 3
    assert not crud.delete_rating(session=session, user_id=user.id, item_id=a.id)
    assert version_of(session, user.id) == 3  # nothing changed, nothing bumped


def test_a_refused_write_bumps_nothing(session: Session) -> None:
    user, item = make_user(session), make_item(session)
    with pytest.raises(crud.UnknownItemError):
        crud.upsert_ratings(
            session=session, user_id=user.id, ratings=[(item.id, 4.0, None), (424242, 3.0, None)]
        )
    assert version_of(session, user.id) == 0
    with pytest.raises(crud.UnknownUserError):
        crud.upsert_ratings(session=session, user_id=31337, ratings=[(item.id, 4.0, None)])


def test_other_users_keep_their_version(session: Session) -> None:
    one, two, item = make_user(session), make_user(session), make_item(session)
    crud.upsert_ratings(session=session, user_id=one.id, ratings=[(item.id, 4.0, None)])
    assert version_of(session, two.id) == 0


def test_a_bulk_load_that_adds_ratings_bumps_existing_users(session: Session) -> None:
    planted = ratings_dataset(planted_frame(n_users=6, n_items=10, per_user=3))
    crud.bulk_load(session=session, dataset=planted)
    before = version_of(session, 1)
    crud.bulk_load(session=session, dataset=planted)  # nothing new: no bump
    assert version_of(session, 1) == before
    rated = set(planted.ratings.loc[planted.ratings["user_id"] == 1, "item_id"])
    new_item = next(i for i in planted.ratings["item_id"].unique() if i not in rated)
    extra = pd.concat(
        [
            planted.ratings,
            pd.DataFrame(
                {"user_id": [1], "item_id": [new_item], "rating": [3.0], "timestamp": [0]}
            ),
        ]
    )
    crud.bulk_load(session=session, dataset=ratings_dataset(extra))
    assert version_of(session, 1) == before + 1


def test_ratings_with_version_reads_both_in_one_statement(session: Session) -> None:
    user, a, b = make_user(session), make_item(session), make_item(session)
    assert reads(session).ratings_with_version(user.id) == (0, {})
    crud.upsert_ratings(
        session=session, user_id=user.id, ratings=[(a.id, 4.0, None), (b.id, 1.5, None)]
    )
    assert reads(session).ratings_with_version(user.id) == (1, {a.id: 4.0, b.id: 1.5})
    with pytest.raises(crud.UnknownUserError):
        reads(session).ratings_with_version(31337)
    with pytest.raises(crud.UnknownUserError):
        reads(session).ratings_version(31337)


def test_a_database_error_is_sqlalchemys(session: Session) -> None:
    """A missing table (an unmigrated database) surfaces as SQLAlchemyError: the app's 503."""
    hot = reads(session)
    hot._version_sql = hot._version_sql.replace("app_user", "no_such_table")
    with pytest.raises(SQLAlchemyError):
        hot.ratings_version(1)


def test_most_active_users_are_the_latest_raters(session: Session) -> None:
    old, recent, silent = make_user(session), make_user(session), make_user(session)
    item, other = make_item(session), make_item(session)
    make_rating(session, user=old, item=item)
    make_rating(session, user=old, item=other)
    make_rating(session, user=recent, item=item)
    crud.upsert_ratings(session=session, user_id=recent.id, ratings=[(other.id, 5.0, None)])
    assert most_active_users(session=session, limit=5) == [recent.id, old.id]
    assert most_active_users(session=session, limit=1) == [recent.id]
    assert silent.id not in most_active_users(session=session, limit=5)


def test_concurrent_writes_of_one_user_all_land(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    """Threads writing one user's ratings at once (as the API's threadpool does): every write
    lands and bumps the version once, none fails on the database's write lock."""
    user = make_user(session)
    items = [make_item(session).id for _ in range(4)]
    session.commit()

    def writes(worker: int) -> None:
        for n in range(10):
            with session_factory() as own:
                crud.upsert_ratings(
                    session=own,
                    user_id=user.id,
                    ratings=[(items[(worker + n) % len(items)], float(1 + n % 5), None)],
                )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(writes, range(6)))
    assert version_of(session, user.id) == 60
    assert len(crud.get_user_ratings(session=session, user_id=user.id)) == len(items)


def test_event_loop_writes_leave_the_checkpoint_to_a_thread(sqlite_engine: Engine) -> None:
    """The loop's connection never checkpoints in a commit (a checkpoint fsyncs: it stalled
    every request of the worker); the checkpoint thread copies its writes into the database."""
    with Session(sqlite_engine) as session:
        user, item = make_user(session), make_item(session)
        session.commit()
        user_id, item_id = user.id, item.id
    hot = HotReads(sqlite_engine)
    try:
        hot.write_ratings(user_id, {item_id: 4.0}, on_loop=True)
        cursor = hot._loop().cursor()
        assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        cursor.close()
        assert hot._checkpoint_thread is not None and hot._checkpoint_thread.is_alive()
        hot.checkpoint()
        assert hot.ratings_with_version(user_id) == (1, {item_id: 4.0})
    finally:
        hot.stop()
    assert hot._checkpoint_thread is None
