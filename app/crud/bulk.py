"""Bulk-load a data set's users, items and ratings, idempotently and fast.

Core ``INSERT ... ON CONFLICT DO NOTHING`` in chunks (one ``executemany`` each) inside one
transaction: a re-run adds nothing, an interrupted run leaves nothing. Ids found only in the
ratings get a bare user row / a placeholder item row.

On PostgreSQL with psycopg 3, whose ``executemany`` sends one statement per row (SQLAlchemy's
multi-row "insertmanyvalues" batching is off for ``ON CONFLICT``), rows are streamed with
``COPY`` into a temporary staging table and moved with one ``INSERT ... SELECT ... ON CONFLICT
DO NOTHING`` per table: same semantics, several times faster.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Table, update
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

DEFAULT_CHUNK_SIZE = 5_000
USER_COLUMNS = ("age", "gender", "occupation", "zip_code")

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


def load_row_count(dataset: RatingsDataset) -> int:
    """How many rows :func:`bulk_load` offers the database (the progress bar's total)."""
    ratings = dataset.ratings
    users = set(ratings["user_id"].unique().tolist())
    if dataset.users is not None:
        users.update(dataset.users["user_id"].tolist())
    items = set(ratings["item_id"].unique().tolist()) | set(dataset.items["item_id"].tolist())
    return len(users) + len(items) + len(ratings)


def bulk_load(
    *,
    session: Session,
    dataset: RatingsDataset,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> LoadResult:
    """Insert the data set's users, items and ratings that are not there yet, in one transaction.

    Existing rows are left as they are (a rating already stored keeps its value). Ratings outside
    0.5..5 are refused before anything is written. ``progress(n)`` is told after every chunk of
    ``n`` rows; it must not use the session (on PostgreSQL a ``COPY`` may be in flight).
    """
    started = time.perf_counter()
    _check_ratings(dataset.ratings)
    advance = progress or (lambda _n: None)
    with write(session):
        users_before, ratings_before = count_users(session=session), count_ratings(session=session)
        items_before = count_items(session=session)
        _insert(session, table_of(User), _chunks(_user_rows(dataset), chunk_size), advance)
        _insert(session, table_of(Item), _chunks(_item_rows(dataset), chunk_size), advance)
        _insert(session, table_of(Rating), _rating_chunks(dataset.ratings, chunk_size), advance)
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
    log.info("bulk load of %s: %s", dataset.name, result)
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


def _insert(
    session: Session,
    table: Table,
    chunks: Iterator[list[dict[str, Any]]],
    advance: Progress,
) -> None:
    """Insert the rows chunk by chunk (chunks are built lazily: ml-25m never sits in memory as
    25M dicts at once), skipping rows whose key already exists."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy_insert(session, table, chunks, advance)
        return
    statement = insert_for(session, table).on_conflict_do_nothing()
    for chunk in chunks:
        session.execute(statement, chunk)
        advance(len(chunk))


def _copy_insert(
    session: Session,
    table: Table,
    chunks: Iterator[list[dict[str, Any]]],
    advance: Progress,
) -> None:
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
    driver_connection = connection.connection.driver_connection  # the psycopg connection
    assert driver_connection is not None
    cursor = driver_connection.cursor()
    with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for chunk in itertools.chain([first], chunks):
            for row in chunk:
                copy.write_row(
                    [json.dumps(row[c]) if c in json_columns else row[c] for c in columns]
                )
            advance(len(chunk))
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
    )
    connection.exec_driver_sql(f"DROP TABLE {stage}")


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _none_if_na(value: Any) -> Any:
    return (
        None
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        else value
    )


def _user_rows(dataset: RatingsDataset) -> list[dict[str, Any]]:
    now = utcnow()
    rows: dict[int, dict[str, Any]] = {}
    if dataset.users is not None:
        users = dataset.users
        columns = [c for c in USER_COLUMNS if c in users.columns]
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
    for user_id in np.unique(dataset.ratings["user_id"].to_numpy()).tolist():
        if user_id not in rows:
            rows[user_id] = {"id": user_id, **dict.fromkeys(USER_COLUMNS), "created_at": now}
    return [rows[k] for k in sorted(rows)]


def _item_rows(dataset: RatingsDataset) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    items = dataset.items
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
    for item_id in np.unique(dataset.ratings["item_id"].to_numpy()).tolist():
        if item_id not in rows:
            rows[item_id] = {"id": item_id, "title": f"item {item_id}", "year": None, "genres": []}
    return [rows[k] for k in sorted(rows)]


def _rating_chunks(ratings: pd.DataFrame, size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(ratings), size):
        cache: dict[int, datetime] = {}  # per chunk: repeated timestamps are common, memory bounded
        part = ratings.iloc[start : start + size]
        user_ids = part["user_id"].to_numpy(dtype=np.int64).tolist()
        item_ids = part["item_id"].to_numpy(dtype=np.int64).tolist()
        values = part["rating"].to_numpy(dtype=np.float64).tolist()
        stamps = part["timestamp"].to_numpy(dtype=np.int64).tolist()
        rows = []
        for user_id, item_id, value, stamp in zip(user_ids, item_ids, values, stamps, strict=True):
            rated_at = cache.get(stamp)
            if rated_at is None:
                rated_at = cache[stamp] = datetime.fromtimestamp(stamp, UTC)
            rows.append(
                {"user_id": user_id, "item_id": item_id, "rating": value, "rated_at": rated_at}
            )
        yield rows
