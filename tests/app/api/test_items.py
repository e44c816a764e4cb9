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


async def test_search_items_by_title_in_any_case(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/items", params={"q": "MOVIE 1"})
    assert response.status_code == 200
    body = response.json()
    ids = [item["id"] for item in body["items"]]
    assert ids == [1, *range(10, 20)]  # by title
    assert body["total"] == 11  # "Planted Movie 1" and 10..19
    assert body["q"] == "MOVIE 1" and body["genres"] == ["Action", "Comedy", "Drama"]
    assert body["items"][0] == {
        "id": 1,
        "title": "Planted Movie 1",
        "year": 1991,
        "genres": ["Action"],
    }
    first = (await client.get("/v1/items", params={"q": "movie 1", "limit": 3})).json()
    assert [item["id"] for item in first["items"]] == [1, 10, 11] and first["total"] == 11


async def test_search_items_by_genre_in_pages(client: httpx.AsyncClient) -> None:
    seen: list[int] = []
    for offset in (0, 6, 12):
        page = (
            await client.get("/v1/items", params={"genre": "comedy", "limit": 6, "offset": offset})
        ).json()
        assert page["total"] == 15
        seen += [item["id"] for item in page["items"]]
        assert all(item["genres"] == ["Comedy"] for item in page["items"])
    assert sorted(seen) == list(range(16, 31))
    assert len(seen) == 15  # pages neither overlap nor skip
    both = (await client.get("/v1/items", params={"genre": "Drama", "q": "movie 3"})).json()
    assert [item["id"] for item in both["items"]] == [31, 32, 33, 34]
    none = (await client.get("/v1/items", params={"genre": "Western"})).json()
    assert none["items"] == [] and none["total"] == 0


async def test_search_items_takes_wildcards_literally_and_checks_bounds(
    client: httpx.AsyncClient,
) -> None:
    for text in ("%", "_lanted", "\\"):
        body = (await client.get("/v1/items", params={"q": text})).json()
        assert body["total"] == 0 and body["items"] == [], text
    everything = (await client.get("/v1/items", params={"limit": 500})).json()
    assert everything["total"] == 34 and len(everything["items"]) == 34
    past_the_end = (await client.get("/v1/items", params={"offset": 40})).json()
    assert past_the_end["items"] == [] and past_the_end["total"] == 34
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"q": "x" * 201}):
        response = await client.get("/v1/items", params=params)
        assert response.status_code == 422, params
        assert "detail" in response.json()
