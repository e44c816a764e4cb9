"""GET /v1/models: the families of ml.registry, what each answers, what this worker serves."""

from __future__ import annotations

import httpx
import pytest

from ml.registry import SPECS

pytestmark = pytest.mark.anyio


async def test_every_family_is_listed_with_its_capabilities_and_loaded_version(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [f["name"] for f in items] == [spec.name for spec in SPECS]
    by_name = {f["name"]: f for f in items}
    assert {n: f["loaded_version"] for n, f in by_name.items() if f["loaded_version"]} == {
        "ease": "v1",
        "rbm": "v1",
    }
    assert by_name["gan"]["capabilities"] == ["sample", "discriminate"]
    assert by_name["rbm"]["required"] and by_name["rbm"]["recommend_rank"] == 1
    assert by_name["rbm-images"]["image_model"] == "rbm" and by_name["ease"]["image_model"] is None
