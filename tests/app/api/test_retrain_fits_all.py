"""A rating posted through the API is part of the next retrain's training data (``--fit all``)."""

from __future__ import annotations

import json

import httpx
import pytest

from app.crud import count_ratings
from app.services.registry import resolve_checkpoint_path
from ml.checkpoint import load_checkpoint
from ml.data.vocab import IdVocab
from tests.app.api.conftest import N_ITEMS, admin_headers
from tests.app.api.test_admin import wait_for_job

pytestmark = pytest.mark.anyio

NEW_ITEMS = list(range(N_ITEMS + 1, N_ITEMS + 5))  # in the catalogue, rated by nobody yet


@pytest.mark.slow
async def test_posted_ratings_reach_the_retrained_model(client: httpx.AsyncClient) -> None:
    user = (await client.post("/v1/users", json={})).json()["id"]
    posted = await client.post(
        f"/v1/users/{user}/ratings",
        json={"ratings": [{"item_id": i, "rating": 5} for i in NEW_ITEMS]},
    )
    assert posted.status_code == 200
    app = client.app  # type: ignore[attr-defined]
    with app.state.session_factory() as session:
        in_database = count_ratings(session=session)

    started = await client.post(
        "/v1/admin/retrain", json={"model": "popularity"}, headers=admin_headers()
    )
    assert started.status_code == 202
    done = await wait_for_job(client, started.json()["id"], timeout=600)
    assert done["status"] == "succeeded", done
    versions = await client.get("/v1/admin/models?model=popularity", headers=admin_headers())
    row = next(v for v in versions.json() if v["id"] == done["model_version_id"])

    # Rows record the path relative to the checkpoint folder.
    folder = resolve_checkpoint_path(
        row["checkpoint_path"], app.state.settings.resolved_checkpoint_dir
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["extra"]["fit"] == "all"
    assert manifest["extra"]["n_ratings_fitted"] == in_database
    # Every one of the 4 ratings counts (the protocol's train fold would have kept 3 of them).
    checkpoint = load_checkpoint(folder)
    items = IdVocab.from_list(checkpoint.vocab["item"])
    counts = checkpoint.tensors["counts"].numpy()
    assert counts[items.encode(NEW_ITEMS)].tolist() == [1.0] * len(NEW_ITEMS)
    # The held-out measurement is still there, from the protocol's split.
    assert manifest["metrics"]["users_evaluated"] > 0
