"""Bulk-load a data set's users, items and ratings: streamed, idempotent, all or nothing.

Ratings arrive as a stream of frames (a file read in chunks, or an in-memory data set cut into
chunks), so memory is bounded by a chunk, not by the data set. Everything goes into one
transaction: a re-run adds nothing (``ON CONFLICT DO NOTHING``), an interrupted or killed run
leaves nothing (the database rolls the open transaction back; SQLite's WAL drops the frames of a
transaction that never committed).

Users and items (a few hundred thousand rows at most) go in before the ratings that need them,
through SQLAlchemy Core; ids found only in the ratings get a bare user row / a placeholder item
row, chunk by chunk. The ratings take each dialect's fast path:
- SQLite: the driver's ``executemany`` over plain tuples (no per-row dict, no ORM), the
  timestamp formatted by SQLite itself;
- PostgreSQL with psycopg 3: ``COPY ... (FORMAT csv)`` of each chunk (written by pandas) into a
  temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
Any other driver gets Core ``executemany`` in chunks.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Connection, Table, update
from sqlalchemy.orm import Session

from app.crud._dialect import insert_for, table_of
from app.crud._tx import write
from app.crud.errors import InvalidValueError
from app.crud.items import count_items
from app.crud.ratings import count_ratings
from app.crud.users import count_users, sync_user_id_sequence
from app.db.types import utcnow
from app.models import MAX_RATING, MIN_RATING, Item, Rating, User
from ml.data.schema import RatingsDataset

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 100_000
# From this many staged ratings on, PostgreSQL checks the foreign keys once, after the insert.
FK_RECHECK_ROWS = 200_000
USER_COLUMNS = ("age", "gender", "occupation", "zip_code")
# SQLAlchemy's storage format of a DateTime on SQLite, produced by SQLite from epoch seconds.
_SQLITE_RATED_AT = "strftime('%Y-%m-%d %H:%M:%S', ?, 'unixepoch') || '.000000'"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class LoadResult:
    users_added: int
    items_added: int
    ratings_added: int
    users_total: int
    items_total: int
    ratings_total: int
    seconds: float

    @property
    def rows_added(self) -> int:
        return self.users_added + self.items_added + self.ratings_added


@dataclass(frozen=True)
class LoadSource:
    """What a load writes: item and user metadata (whole; small), and the ratings as a stream
    of frames in the ratings schema (``user_id``, ``item_id``, ``rating``, ``timestamp``)."""

    name: str
    items: pd.DataFrame  # item_id, title, year, genres (may be empty)
    users: pd.DataFrame | None
    rating_chunks: Iterable[pd.DataFrame]


def load_row_count(dataset: RatingsDataset) -> int:
    """How many rows :func:`bulk_load` reports through ``progress``: the ratings."""
    return len(dataset.ratings)


def dataset_source(dataset: RatingsDataset, chunk_size: int = DEFAULT_CHUNK_SIZE) -> LoadSource:
    ratings = dataset.ratings
    chunks = (
        ratings.iloc[start : start + chunk_size] for start in range(0, len(ratings), chunk_size)
    )
    return LoadSource(dataset.name, dataset.items, dataset.users, chunks)


def bulk_load(
    *,
    session: Session,
    dataset: RatingsDataset,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> LoadResult:
    """Insert the data set's users, items and ratings that are not there yet, in one transaction
    (see :func:`stream_load`)."""
    _check_ratings(dataset.ratings)  # refuse before anything is written
    return stream_load(
        session=session, source=dataset_source(dataset, chunk_size), progress=progress
    )


def stream_load(
    *, session: Session, source: LoadSource, progress: Progress | None = None
) -> LoadResult:
    """Insert the source's users, items and ratings that are not there yet, in one transaction.

    Existing rows are left as they are (a rating already stored keeps its value; within the
    stream the first rating of a pair wins). A rating outside 0.5..5 fails the load and nothing
    stays. ``progress(n)`` is told after each chunk of ``n`` ratings; it must not use the session.
    """
    started = time.perf_counter()
    advance = progress or (lambda _n: None)
    with write(session):
        users_before, ratings_before = count_users(session=session), count_ratings(session=session)
        items_before = count_items(session=session)
        user_table, item_table = table_of(User), table_of(Item)
        known_users = _insert_users(session, source.users)
        known_items = _insert_items(session, source.items)
        ratings = _ratings_writer(session)
        for chunk in source.rating_chunks:
            _check_ratings(chunk)
            users = np.unique(chunk["user_id"].to_numpy(dtype=np.int64))
            new_users = np.setdiff1d(users, known_users, assume_unique=True)
            if len(new_users):
                _insert(session, user_table, [_bare_user(u) for u in new_users.tolist()])
                known_users = np.union1d(known_users, new_users)
            items = np.unique(chunk["item_id"].to_numpy(dtype=np.int64))
            new_items = np.setdiff1d(items, known_items, assume_unique=True)
            if len(new_items):
                _insert(session, item_table, [_placeholder_item(i) for i in new_items.tolist()])
                known_items = np.union1d(known_items, new_items)
            ratings.write(chunk)
            advance(len(chunk))
        ratings.finish()
        sync_user_id_sequence(session)
        users_total, ratings_total = count_users(session=session), count_ratings(session=session)
        if ratings_total > ratings_before:
            # New ratings may belong to users who had some: every cached answer must go. A load
            # is rare, so one statement over all users beats tracking who was touched.
            session.execute(update(User).values(ratings_version=User.ratings_version + 1))
        items_total = count_items(session=session)
    result = LoadResult(
        users_added=users_total - users_before,
        items_added=items_total - items_before,
        ratings_added=ratings_total - ratings_before,
        users_total=users_total,
        items_total=items_total,
        ratings_total=ratings_total,
        seconds=time.perf_counter() - started,
    )
    log.info("bulk load of %s: %s", source.name, result)
    return result


def _check_ratings(ratings: pd.DataFrame) -> None:
    values = ratings["rating"].to_numpy(dtype=np.float64)
    bad = ~((values >= MIN_RATING) & (values <= MAX_RATING))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        row = ratings.iloc[first]
        raise InvalidValueError(
            f"{int(bad.sum())} rating(s) outside {MIN_RATING}..{MAX_RATING}, e.g. user "
            f"{int(row['user_id'])} item {int(row['item_id'])} rating {float(row['rating'])}"
        )


# ---------------------------------------------------------------------------- users and items


def _insert(session: Session, table: Table, rows: list[dict[str, Any]], size: int = 5_000) -> None:
    """Insert rows (dicts) through Core, skipping keys that exist; COPY on psycopg."""
    chunks = (rows[start : start + size] for start in range(0, len(rows), size))
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy_insert(session, table, chunks)
        return
    statement = insert_for(session, table).on_conflict_do_nothing()
    for chunk in chunks:
        session.execute(statement, chunk)


def _copy_insert(session: Session, table: Table, chunks: Iterator[list[dict[str, Any]]]) -> None:
    first = next(chunks, None)
    if not first:
        return
    columns = list(first[0])
    names = ", ".join(columns)
    stage = f"_deeprec_stage_{table.name}"
    connection = session.connection()
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
        f"SELECT {names} FROM {table.name} WITH NO DATA"
    )
    json_columns = {c.name for c in table.columns if c.type._type_affinity is JSON}
    with _driver_cursor(connection).copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for chunk in itertools.chain([first], chunks):
            for row in chunk:
                copy.write_row(
                    [json.dumps(row[c]) if c in json_columns else row[c] for c in columns]
                )
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
    )
    connection.exec_driver_sql(f"DROP TABLE {stage}")


def _driver_cursor(connection: Connection) -> Any:
    driver_connection = connection.connection.driver_connection  # sqlite3 / psycopg connection
    assert driver_connection is not None
    return driver_connection.cursor()


def _none_if_na(value: Any) -> Any:
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        else value
    )


def _bare_user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, **dict.fromkeys(USER_COLUMNS), "created_at": utcnow()}


def _placeholder_item(item_id: int) -> dict[str, Any]:
    return {"id": item_id, "title": f"item {item_id}", "year": None, "genres": []}


def _insert_users(session: Session, users: pd.DataFrame | None) -> np.ndarray:
    """Insert the users with demographics; returns their ids (sorted)."""
    if users is None or users.empty:
        return np.empty(0, dtype=np.int64)
    now = utcnow()
    columns = [c for c in USER_COLUMNS if c in users.columns]
    rows: dict[int, dict[str, Any]] = {}
    for record in users[["user_id", *columns]].itertuples(index=False):
        values = dict(zip(["user_id", *columns], record, strict=True))
        row: dict[str, Any] = dict.fromkeys(USER_COLUMNS)
        row.update({c: _none_if_na(values[c]) for c in columns})
        if row["age"] is not None:
            row["age"] = int(row["age"])
        for c in ("gender", "occupation", "zip_code"):
            if row[c] is not None:
                row[c] = str(row[c])
        rows[int(values["user_id"])] = {"id": int(values["user_id"]), **row, "created_at": now}
    _insert(session, table_of(User), [rows[k] for k in sorted(rows)])
    return np.array(sorted(rows), dtype=np.int64)


def _insert_items(session: Session, items: pd.DataFrame) -> np.ndarray:
    """Insert the items with metadata; returns their ids (sorted)."""
    rows: dict[int, dict[str, Any]] = {}
    for item_id, title, year, genres in items[["item_id", "title", "year", "genres"]].itertuples(
        index=False
    ):
        year = _none_if_na(year)
        rows[int(item_id)] = {
            "id": int(item_id),
            "title": str(title),
            "year": None if year is None else int(year),
            "genres": [str(g) for g in (genres if isinstance(genres, list | tuple) else [])],
        }
    _insert(session, table_of(Item), [rows[k] for k in sorted(rows)])
    return np.array(sorted(rows), dtype=np.int64)


# ---------------------------------------------------------------------------- ratings


class _CoreRatings:
    """Any dialect: Core ``executemany`` of dict rows, one statement per chunk."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.statement = insert_for(session, table_of(Rating)).on_conflict_do_nothing()

    def write(self, chunk: pd.DataFrame) -> None:
        cache: dict[int, datetime] = {}  # repeated timestamps are common; bounded by a chunk
        rows = []
        for user_id, item_id, value, stamp in _columns(chunk):
            rated_at = cache.get(stamp)
            if rated_at is None:
                rated_at = cache[stamp] = datetime.fromtimestamp(stamp, UTC)
            rows.append(
                {"user_id": user_id, "item_id": item_id, "rating": value, "rated_at": rated_at}
            )
        self.session.execute(self.statement, rows)

    def finish(self) -> None:
        pass


class _SqliteRatings:
    """SQLite: the driver's own ``executemany`` over tuples, inside the session's transaction."""

    SQL = (
        "INSERT INTO rating (user_id, item_id, rating, rated_at) "
        f"VALUES (?, ?, ?, {_SQLITE_RATED_AT}) ON CONFLICT DO NOTHING"
    )

    CACHE_KIB = 262_144  # page cache while loading: the two rating indexes stay in memory

    def __init__(self, session: Session) -> None:
        self.cursor = _driver_cursor(session.connection())
        self.cache_size = self.cursor.execute("PRAGMA cache_size").fetchone()[0]
        self.cursor.execute(f"PRAGMA cache_size=-{self.CACHE_KIB}")

    def write(self, chunk: pd.DataFrame) -> None:
        self.cursor.executemany(self.SQL, zip(*_columns_lists(chunk), strict=True))

    def finish(self) -> None:
        self.cursor.execute(f"PRAGMA cache_size={int(self.cache_size)}")  # pooled connection
        self.cursor.close()


class _PostgresRatings:
    """PostgreSQL (psycopg 3): COPY each chunk as CSV into a staging table, then one insert."""

    STAGE = "_deeprec_stage_ratings"

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        self.connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self.STAGE} (user_id bigint, item_id bigint, "
            "rating double precision, epoch bigint) ON COMMIT DROP"
        )
        self.cursor = _driver_cursor(self.connection)

    def write(self, chunk: pd.DataFrame) -> None:
        buffer = io.StringIO()
        chunk[["user_id", "item_id", "rating", "timestamp"]].to_csv(
            buffer, header=False, index=False
        )
        with self.cursor.copy(f"COPY {self.STAGE} FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())

    def finish(self) -> None:
        count = self.connection.exec_driver_sql(f"SELECT count(*) FROM {self.STAGE}").scalar()
        staged = int(count or 0)
        # Row by row, each foreign key check locks the parent row (FOR KEY SHARE): most of the
        # cost of a big insert. Re-adding the constraints afterwards checks every row with one
        # join instead, inside the same transaction (the table is locked until the commit).
        deferred = _foreign_keys(self.connection, "rating") if staged >= FK_RECHECK_ROWS else []
        for name, _definition in deferred:
            self.connection.exec_driver_sql(f'ALTER TABLE rating DROP CONSTRAINT "{name}"')
        indexes = _plain_indexes(self.connection, "rating") if staged >= FK_RECHECK_ROWS else []
        for name, _definition in indexes:
            self.connection.exec_driver_sql(f'DROP INDEX "{name}"')
        self.connection.exec_driver_sql(
            "INSERT INTO rating (user_id, item_id, rating, rated_at) "
            f"SELECT user_id, item_id, rating, to_timestamp(epoch) FROM {self.STAGE} "
            "ORDER BY user_id, item_id ON CONFLICT DO NOTHING"
        )
        for _name, definition in indexes:
            self.connection.exec_driver_sql(definition)
        for name, definition in deferred:
            self.connection.exec_driver_sql(
                f'ALTER TABLE rating ADD CONSTRAINT "{name}" {definition}'
            )
        self.connection.exec_driver_sql(f"DROP TABLE {self.STAGE}")
        self.cursor.close()


def _plain_indexes(connection: Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    rows = connection.exec_driver_sql(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        f"WHERE x.indrelid = '{table}'::regclass AND NOT x.indisprimary AND NOT x.indisunique "
        "ORDER BY i.relname"
    )
    return [(str(name), str(definition)) for name, definition in rows]


def _foreign_keys(connection: Connection, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's foreign keys, exactly as the catalogue has them."""
    rows = connection.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE conrelid = '{table}'::regclass AND contype = 'f' ORDER BY conname"
    )
    return [(str(name), str(definition)) for name, definition in rows]


def _ratings_writer(session: Session) -> _CoreRatings | _SqliteRatings | _PostgresRatings:
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return _SqliteRatings(session)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _PostgresRatings(session)
    return _CoreRatings(session)


def _columns_lists(chunk: pd.DataFrame) -> tuple[list[int], list[int], list[float], list[int]]:
    return (
        chunk["user_id"].to_numpy(dtype=np.int64).tolist(),
        chunk["item_id"].to_numpy(dtype=np.int64).tolist(),
        chunk["rating"].to_numpy(dtype=np.float64).tolist(),
        chunk["timestamp"].to_numpy(dtype=np.int64).tolist(),
    )


def _columns(chunk: pd.DataFrame) -> Iterator[tuple[int, int, float, int]]:
    return zip(*_columns_lists(chunk), strict=True)
