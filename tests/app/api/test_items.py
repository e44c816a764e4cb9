"""Items and their embedding neighbours."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.anyio


async def test_item_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/items/5")
    assert response.status_code == 200
    assert response.json() == {
        "id": 5,
        "title": "Planted Movie 5",
        "year": 1995,
        "genres": ["Action"],
    }
    missing = await client.get("/v1/items/9999")
    assert missing.status_code == 404
    assert "9999" in missing.json()["detail"]


async def test_similar_items_are_cosine_neighbours_in_rbm_space(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/items/5/similar", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "rbm"
    assert body["item"]["id"] == 5
    similar = body["similar"]
    assert len(similar) == 5
    assert 5 not in {s["id"] for s in similar}
    scores = [s["score"] for s in similar]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    # The same neighbours, computed here from the served model's embeddings.
    model = client.app.state.registry.get("rbm").model  # type: ignore[attr-defined]
    vectors = model.item_embeddings()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit[model.items.index_of(5)]
    expected = [int(model.items.ids[i]) for i in np.argsort(-cosine)[1:6]]
    assert [s["id"] for s in similar] == expected
    assert scores == pytest.approx(np.sort(cosine)[::-1][1:6].tolist(), abs=1e-5)


async def test_similar_items_need_a_model_with_embeddings(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/items/5/similar", params={"model": "ease"})
    assert response.status_code == 422
    assert "no item embeddings" in response.json()["detail"]
    unrated = await client.get("/v1/items/33/similar")  # in the catalogue, never rated
    assert unrated.status_code == 422
    assert "vocabulary" in unrated.json()["detail"]
