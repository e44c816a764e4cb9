"""The answers precomputed after a swap, several users per call of the model
(``app.services.recommendations.precompute_answers``), are the answers a miss computes.

Two apps on copies of ONE database: one with the answer cache and its start-up precompute, one
with the cache off. Every user's precomputed answer (a hit) must list the same items as the
cache-off app's answer; EASE's bodies are identical byte for byte, the RBM's scores agree up to
float32 rounding (a batch's products round differently from one row's).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from app.services import precompute
from tests.app.api.conftest import make_settings, open_client

pytestmark = pytest.mark.anyio


async def _precomputed(client: httpx.AsyncClient) -> None:
    """Until the start-up precompute has gone through every queued model."""
    precomputer = client.app.state.precompute  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while len(precomputer.completed) < 2 or not precomputer.idle():
        assert time.monotonic() < deadline, "the start-up precompute did not finish"
        await asyncio.sleep(0.05)


async def _answers(client: httpx.AsyncClient, users: list[int], model: str) -> list[httpx.Response]:
    return [
        await client.get(f"/v1/users/{user}/recommendations", params={"model": model})
        for user in users
    ]


async def test_precomputed_batches_answer_as_a_miss_does(
    tmp_path: Path, service_db_template: Path
) -> None:
    databases = [tmp_path / "cached.db", tmp_path / "plain.db"]
    for database in databases:
        shutil.copyfile(service_db_template, database)
    cached = make_settings(tmp_path, f"sqlite:///{databases[0]}", required_models="ease,rbm")
    plain = make_settings(
        tmp_path, f"sqlite:///{databases[1]}", required_models="ease,rbm", cache_max_entries=0
    )
    users = list(range(1, 3 * precompute.BATCH_USERS + 4))  # several batches and a partial one
    async for client in open_client(cached):
        await _precomputed(client)
        precomputer = client.app.state.precompute  # type: ignore[attr-defined]
        assert {model for model, _, _ in precomputer.completed} == {"ease", "rbm"}
        from_cache = {model: await _answers(client, users, model) for model in ("ease", "rbm")}
    async for client in open_client(plain):
        computed = {model: await _answers(client, users, model) for model in ("ease", "rbm")}
    for model in ("ease", "rbm"):
        for hit, miss in zip(from_cache[model], computed[model], strict=True):
            assert hit.status_code == miss.status_code == 200
            assert hit.headers["x-cache"] == "hit", (model, hit.url)
            assert miss.headers["x-cache"] == "off"
            if model == "ease":
                assert hit.content == miss.content
            else:
                a, b = hit.json(), miss.json()
                assert [i["id"] for i in a["items"]] == [i["id"] for i in b["items"]]
                for x, y in zip(a["items"], b["items"], strict=True):
                    assert x["score"] == pytest.approx(y["score"], rel=1e-5, abs=1e-6)
