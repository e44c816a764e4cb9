"""The recommendation hot path (app/api/hot_path.py) answers exactly as the FastAPI route does.

Two apps on ONE database, the hot path on and off, are asked the same requests, plainly valid and
odd ones; every answer must match byte for byte (status, body, the headers that matter). With the
cache on, a rating still changes the very next hot-path answer.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.api.deps import InlineMisses
from app.api.hot_path import HotRequest, parse_hot_request
from tests.app.api.conftest import make_settings, open_client

pytestmark = pytest.mark.anyio

PATH = "/v1/users/{}/recommendations"

# (user, query string): valid requests the hot path answers itself, and spellings and errors it
# must leave to the route (which then answers them as before).
REQUESTS = [
    (4, ""),
    (4, "k=5&model=ease"),
    (3, "k=3&model=rbm&exclude_seen=false"),
    (3, "model=ease&exclude_seen=0&genre=action"),
    (5, "model=ease&genre=Comedy&unknown=1"),
    (5, "model=ease&genre="),
    (5, "model=ease&genre=%20"),
    (6, "k=1000&model=ease"),
    (6, "k=010&model=ease"),  # leading zero: FastAPI's reading
    (6, "k=+5&model=ease"),
    (6, "k=5&k=6&model=ease"),  # repeated
    (6, "exclude_seen=False&model=ease"),
    (6, "k=0"),
    (6, "k=1001"),
    (6, "k=ten"),
    (6, "k"),
    (6, "model="),
    (6, "model=nope"),
    (6, "model=gan"),
    (6, "model=" + "x" * 65),
    (6, "genre=Westerns&model=ease"),
    (6, "genre=" + "y" * 65),
    (999_999, "model=ease"),  # unknown user
]
RAW_PATHS = [
    "/v1/users/0/recommendations",
    "/v1/users/007/recommendations",
    "/v1/users/-1/recommendations",
    f"/v1/users/{2**31}/recommendations",
]


@pytest.fixture
async def pair(
    tmp_path: Path, service_db_template: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(hot path on, hot path off), both on one database copy, caching off."""
    database = tmp_path / "deeprec.db"
    shutil.copyfile(service_db_template, database)
    url = f"sqlite:///{database}"
    on = make_settings(tmp_path, url, cache_max_entries=0, hot_path=True)
    off = make_settings(tmp_path, url, cache_max_entries=0, hot_path=False)
    async for hot in open_client(on):
        async for plain in open_client(off):
            yield hot, plain


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.request.url, a.text, b.text)
    assert a.content == b.content, a.request.url
    for header in ("content-type", "content-length", "x-cache"):
        assert a.headers.get(header) == b.headers.get(header), (a.request.url, header)


async def test_hot_path_answers_as_the_route_does(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    hot, plain = pair
    for user, query in REQUESTS:  # one pair of apps for all: each start loads the models
        url = PATH.format(user) + (f"?{query}" if query else "")
        _same(await hot.get(url), await plain.get(url))
    for path in RAW_PATHS:
        _same(await hot.get(path), await plain.get(path))
    _same(await hot.head(PATH.format(4)), await plain.head(PATH.format(4)))


def test_the_parser_takes_only_plain_spellings() -> None:
    assert parse_hot_request("/v1/users/4/recommendations", b"") == HotRequest(4)
    assert parse_hot_request(
        "/v1/users/4/recommendations", b"k=7&model=ease&exclude_seen=no&genre=Film%20Noir"
    ) == HotRequest(4, 7, "ease", False, "Film Noir")
    for path, query in [
        ("/v1/users/4/recommendations", b"k=07"),
        ("/v1/users/4/recommendations", b"k=1001"),
        ("/v1/users/4/recommendations", b"exclude_seen=FALSE"),
        ("/v1/users/4/recommendations", b"model=ease&model=rbm"),
        ("/v1/users/4/recommendations", b"model="),
        ("/v1/users/04/recommendations", b""),
        ("/v1/users/4/recommendations/", b""),
        ("/v1/users/4/ratings", b""),
    ]:
        assert parse_hot_request(path, query) is None, (path, query)


async def test_a_rating_changes_the_very_next_hot_answer(
    tmp_path: Path, service_db_template: Path
) -> None:
    database = tmp_path / "cached.db"
    shutil.copyfile(service_db_template, database)
    settings = make_settings(tmp_path, f"sqlite:///{database}", cache_precompute_users=0)
    async for client in open_client(settings):
        url = PATH.format(3) + "?k=3&model=ease"
        first = await client.get(url)
        again = await client.get(url)
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
        assert again.content == first.content
        top = first.json()["items"][0]["id"]
        written = await client.post("/v1/users/3/ratings", json={"item_id": top, "rating": 1})
        assert written.status_code == 200
        after = await client.get(url)
        assert after.headers["x-cache"] == "miss"
        assert top not in {item["id"] for item in after.json()["items"]}  # now rated: excluded
        metrics = (await client.get("/metrics")).text
        template = re.escape('route="/v1/users/{user_id}/recommendations"')
        assert re.search(
            rf'deeprec_http_requests_total\{{method="GET",{template},status="200"\}} 3\.0', metrics
        )
        assert re.search(r'deeprec_answer_cache_lookups_total\{result="hit"\} 1\.0', metrics)


async def test_the_route_stays_documented(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    hot, _ = pair
    schema = (await hot.get("/openapi.json")).json()
    get = schema["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    ok = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/RecommendationsPublic"}
    assert {p["name"] for p in get["parameters"]} == {
        "user_id",
        "k",
        "model",
        "exclude_seen",
        "genre",
    }


def test_only_cheap_misses_run_on_the_event_loop() -> None:
    misses = InlineMisses(max_s=0.002)
    assert misses.inline("rbm") and misses.inline(None)  # not seen yet: tried inline
    misses.record("rbm", 0.008)
    misses.record("ease", 0.0008)
    assert not misses.inline("rbm")
    assert misses.inline("ease")
    for _ in range(40):  # the RBM got cheap (a smaller model was swapped in): back inline
        misses.record("rbm", 0.0005)
    assert misses.inline("rbm")
