"""End to end: cached answers are never stale, across workers and across replicas.

Real `deeprec serve` processes on free loopback ports over real MovieLens-100K with EASE. The
database is PostgreSQL and the shared cache Redis when ``DEEPREC_TEST_DATABASE_URL`` and
``DEEPREC_TEST_CACHE_URL`` are set (CI), else a SQLite file and each worker's in-process cache.

Staleness is checked sharply: each round rates the TOP item of the answer just served, so the
very next answer (seen items excluded) must not contain it; a cached answer from before the write
would. 200 rounds per test, 0 stale answers allowed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.crud import bulk_load, register_model_version
from app.db import migrate
from app.db.admin import temporary_postgres_database
from app.db.session import create_db_engine, create_session_factory
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.schema import RatingsDataset
from ml.training.baselines import EASETrainingConfig, train_ease
from tests.app.conftest import TEST_DB_PREFIX, postgres_admin_url
from tests.live_server import running_server, server_env
from tests.redis_server import redis_process, shared_cache_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROUNDS = 200
TOKEN = "e2e-cache-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SYNC_S = 1.0


@dataclass
class Prepared:
    url: str
    root: Path
    versions: dict[str, int]  # version name -> model_version id


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, ml100k: RatingsDataset
) -> Iterator[Prepared]:
    """ml-100k in the database, EASE version 'a' active and version 'b' registered."""
    root = tmp_path_factory.mktemp("answer-cache")
    with ExitStack() as stack:
        admin = postgres_admin_url()
        if admin is not None:
            url = stack.enter_context(temporary_postgres_database(admin, prefix=TEST_DB_PREFIX))
        else:
            url = f"sqlite:///{root / 'deeprec.db'}"
        migrate.upgrade(url)
        engine = create_db_engine(url)
        versions = {}
        with create_session_factory(engine)() as session:
            bulk_load(session=session, dataset=ml100k)
            for name, l2 in (("a", 800.0), ("b", 100.0)):
                checkpoint = train_ease(ml100k, EASETrainingConfig(l2=l2))
                path = save_checkpoint(checkpoint, root / "checkpoints" / "ease" / name)
                row = register_model_version(
                    session=session,
                    model_type="ease",
                    checkpoint_path=str(path),
                    sha256=checkpoint_sha256(path),
                    metrics=checkpoint.metrics,
                    version=name,
                    activate=name == "a",
                )
                versions[name] = row.id
        engine.dispose()
        yield Prepared(url, root, versions)


@contextmanager
def serve(prepared: Prepared, *, workers: int = 1, **settings: str) -> Iterator[httpx.Client]:
    """A server over the prepared database (the shared Redis when the CI names one); a client
    without keep-alive, so every request is a new connection the kernel spreads over workers."""
    shared = shared_cache_url()
    if shared:
        settings = {"cache_url": shared, **settings}
    env = server_env(
        prepared.url, prepared.root, admin_token=TOKEN, model_sync_s=str(SYNC_S), **settings
    )
    limits = httpx.Limits(max_keepalive_connections=0)
    with (
        running_server(env, prepared.root, workers=workers) as server,
        server.client(limits=limits) as client,
    ):
        yield client


def new_user(client: httpx.Client) -> int:
    """A fresh user with five ratings the model knows (so the model answers, not popularity)."""
    user = client.post("/v1/users", json={}).json()["id"]
    family = [1, 71, 95, 99, 432]
    written = client.post(
        f"/v1/users/{user}/ratings", json=[{"item_id": i, "rating": 5} for i in family]
    )
    assert written.status_code == 200, written.text
    return int(user)


def answer(client: httpx.Client, user: int) -> tuple[dict, str]:
    response = client.get(f"/v1/users/{user}/recommendations", params={"k": 10})
    assert response.status_code == 200, response.text
    return response.json(), response.headers["x-cache"]


def alternate(writer: httpx.Client, readers: list[httpx.Client], user: int) -> dict[str, int]:
    """ROUNDS times: rate the top item through ``writer``, then read from every reader (the
    first read right after the write). Returns how many answers were stale, hits and misses."""
    counts = {"stale": 0, "hit": 0, "miss": 0, "disagree": 0}
    body, _ = answer(readers[0], user)
    for round_ in range(ROUNDS):
        top = body["items"][0]["id"]
        written = writer.post(
            f"/v1/users/{user}/ratings", json={"item_id": top, "rating": 1 + round_ % 5}
        )
        assert written.status_code == 200, written.text
        bodies = []
        for reader in readers:
            for _ in range(2):  # the second read of the same state may be a hit
                body, cache = answer(reader, user)
                counts[cache] = counts.get(cache, 0) + 1
                if top in {item["id"] for item in body["items"]} or body["strategy"] != "model":
                    counts["stale"] += 1
                bodies.append(body)
        counts["disagree"] += sum(b != bodies[0] for b in bodies)
    return counts


def metric(client: httpx.Client, name: str) -> float:
    """Sum of a Prometheus counter's samples as one worker reports them."""
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_write_then_read_across_two_workers(prepared: Prepared) -> None:
    with serve(prepared, workers=2) as client:
        user = new_user(client)
        counts = alternate(client, [client], user)
    assert counts["stale"] == 0, counts
    assert counts["disagree"] == 0, counts
    assert counts["hit"] > 0 and counts["miss"] >= ROUNDS, counts


@pytest.fixture(scope="module")
def replicas(prepared: Prepared) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with serve(prepared) as a, serve(prepared) as b:
        yield a, b


def test_write_then_read_across_two_replicas(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    user = new_user(a)
    counts = alternate(a, [b, a], user)
    assert counts["stale"] == 0, counts
    assert counts["disagree"] == 0, counts
    assert counts["hit"] > 0, counts


def test_a_model_swap_invalidates_and_is_precomputed(
    replicas: tuple[httpx.Client, httpx.Client], prepared: Prepared
) -> None:
    a, b = replicas
    user = new_user(a)
    deadline = time.monotonic() + 120  # A's start-up pass (version a) is over
    while (passes := metric(a, "deeprec_answer_cache_precompute_runs_total")) < 1:
        assert time.monotonic() < deadline, "the start-up precompute pass did not finish"
        time.sleep(0.5)
    before, _ = answer(a, user)
    assert answer(a, user) == (before, "hit")
    assert before["model_version"] == "a"
    activated = a.post(f"/v1/admin/models/{prepared.versions['b']}/activate", headers=ADMIN)
    assert activated.status_code == 200, activated.text
    after, _ = answer(a, user)  # the very next answer on the replica that activated
    assert after["model_version"] == "b"
    assert [i["id"] for i in after["items"]] != [i["id"] for i in before["items"]]
    deadline = time.monotonic() + SYNC_S + 15  # the other replica within its sync period
    while answer(b, user)[0]["model_version"] != "b":
        assert time.monotonic() < deadline, "replica B never served version b"
        time.sleep(0.2)
    assert answer(b, user)[0] == after
    # The swap queued a precompute of the active users' answers: once A's pass went through
    # them all, ml-100k users that never asked for version b get hits.
    deadline = time.monotonic() + 120
    while metric(a, "deeprec_answer_cache_precompute_runs_total") <= passes:
        assert time.monotonic() < deadline, "the precompute pass did not finish"
        time.sleep(0.5)
    first = [answer(a, u) for u in range(1, 21)]
    redis_errors = metric(a, "deeprec_answer_cache_errors_total")
    assert {(body["model_version"], cache) for body, cache in first} == {("b", "hit")}, (
        f"Redis errors on A: {redis_errors}"
    )


def test_answers_keep_coming_when_redis_stops(prepared: Prepared, tmp_path: Path) -> None:
    with (
        redis_process(tmp_path) as redis,
        serve(prepared, cache_url=redis.url, cache_max_entries="0", cache_retry_s="0.5") as client,
    ):
        user = new_user(client)
        body, _ = answer(client, user)
        assert answer(client, user) == (body, "hit")  # served from Redis (no local tier)
        redis.stop()
        statuses = []
        for round_ in range(50):
            top = body["items"][0]["id"]
            client.post(f"/v1/users/{user}/ratings", json={"item_id": top, "rating": 3})
            response = client.get(f"/v1/users/{user}/recommendations")
            statuses.append(response.status_code)
            if response.status_code == 200:
                body = response.json()
                assert top not in {i["id"] for i in body["items"]}, f"stale in round {round_}"
        assert statuses == [200] * 50
        assert metric(client, "deeprec_answer_cache_errors_total") >= 1
        redis.start()  # back on the same port: the cache is used again
        deadline = time.monotonic() + 10
        while answer(client, user)[1] != "hit":
            assert time.monotonic() < deadline, "the cache was not used again after Redis came back"
            time.sleep(0.6)
