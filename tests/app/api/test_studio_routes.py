"""The Studio's static files at / beside the API: the page and its modules are served, the API,
its docs and its JSON 404s are unchanged."""

from __future__ import annotations

import re

import httpx
import pytest

from app.web import STATIC_DIR

pytestmark = pytest.mark.anyio


async def test_the_page_and_every_asset_it_names_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>DeepRec Studio</title>" in page.text
    names = re.findall(r'(?:href|src)="(studio/[^"]+)"', page.text)
    assert {"studio/studio.css", "studio/main.js"} <= set(names)
    for module in sorted(STATIC_DIR.glob("*.js")):
        answer = await client.get(f"/studio/{module.name}")
        assert answer.status_code == 200, module.name
        assert "javascript" in answer.headers["content-type"]
        # Modules import each other by relative path only: nothing comes from another host.
        for target in re.findall(r'from "([^"]+)"', answer.text):
            assert target.startswith("./") and (STATIC_DIR / target[2:]).is_file(), target
    assert not re.search(r"https?://", page.text)


async def test_the_api_and_its_errors_are_unchanged(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert "/v1/items" in (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]
    for path in ("/no/such/route", "/v1/nothing", "/studio/missing.js"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not Found"}, path
