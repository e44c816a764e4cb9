"""The hot-path reads of the recommendation endpoint: a user's ratings version, and their ratings
with that version, each ONE indexed statement on a pooled DBAPI connection. No ORM session: at
this size SQLAlchemy's session and statement execution cost several times the query itself.

The version alone decides whether a cached answer may be served; the ratings and the version read
in the same statement (one snapshot) are what a fresh answer is computed from and cached under, so
an answer is never filed under a version other than the one its ratings belong to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.crud.errors import UnknownUserError
from app.crud.rating_writes import RatingsWrite, RatingWriteSQL, write_ratings
from app.models import Rating, User

log = logging.getLogger(__name__)

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_VERSION_SQL = "SELECT ratings_version FROM {user} WHERE id = {p}"
_RATINGS_SQL = (
    "SELECT u.ratings_version, r.item_id, r.rating FROM {user} u "
    "LEFT JOIN {rating} r ON r.user_id = u.id WHERE u.id = {p}"
)


# The event loop's connection waits at most this long for SQLite's write lock (another worker's
# write holds it for well under a millisecond); past it the write is left to the route's thread.
LOOP_BUSY_TIMEOUT_MS = 5
# How often the checkpoint thread copies the event loop's writes from the WAL into the database.
CHECKPOINT_INTERVAL_S = 0.5


class HotReads:
    """The two reads and the rating write, on ``engine``'s pool (one checkout per call, released
    at once) or on the event loop's own connection.

    ``on_event_loop``: whether the version read is cheap enough for the event loop (SQLite).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        placeholder = _PLACEHOLDERS.get(engine.dialect.paramstyle)
        self._raw = placeholder is not None
        names = {"user": User.__tablename__, "rating": Rating.__tablename__, "p": placeholder}
        self._version_sql = _VERSION_SQL.format(**names)
        self._ratings_sql = _RATINGS_SQL.format(**names)
        # A SQLite read is a few microseconds in this process (WAL: readers never wait for a
        # writer), cheaper than a thread hop, so the hot path may run it on the event loop. A
        # server's round trip (PostgreSQL) would stall every other request: it stays in a thread.
        self.on_event_loop = engine.dialect.name == "sqlite" and self._raw
        # sqlite3 hands the INTEGER item id and the REAL rating (REAL affinity stores every
        # rating as a float) back as int and float already.
        self._native_types = self.on_event_loop
        # The event loop's own connection, outside the pool: a loop that waited for a pooled
        # connection (all held by threads) would stall every request of the worker.
        self._loop_connection: Any = None
        self.write_sql = (
            RatingWriteSQL(engine.dialect, placeholder) if placeholder is not None else None
        )
        # Commits on the loop's connection since the last checkpoint (see _loop()).
        self._loop_commits = 0
        self._checkpoints = threading.Event()  # set: the checkpoint thread stops
        self._checkpoint_thread: threading.Thread | None = None

    def _fetch(self, sql: str, user_id: int, on_loop: bool) -> list[Any]:
        if on_loop:
            return self._fetch_on_loop(sql, user_id)
        if not self._raw:  # another driver: the portable Core statements
            return self._fetch_core(sql, user_id)
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, (user_id,))
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except dbapi_error as exc:  # as SQLAlchemy would raise it: the app answers 503, not 500
            raise DBAPIError.instance(sql, (user_id,), exc, dbapi_error) from exc
        finally:
            connection.close()  # back to the pool (rolled back there)

    def _fetch_on_loop(self, sql: str, user_id: int) -> list[Any]:
        """On the event loop's own connection (``on_event_loop`` only). Each read is its own
        implicit transaction, so it sees every write committed before it."""
        if not self.on_event_loop:
            raise RuntimeError("reads of this database do not run on the event loop")
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        try:
            cursor = self._loop().cursor()
            try:
                cursor.execute(sql, (user_id,))
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except dbapi_error as exc:
            self.close()  # a fresh connection next time
            raise DBAPIError.instance(sql, (user_id,), exc, dbapi_error) from exc

    def _loop(self) -> Any:
        if self._loop_connection is None:
            connection = self.engine.raw_connection()  # with the engine's pragmas
            connection.detach()  # ours until close(): never waits in the pool's queue
            # The loop must not sleep in SQLite's busy handler behind another writer: after a
            # few ms the write fails here and the route writes it in a thread instead. (Reads
            # never wait under WAL.)
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={LOOP_BUSY_TIMEOUT_MS}")
            # No automatic checkpoint in the loop's commits: every ~1000 WAL pages SQLite makes
            # the committing connection copy the WAL into the database and fsync both, which on
            # a busy disk took tens to hundreds of ms with the loop (every connection of the
            # worker) stopped: the p99 spikes of bench/results/serving.md. The checkpoint
            # thread does it instead (start_checkpoints), where the wait stalls nobody.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()
            self._loop_connection = connection
            self._start_checkpoints()
        return self._loop_connection

    def _start_checkpoints(self) -> None:
        if self._checkpoint_thread is None and not self._checkpoints.is_set():
            self._checkpoint_thread = threading.Thread(
                target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
            )
            self._checkpoint_thread.start()

    def _checkpoint_loop(self) -> None:
        while not self._checkpoints.wait(CHECKPOINT_INTERVAL_S):
            if self._loop_commits:
                self._loop_commits = 0
                self.checkpoint()

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database (PASSIVE: waits for no reader or
        writer); in a thread, where the sqlite3 module lets the GIL go during the I/O."""
        try:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
                cursor.close()
            finally:
                connection.close()
        except Exception:  # the next commit's checkpoint, or SQLite's own, catches up
            log.debug("WAL checkpoint failed", exc_info=True)

    def write_ratings(
        self, user_id: int, latest: Mapping[int, float], *, on_loop: bool = False
    ) -> RatingsWrite:
        """Upsert the user's ratings (``latest``: item id -> a rating in range) and bump their
        ratings version in ONE transaction; see :mod:`app.crud.rating_writes`. Raises
        :class:`UnknownUserError`, :class:`UnknownItemError` or ``DBAPIError`` (rolled back)."""
        if self.write_sql is None:
            raise RuntimeError("this database's driver has no lean write path")
        if on_loop and not self.on_event_loop:
            raise RuntimeError("writes to this database do not run on the event loop")
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        connection = self._loop() if on_loop else self.engine.raw_connection()
        try:
            written = write_ratings(connection, self.write_sql, user_id, latest)
            if on_loop:
                self._loop_commits += 1
            return written
        except dbapi_error as exc:
            if on_loop:
                self.close()  # a fresh connection next time
            statement = self.write_sql.bump
            raise DBAPIError.instance(statement, (user_id,), exc, dbapi_error) from exc
        finally:
            if not on_loop:
                connection.close()  # back to the pool

    def close(self) -> None:
        """Close the event loop's connection (the pooled ones belong to the engine)."""
        connection, self._loop_connection = self._loop_connection, None
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        """Stop the checkpoint thread (after a last checkpoint) and close the loop's
        connection: the service is shutting down."""
        self._checkpoints.set()
        thread, self._checkpoint_thread = self._checkpoint_thread, None
        if thread is not None:
            thread.join(timeout=5)
            self.checkpoint()
        self.close()

    def _fetch_core(self, sql: str, user_id: int) -> list[Any]:
        user, rating = User.__table__.c, Rating.__table__.c
        if sql is self._version_sql:
            statement: Any = select(user.ratings_version).where(user.id == user_id)
        else:
            statement = (
                select(user.ratings_version, rating.item_id, rating.rating)
                .select_from(User.__table__.outerjoin(Rating.__table__))
                .where(user.id == user_id)
            )
        with self.engine.connect() as connection:
            return list(connection.execute(statement).all())

    def ratings_version(self, user_id: int, *, on_loop: bool = False) -> int:
        """The user's ratings version; :class:`UnknownUserError` for a user that does not exist.
        ``on_loop``: called on the event loop (its own connection; ``on_event_loop`` only)."""
        rows = self._fetch(self._version_sql, user_id, on_loop)
        if not rows:
            raise UnknownUserError(user_id)
        return int(rows[0][0] or 0)

    def ratings_with_version(
        self, user_id: int, *, on_loop: bool = False
    ) -> tuple[int, dict[int, float]]:
        """``(ratings_version, {item_id: rating})`` read in one statement (one snapshot)."""
        rows = self._fetch(self._ratings_sql, user_id, on_loop)
        if not rows:
            raise UnknownUserError(user_id)
        version = int(rows[0][0] or 0)
        if rows[0][1] is None:  # the LEFT JOIN's one row of a user without ratings
            return version, {}
        if self._native_types:  # ints and floats as read: no conversion per rating
            return version, {item: value for _, item, value in rows}
        return version, {int(item): float(value) for _, item, value in rows}


def most_active_users(*, session: Session, limit: int) -> list[int]:
    """Up to ``limit`` user ids, most recently rating first (then the most ratings): whose
    answers to compute ahead of their requests after a model swap."""
    statement = (
        select(Rating.user_id)
        .group_by(Rating.user_id)
        .order_by(func.max(Rating.rated_at).desc(), func.count().desc(), Rating.user_id)
        .limit(limit)
    )
    return [int(user_id) for user_id in session.scalars(statement)]
