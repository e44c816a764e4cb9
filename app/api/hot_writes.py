"""The rating write's hot path: plainly valid ``POST /v1/users/{user_id}/ratings`` requests,
answered in front of FastAPI by :class:`app.api.hot_path.RecommendationHotPath`.

Under a mixed workload the writes were a few percent of the requests but most of the thread
work: FastAPI's dependency solving, pydantic validation, an ORM session and several Core
statements in the threadpool, about 1-2 ms of CPU each, and while that thread held the GIL the
event loop answering cached reads waited for it. Here a small body is checked in plain Python and
written by :meth:`app.crud.serving.HotReads.write_ratings` (plain DBAPI statements, one
transaction that also bumps the user's ratings version): with SQLite on the event loop's own
connection (a few hundred microseconds, no thread and no GIL hand-over), otherwise in one thread
trip.

Like the read path it only answers what it is sure of: the answer is byte for byte the route's
(status, body, headers). Any other spelling (another media type, a string or a bool where a
number belongs, an extra key, a rating out of range, a long list) and any error (unknown user or
item, a busy or failing database) is left to the route, which answers it exactly as before;
``tests/app/api/test_hot_writes.py`` checks both give the same answers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson
from anyio import to_thread

from app.api.deps import Serving
from app.crud.rating_writes import RatingsWrite
from app.crud.users import MAX_USER_ID
from app.models import MAX_RATING, MIN_RATING

PREFIX = "/v1/users/"
SUFFIX = "/ratings"
MAX_ID = MAX_USER_ID  # user and item ids are both 32-bit integer columns
# Larger bodies and lists go to the route (parsed in its threadpool): the loop stays short.
MAX_HOT_BODY = 16_384
MAX_HOT_RATINGS = 64
# No sign, spaces or leading zeros: any other spelling is left to FastAPI.
POSITIVE = re.compile(r"[1-9][0-9]{0,9}")
_ONE_KEYS = frozenset({"item_id", "rating"})


@dataclass(frozen=True, slots=True)
class HotWrite:
    user_id: int
    latest: dict[int, float]  # item id -> rating, a later entry for an item winning


def plain_user_id(path: str, suffix: str) -> int | None:
    """The user id of ``/v1/users/{id}{suffix}`` spelt plainly, else ``None``."""
    if not path.startswith(PREFIX) or not path.endswith(suffix):
        return None
    raw = path[len(PREFIX) : -len(suffix)]
    if not POSITIVE.fullmatch(raw) or int(raw) > MAX_ID:
        return None
    return int(raw)


def hot_write_user(path: str) -> int | None:
    """The user id of ``/v1/users/{id}/ratings`` spelt plainly, else ``None``."""
    return plain_user_id(path, SUFFIX)


def json_content(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared length of a plain ``application/json`` body the hot path may read, else
    ``None`` (no length, chunked, another media type, or too long)."""
    length: int | None = None
    json_type = False
    for name, value in headers:
        if name == b"content-type":
            json_type = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            return None
    if not json_type or length is None or length > MAX_HOT_BODY:
        return None
    return length


def _rating(entry: Any) -> tuple[int, float] | None:
    """``(item_id, rating)`` of ``{"item_id": int, "rating": number}`` when it is valid as
    is (no coercion for pydantic to do), else ``None``."""
    if type(entry) is not dict or entry.keys() != _ONE_KEYS:
        return None
    item, value = entry["item_id"], entry["rating"]
    if type(item) is not int or not 1 <= item <= MAX_ID:
        return None
    if type(value) is int:
        value = float(value)
    if type(value) is not float or not math.isfinite(value):
        return None
    if not MIN_RATING <= value <= MAX_RATING:
        return None
    return item, value


def parse_hot_write(user_id: int, body: bytes) -> HotWrite | None:
    """One rating, ``{"ratings": [...]}`` or a list of ratings, plainly valid; else ``None``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(parsed) is dict and parsed.keys() == {"ratings"}:
        entries = parsed["ratings"]
        if type(entries) is not list:
            return None
    elif type(parsed) is list:
        entries = parsed
    else:
        entries = [parsed]
    if not 1 <= len(entries) <= MAX_HOT_RATINGS:
        return None
    latest: dict[int, float] = {}
    for entry in entries:
        rating = _rating(entry)
        if rating is None:
            return None
        latest[rating[0]] = rating[1]
    return HotWrite(user_id, latest)


def render_written(user_id: int, result: RatingsWrite) -> bytes:
    """The body the route answers (``RatingsWritten``), items by id."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "written": result.written,
            "n_ratings": result.n_ratings,
            "ratings": [
                {"item_id": item, "rating": result.ratings[item]} for item in sorted(result.ratings)
            ],
        }
    )


async def hot_write(serving: Serving, request: HotWrite) -> bytes:
    """Write it and return the answer's body; raises for anything the route must answer."""
    reads = serving.reads
    if reads.on_event_loop:
        result = reads.write_ratings(request.user_id, request.latest, on_loop=True)
    else:
        result = await to_thread.run_sync(reads.write_ratings, request.user_id, request.latest)
    if result.ratings.keys() != request.latest.keys():  # cannot happen in one transaction
        raise RuntimeError("ratings read back do not match the write")
    return render_written(request.user_id, result)
