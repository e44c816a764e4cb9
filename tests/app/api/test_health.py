"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.app.api.conftest import make_settings, open_client

pytestmark = pytest.mark.anyio


async def test_healthz_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_lists_loaded_models(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["database"] == "ok"
    assert body["models"] == {"ease": "v1", "rbm": "v1"}
    assert body["missing"] == []


async def test_readyz_says_which_required_models_are_missing(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"required_models": "ease,gan,dbn"})
    async for client in open_client(settings):
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["missing"] == ["gan", "dbn"]
        assert (await client.get("/healthz")).status_code == 200  # alive, not ready


async def test_start_without_schema_is_alive_but_not_ready(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    async for client in open_client(settings):
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["missing"] == ["ease"]
        assert body["database"].startswith("schema problem")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    for user in (1, 2, 3):
        assert (await client.get(f"/v1/users/{user}/recommendations")).status_code == 200
    assert (await client.get("/v1/users/9999/recommendations")).status_code == 404
    text = (await client.get("/metrics")).text
    route = 'route="/v1/users/{user_id}/recommendations"'
    assert f'deeprec_http_requests_total{{method="GET",{route},status="200"}} 3.0' in text
    assert f'deeprec_http_requests_total{{method="GET",{route},status="404"}} 1.0' in text
    assert f'deeprec_http_request_duration_seconds_count{{method="GET",{route}}} 4.0' in text
    assert 'deeprec_model_loaded{model_type="ease",version="v1"} 1.0' in text
    assert 'deeprec_model_loaded{model_type="rbm",version="v1"} 1.0' in text
    assert (
        'deeprec_inference_duration_seconds_count{model_type="rbm",operation="recommend"} 3.0'
        in text
    )
