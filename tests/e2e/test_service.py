"""End to end: `deeprec bootstrap` then `deeprec serve` (a real uvicorn process on a free loopback
port) over real MovieLens-100K in a SQLite file, driven over HTTP with httpx."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from app.crud import bulk_load
from app.db import migrate
from app.db.session import create_db_engine, create_session_factory
from ml.data.schema import RatingsDataset
from tests.live_server import CLI, ROOT, running_server, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "e2e-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, ml100k: RatingsDataset
) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{root / 'deeprec.db'}"
    migrate.upgrade(url)
    engine = create_db_engine(url)
    with create_session_factory(engine)() as session:
        bulk_load(session=session, dataset=ml100k)
    engine.dispose()
    env = server_env(url, root, admin_token=TOKEN)
    boot = subprocess.run(
        [*CLI, "bootstrap", "--models", "ease"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert boot.returncode == 0, boot.stderr[-2000:]
    assert "trained and activated" in boot.stdout
    with running_server(env, root, ready_timeout=90) as live, live.client() as client:
        yield client


def test_known_user_gets_real_titles(server: httpx.Client) -> None:
    response = server.get("/v1/users/1/recommendations", params={"k": 10})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "ease"
    assert body["strategy"] == "model"
    assert len(body["items"]) == 10
    seen = {r["item_id"] for r in server.get("/v1/users/1/ratings").json()}
    assert len(seen) == 272  # user 1 of ml-100k
    assert not seen & {item["id"] for item in body["items"]}
    assert all(item["title"] and not item["title"].startswith("item ") for item in body["items"])
    assert server.get("/v1/items/50").json()["title"] == "Star Wars"


def test_new_user_gets_personal_recommendations_after_five_ratings(server: httpx.Client) -> None:
    user = server.post("/v1/users", json={"age": 9}).json()["id"]
    cold = server.get(f"/v1/users/{user}/recommendations").json()
    assert cold["strategy"] == "popularity"
    assert cold["items"][0]["title"] == "Star Wars"  # the most rated film of ml-100k
    family = [1, 71, 95, 99, 432]  # Toy Story, Lion King, Aladdin, Snow White, Fantasia
    written = server.post(
        f"/v1/users/{user}/ratings", json=[{"item_id": i, "rating": 5} for i in family]
    )
    assert written.status_code == 200
    warm = server.get(f"/v1/users/{user}/recommendations").json()
    assert warm["strategy"] == "model"
    assert warm["model"] == "ease"
    warm_ids = [item["id"] for item in warm["items"]]
    popular_unseen = [item["id"] for item in cold["items"] if item["id"] not in family]
    assert warm_ids[: len(popular_unseen)] != popular_unseen
    assert not set(family) & set(warm_ids)


def test_admin_without_or_with_a_wrong_token(server: httpx.Client) -> None:
    assert server.get("/v1/admin/models").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (
        server.post("/v1/admin/retrain", json={"model": "ease"}, headers=wrong).status_code == 403
    )
    assert server.get("/v1/admin/models", headers=ADMIN).status_code == 200


def poll_job(server: httpx.Client, job_id: int, timeout: float = 180) -> tuple[dict, int, int]:
    """Poll the job, asking for recommendations between polls; returns the finished job, the
    recommendations answered while it was not finished, and the version they came from."""
    deadline = time.monotonic() + timeout
    answered_while_running = 0
    while time.monotonic() < deadline:
        job = server.get(f"/v1/admin/jobs/{job_id}", headers=ADMIN).json()
        if job["status"] in ("succeeded", "failed"):
            return job, answered_while_running, 0
        answer = server.get("/v1/users/2/recommendations", params={"k": 10})
        assert answer.status_code == 200, answer.text
        answered_while_running += 1
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def test_retrain_swaps_versions_while_answering(server: httpx.Client) -> None:
    before = server.get("/readyz").json()["models"]["ease"]
    started = server.post(
        "/v1/admin/retrain", json={"model": "ease", "params": {"l2": 300}}, headers=ADMIN
    )
    assert started.status_code == 202
    conflict = server.post("/v1/admin/retrain", json={"model": "ease"}, headers=ADMIN)
    assert conflict.status_code == 409
    job, answered, _ = poll_job(server, started.json()["id"])
    assert job["status"] == "succeeded", job
    assert answered > 0
    after = server.get("/readyz").json()["models"]["ease"]
    assert after != before
    assert server.get("/v1/users/2/recommendations").json()["model_version"] == after
    versions = server.get("/v1/admin/models", headers=ADMIN).json()
    active = [v for v in versions if v["is_active"]]
    assert [v["version"] for v in active] == [after]
    assert active[0]["metrics"]["ndcg@10_all"] > 0.4


def test_failed_retrain_keeps_the_active_version(server: httpx.Client) -> None:
    before = server.get("/readyz").json()["models"]["ease"]
    refused = server.post(
        "/v1/admin/retrain", json={"model": "ease", "params": {"l2": -1}}, headers=ADMIN
    )  # the training config's own check, before any job
    assert refused.status_code == 422 and "l2 must be a positive number" in refused.text
    started = server.post(  # valid, but only the job (with the 64-pixel digits) can refuse it
        "/v1/admin/retrain", json={"model": "dbn", "params": {"layers": [10, 5]}}, headers=ADMIN
    )
    assert started.status_code == 202
    job, _, _ = poll_job(server, started.json()["id"])
    assert job["status"] == "failed"
    assert job["error"].startswith("error: the first layer must have 64 units")
    assert server.get("/readyz").json()["models"]["ease"] == before
    assert server.get("/v1/users/2/recommendations").json()["model_version"] == before


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/users/abc/recommendations", {}),
        ("GET", "/v1/users/99999999999999999999999/recommendations", {}),
        ("GET", "/v1/users/-1/recommendations", {}),
        ("GET", "/v1/users/1/recommendations?k=-5", {}),
        ("GET", "/v1/users/1/recommendations?k=1e9", {}),
        ("GET", "/v1/users/1/recommendations?model=../../etc/passwd", {}),
        ("GET", "/v1/users/1/recommendations?genre=%00%ff", {}),
        ("GET", "/v1/items/0/similar", {}),
        ("GET", "/v1/items/50/similar?k=many", {}),
        ("POST", "/v1/users", {"content": b"{not json"}),
        ("POST", "/v1/users", {"json": [1, 2, 3]}),
        ("POST", "/v1/users/1/ratings", {"content": b"\xff\xfe garbage"}),
        ("POST", "/v1/users/1/ratings", {"json": {"item_id": 1, "rating": "NaN"}}),
        ("POST", "/v1/users/1/ratings", {"content": b'{"item_id": 1, "rating": 1e309}'}),
        ("POST", "/v1/users/1/ratings", {"json": {"item_id": 2**40, "rating": 3}}),
        ("POST", "/v1/admin/retrain", {"content": b"[]", "headers": ADMIN}),
        ("POST", "/v1/admin/retrain", {"json": {"model": "ease", "params": "x"}, "headers": ADMIN}),
        ("POST", "/v1/admin/models/abc/activate", {"headers": ADMIN}),
        ("GET", "/v1/admin/jobs/0", {"headers": ADMIN}),
        ("DELETE", "/v1/users/1", {}),
        ("GET", "/no/such/route", {}),
    ],
)
def test_malformed_requests_get_4xx_never_500(
    server: httpx.Client, method: str, path: str, kwargs: dict
) -> None:
    response = server.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert "detail" in response.json()
