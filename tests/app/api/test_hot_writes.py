"""The rating write's hot path (app/api/hot_writes.py) answers exactly as the FastAPI route does.

Two apps on two copies of ONE database, the hot path on and off, get the same sequence of
writes, plainly valid and odd ones; every answer must match byte for byte (status, body, the
headers that matter) and both databases must end up with the same ratings, versions and
timestamps in the ORM's own format.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.api.hot_writes import HotWrite, hot_write_user, json_content, parse_hot_write
from app.db.session import create_db_engine, create_session_factory
from app.models import Rating, User
from ml.data.schema import RatingsDataset
from tests.app.api.conftest import load_service_database, make_settings, open_client

pytestmark = pytest.mark.anyio

JSON = "application/json"
# (user, body, content type): writes the hot path answers itself, and the ones it must leave to
# the route (which then answers them as before).
WRITES: list[tuple[int | str, bytes, str | None]] = [
    (3, b'{"item_id": 5, "rating": 4}', JSON),
    (3, b'{"item_id": 5, "rating": 2.5}', JSON),  # an update
    (4, b'{"ratings": [{"item_id": 7, "rating": 1}, {"item_id": 2, "rating": 5.0}]}', JSON),
    (4, b'[{"item_id": 9, "rating": 3}, {"item_id": 9, "rating": 0.5}]', JSON),  # last wins
    (5, b'{"item_id": 6, "rating": 3}', "application/json; charset=utf-8"),
    (5, b'{"item_id": 6, "rating": 3}', None),  # no content type: the route's reading
    (5, b'{"item_id": 6, "rating": 3}', "text/plain"),  # 415
    (5, b'{"item_id": 6, "rating": 3}', "application/vnd.x+json"),
    (5, b'{"item_id": "6", "rating": "4"}', JSON),  # strings: pydantic's coercion
    (5, b'{"item_id": 6.0, "rating": 4}', JSON),
    (5, b'{"item_id": 6, "rating": true}', JSON),
    (5, b'{"item_id": 6, "rating": 5.5}', JSON),  # out of range
    (5, b'{"item_id": 6, "rating": 0.4}', JSON),
    (5, b'{"item_id": 6, "rating": NaN}', JSON),
    (5, b'{"item_id": 0, "rating": 3}', JSON),
    (5, b'{"item_id": 6}', JSON),
    (5, b'{"item_id": 6, "rating": 3, "extra": 1}', JSON),
    (5, b'{"ratings": []}', JSON),
    (5, b"[]", JSON),
    (5, b'{"ratings": {"item_id": 6, "rating": 3}}', JSON),
    (5, b"not json", JSON),
    (5, b"", JSON),
    (5, b'{"item_id": 999999, "rating": 3}', JSON),  # unknown item: 404, nothing written
    (5, b'[{"item_id": 6, "rating": 3}, {"item_id": 999999, "rating": 3}]', JSON),
    (999_999, b'{"item_id": 6, "rating": 3}', JSON),  # unknown user
    ("05", b'{"item_id": 6, "rating": 3}', JSON),
    (
        6,
        b'{"ratings": ['
        + b", ".join(b'{"item_id": %d, "rating": 4}' % i for i in range(1, 31))
        + b"]}",
        JSON,
    ),
]


@pytest.fixture
async def pair(
    tmp_path: Path, service_db_template: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path]]:
    """(hot path on, hot path off, their databases): two copies of one database."""
    databases = []
    for name in ("hot.db", "plain.db"):
        databases.append(tmp_path / name)
        shutil.copyfile(service_db_template, databases[-1])
    on = make_settings(tmp_path, f"sqlite:///{databases[0]}", hot_path=True)
    off = make_settings(tmp_path, f"sqlite:///{databases[1]}", hot_path=False)
    async for hot in open_client(on):
        async for plain in open_client(off):
            yield hot, plain, databases[0], databases[1]


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.request.url, a.text, b.text)
    assert a.content == b.content, (a.request.url, a.text, b.text)
    for header in ("content-type", "content-length"):
        assert a.headers.get(header) == b.headers.get(header), (a.request.url, header)


def _state(database: Path) -> tuple[list[tuple], list[tuple]]:
    with sqlite3.connect(database) as connection:
        ratings = connection.execute(
            "SELECT user_id, item_id, rating FROM rating ORDER BY user_id, item_id"
        ).fetchall()
        versions = connection.execute(
            "SELECT id, ratings_version FROM app_user ORDER BY id"
        ).fetchall()
    return ratings, versions


async def test_hot_writes_answer_as_the_route_does(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient, Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hot, plain, hot_db, plain_db = pair
    caplog.set_level(logging.DEBUG, logger="app.api.hot_path")
    for n, (user, body, content_type) in enumerate(WRITES):
        headers = {} if content_type is None else {"content-type": content_type}
        url = f"/v1/users/{user}/ratings"
        caplog.clear()
        _same(
            await hot.post(url, content=body, headers=headers),
            await plain.post(url, content=body, headers=headers),
        )
        left = [r for r in caplog.records if "to the route" in r.getMessage()]
        # The plainly valid writes (the first five and the last) never reach the route; the
        # JSON bodies between them do (a path or media type it does not take is not logged).
        routed = 8 <= n < len(WRITES) - 1 and content_type == JSON and user != "05"
        assert bool(left) == routed, (n, body)
    assert _state(hot_db) == _state(plain_db)
    # The timestamps are stored as the ORM stores them: read back through it, aware UTC.
    engine = create_db_engine(f"sqlite:///{hot_db}")
    with create_session_factory(engine)() as session:
        stamps = session.scalars(select(Rating.rated_at).where(Rating.user_id == 4)).all()
    engine.dispose()
    assert stamps and all(s.tzinfo is not None for s in stamps)
    with sqlite3.connect(hot_db) as a, sqlite3.connect(plain_db) as b:
        query = "SELECT rated_at FROM rating WHERE user_id = 3 AND item_id = 5"
        pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
        assert re.fullmatch(pattern, a.execute(query).fetchone()[0])
        assert re.fullmatch(pattern, b.execute(query).fetchone()[0])


async def test_a_hot_write_changes_the_very_next_answer_and_counts_in_metrics(
    tmp_path: Path, service_db_template: Path
) -> None:
    database = tmp_path / "cached.db"
    shutil.copyfile(service_db_template, database)
    settings = make_settings(tmp_path, f"sqlite:///{database}", cache_precompute_users=0)
    async for client in open_client(settings):
        url = "/v1/users/3/recommendations?k=3&model=ease"
        first = await client.get(url)
        assert (await client.get(url)).headers["x-cache"] == "hit"
        for item in [i["id"] for i in first.json()["items"]]:
            written = await client.post("/v1/users/3/ratings", json={"item_id": item, "rating": 1})
            assert written.status_code == 200
            after = await client.get(url)
            assert after.headers["x-cache"] == "miss"
            assert item not in {i["id"] for i in after.json()["items"]}  # rated: excluded
        metrics = (await client.get("/metrics")).text
        template = re.escape('route="/v1/users/{user_id}/ratings"')
        assert re.search(
            rf'deeprec_http_requests_total\{{method="POST",{template},status="200"\}} 3\.0', metrics
        )


async def test_the_upload_limit_still_applies_to_a_write_the_hot_path_could_take(
    tmp_path: Path, service_db_template: Path
) -> None:
    """The hot path sits in front of the body guard: a plain write over ``max_upload_bytes``
    (yet within the hot path's own body limit) is the guard's 413, and nothing is written."""
    database = tmp_path / "limited.db"
    shutil.copyfile(service_db_template, database)
    settings = make_settings(tmp_path, f"sqlite:///{database}", max_upload_bytes=64)
    body = b'{"ratings": [{"item_id": 5, "rating": 4}, {"item_id": 6, "rating": 2}]}'
    assert len(body) > 64
    query = "SELECT item_id, rating FROM rating WHERE user_id = 3 AND item_id IN (5, 6)"
    with sqlite3.connect(database) as connection:
        before = dict(connection.execute(query).fetchall())
    async for client in open_client(settings):
        headers = {"content-type": JSON}
        refused = await client.post("/v1/users/3/ratings", content=body, headers=headers)
        assert refused.status_code == 413
        assert "64 bytes" in refused.json()["detail"]
        small = b'{"item_id": 5, "rating": 4}'
        written = await client.post("/v1/users/3/ratings", content=small, headers=headers)
        assert written.status_code == 200
        metrics = (await client.get("/metrics")).text
    with sqlite3.connect(database) as connection:
        assert dict(connection.execute(query).fetchall()) == before | {5: 4.0}
    template = re.escape('route="/v1/users/{user_id}/ratings"')
    assert re.search(
        rf'deeprec_http_requests_total\{{method="POST",{template},status="200"\}} 1\.0', metrics
    )
    assert re.search(
        r'deeprec_http_requests_total\{method="POST",[^}]*status="413"\} 1\.0', metrics
    )


def test_the_write_parser_takes_only_plain_bodies() -> None:
    assert hot_write_user("/v1/users/12/ratings") == 12
    for path in ("/v1/users/012/ratings", "/v1/users/0/ratings", f"/v1/users/{2**31}/ratings"):
        assert hot_write_user(path) is None
    assert json_content([(b"content-type", b"application/json"), (b"content-length", b"20")]) == 20
    assert json_content([(b"content-type", b"application/json")]) is None  # length unknown
    assert json_content([(b"content-type", b"text/json"), (b"content-length", b"20")]) is None
    assert parse_hot_write(1, b'{"item_id": 2, "rating": 4}') == HotWrite(1, {2: 4.0})
    assert parse_hot_write(1, b'[{"item_id": 2, "rating": 4}, {"item_id": 2, "rating": 1}]') == (
        HotWrite(1, {2: 1.0})
    )
    for body in (b'{"item_id": 2, "rating": false}', b'{"item_id": true, "rating": 4}', b"{}"):
        assert parse_hot_write(1, body) is None, body


async def test_hot_writes_on_each_database(
    migrated_url: str,
    tmp_path: Path,
    planted_dataset: RatingsDataset,
    checkpoints: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLite (on the event loop) and PostgreSQL (one thread trip): a write answered by the hot
    path for one new user and by the route for another leave the same rows and versions."""
    engine = create_db_engine(migrated_url)
    with create_session_factory(engine)() as session:
        load_service_database(session, planted_dataset, checkpoints, active=("ease",))
    caplog.set_level(logging.DEBUG, logger="app.api.hot_path")
    bodies = [
        {"item_id": 2, "rating": 5},
        [{"item_id": 4, "rating": 3.5}, {"item_id": 2, "rating": 1}],
        {"ratings": [{"item_id": 6, "rating": 0.5}]},
    ]
    on = make_settings(tmp_path, migrated_url, hot_path=True)
    off = make_settings(tmp_path, migrated_url, hot_path=False)
    async for hot in open_client(on):
        async for plain in open_client(off):
            users = [(await c.post("/v1/users", json={})).json()["id"] for c in (hot, plain)]
            for body in bodies:
                a = await hot.post(f"/v1/users/{users[0]}/ratings", json=body)
                b = await plain.post(f"/v1/users/{users[1]}/ratings", json=body)
                assert (a.status_code, b.status_code) == (200, 200)
                assert a.json() == {**b.json(), "user_id": users[0]}
                assert a.headers["content-length"] == b.headers["content-length"]
            unknown = {"item_id": 999_999, "rating": 3}
            a = await hot.post(f"/v1/users/{users[0]}/ratings", json=unknown)
            b = await plain.post(f"/v1/users/{users[1]}/ratings", json=unknown)
            assert (a.status_code, a.content) == (b.status_code, b.content)
    assert len([r for r in caplog.records if "to the route" in r.getMessage()]) == 1  # unknown
    with create_session_factory(engine)() as session:
        rows = {
            u: session.execute(
                select(Rating.item_id, Rating.rating, Rating.rated_at)
                .where(Rating.user_id == u)
                .order_by(Rating.item_id)
            ).all()
            for u in users
        }
        versions = [session.get(User, u).ratings_version for u in users]  # type: ignore[union-attr]
    engine.dispose()
    assert (
        [r[:2] for r in rows[users[0]]]
        == [r[:2] for r in rows[users[1]]]
        == [
            (2, 1.0),
            (4, 3.5),
            (6, 0.5),
        ]
    )
    assert all(r.rated_at.tzinfo is not None for u in users for r in rows[u])
    assert versions[0] == versions[1] == len(bodies)
