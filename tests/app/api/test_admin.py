"""Admin: token checks, retrain in a worker process with hot swap, failures, rollback."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from app.core.config import Settings
from tests.app.api.conftest import admin_headers, open_client

pytestmark = pytest.mark.anyio

ADMIN_CALLS = [
    ("POST", "/v1/admin/retrain", {"model": "ease"}),
    ("GET", "/v1/admin/jobs/1", None),
    ("GET", "/v1/admin/jobs", None),
    ("GET", "/v1/admin/models", None),
    ("POST", "/v1/admin/models/1/activate", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
async def test_admin_needs_the_right_token(
    client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    missing = await client.request(method, path, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await client.request(method, path, json=body, headers=admin_headers("nope"))
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "wrong admin token"}
    basic = await client.request(method, path, json=body, headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


async def test_admin_is_disabled_without_a_configured_token(service_settings: Settings) -> None:
    async for client in open_client(service_settings.model_copy(update={"admin_token": None})):
        response = await client.get("/v1/admin/models", headers=admin_headers())
        assert response.status_code == 503
        assert "admin is disabled" in response.json()["detail"]


async def wait_for_job(client: httpx.AsyncClient, job_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await client.get(f"/v1/admin/jobs/{job_id}", headers=admin_headers())).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        # The service keeps answering while the worker trains.
        answer = await client.get("/v1/users/1/recommendations", params={"model": "ease"})
        assert answer.status_code == 200
        await anyio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.mark.slow
async def test_retrain_swaps_in_a_new_version_and_rolls_back(client: httpx.AsyncClient) -> None:
    started = await client.post(
        "/v1/admin/retrain", json={"model": "ease", "params": {"l2": 5}}, headers=admin_headers()
    )
    assert started.status_code == 202
    job = started.json()
    assert job["status"] == "queued"
    assert job["params"]["params"] == {"l2": 5}
    assert job["owner_pid"] > 0 and job["owner_host"]  # which process runs it
    assert job["heartbeat_at"] is not None
    second = await client.post("/v1/admin/retrain", json={"model": "ease"}, headers=admin_headers())
    assert second.status_code == 409

    done = await wait_for_job(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["error"] is None
    assert done["progress"]["phase"]  # what the job did last (EASE has no epochs)
    versions = (await client.get("/v1/admin/models?model=ease", headers=admin_headers())).json()
    new = next(v for v in versions if v["id"] == done["model_version_id"])
    assert new["is_active"] and new["serving"]
    assert new["metrics"]["ndcg@10_all"] > 0
    assert new["params"]["params"] == {"l2": 5}
    answer = (await client.get("/v1/users/1/recommendations?model=ease")).json()
    assert answer["model_version"] == new["version"]
    ready = (await client.get("/readyz")).json()
    assert ready["models"]["ease"] == new["version"]

    # Roll back to v1.
    old = next(v for v in versions if v["version"] == "v1")
    rolled = await client.post(f"/v1/admin/models/{old['id']}/activate", headers=admin_headers())
    assert rolled.status_code == 200
    assert rolled.json()["serving"] is True
    answer = (await client.get("/v1/users/1/recommendations?model=ease")).json()
    assert answer["model_version"] == "v1"
    metrics = (await client.get("/metrics")).text
    assert 'deeprec_retrain_jobs_total{model_type="ease",status="succeeded"} 1.0' in metrics


@pytest.mark.slow
async def test_failed_retrain_keeps_the_old_version(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/v1/admin/retrain", json={"model": "ease", "params": {"l2": -1}}, headers=admin_headers()
    )  # the training config's own check, before any job: 422
    assert refused.status_code == 422 and "l2 must be a positive number" in refused.text
    started = await client.post(
        "/v1/admin/retrain",
        # A valid config that does not fit the data (the digits have 64 pixels): only the job,
        # once it has the data, can refuse it.
        json={"model": "dbn", "params": {"layers": [10, 5]}},
        headers=admin_headers(),
    )
    assert started.status_code == 202
    done = await wait_for_job(client, started.json()["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("error: the first layer must have 64 units")
    assert done["model_version_id"] is None
    versions = (await client.get("/v1/admin/models", headers=admin_headers())).json()
    assert {v["version"] for v in versions if v["model_type"] == "ease"} == {"v1"}
    assert (await client.get("/readyz")).json()["models"]["ease"] == "v1"
    # A failed job frees the slot: the next retrain is accepted.
    listed = (await client.get("/v1/admin/jobs", headers=admin_headers())).json()
    assert [j["status"] for j in listed] == ["failed"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "resnet"}, 422),
        ({"model": ""}, 422),
        ({"params": {}}, 422),
        ({"model": "ease", "params": [1, 2]}, 422),
        ({"model": "ease", "epochs": 0}, 422),
        ({"model": "ease", "what": 1}, 422),
    ],
)
async def test_bad_retrain_requests_are_422(
    client: httpx.AsyncClient, body: dict, status: int
) -> None:
    response = await client.post("/v1/admin/retrain", json=body, headers=admin_headers())
    assert response.status_code == status
    assert response.json()["detail"]


async def test_unknown_job_and_version_are_404(client: httpx.AsyncClient) -> None:
    job = await client.get("/v1/admin/jobs/777", headers=admin_headers())
    assert job.status_code == 404
    version = await client.post("/v1/admin/models/777/activate", headers=admin_headers())
    assert version.status_code == 404


async def test_activating_a_broken_checkpoint_keeps_serving(
    client: httpx.AsyncClient, tmp_path
) -> None:
    from app.crud import register_model_version

    app = client.app  # type: ignore[attr-defined]
    with app.state.session_factory() as session:
        row = register_model_version(
            session=session, model_type="ease", checkpoint_path=str(tmp_path / "gone"), version="v9"
        )
    response = await client.post(f"/v1/admin/models/{row.id}/activate", headers=admin_headers())
    assert response.status_code == 409
    assert "cannot load version v9" in response.json()["detail"]
    assert (await client.get("/readyz")).json()["models"]["ease"] == "v1"
