"""Users and ratings: created and upserted in the database, with 404/409/413/422 on bad input."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_create_user_with_and_without_id(client: httpx.AsyncClient) -> None:
    auto = await client.post("/v1/users", json={"occupation": "engineer"})
    assert auto.status_code == 201
    assert auto.json()["id"] == 41  # planted users are 1..40
    assert auto.json()["n_ratings"] == 0
    chosen = await client.post("/v1/users", json={"id": 500})
    assert chosen.status_code == 201
    again = await client.post("/v1/users", json={"id": 500})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    assert (await client.get("/v1/users/500")).json()["id"] == 500


async def test_ratings_are_upserted_in_one_or_many(client: httpx.AsyncClient) -> None:
    user = (await client.post("/v1/users", json={})).json()["id"]
    one = await client.post(f"/v1/users/{user}/ratings", json={"item_id": 3, "rating": 2})
    assert one.status_code == 200
    assert one.json() == {
        "user_id": user,
        "written": 1,
        "n_ratings": 1,
        "ratings": [{"item_id": 3, "rating": 2.0}],
    }
    many = await client.post(
        f"/v1/users/{user}/ratings",
        json={"ratings": [{"item_id": 3, "rating": 4.5}, {"item_id": 7, "rating": 1}]},
    )
    assert many.json()["n_ratings"] == 2
    listed = await client.post(f"/v1/users/{user}/ratings", json=[{"item_id": 8, "rating": 3}])
    assert listed.json()["n_ratings"] == 3
    stored = (await client.get(f"/v1/users/{user}/ratings")).json()
    assert stored == [
        {"item_id": 3, "rating": 4.5},
        {"item_id": 7, "rating": 1.0},
        {"item_id": 8, "rating": 3.0},
    ]
    assert (await client.get(f"/v1/users/{user}")).json()["n_ratings"] == 3


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/users/4242/ratings", {"item_id": 1, "rating": 4}, 404),
        ("/v1/users/1/ratings", {"item_id": 99999, "rating": 4}, 404),
        ("/v1/users/1/ratings", {"item_id": 1, "rating": 7}, 422),
        ("/v1/users/1/ratings", {"item_id": 1, "rating": 0}, 422),
        ("/v1/users/1/ratings", {"item_id": 1}, 422),
        ("/v1/users/1/ratings", {"ratings": []}, 422),
        ("/v1/users/1/ratings", [], 422),
        ("/v1/users/1/ratings", {"item_id": "one", "rating": 4}, 422),
        ("/v1/users/1/ratings", {"item_id": 1, "rating": 4, "extra": True}, 422),
        ("/v1/users/0/ratings", {"item_id": 1, "rating": 4}, 422),
        ("/v1/users", {"id": -3}, 422),
        ("/v1/users", {"age": "old"}, 422),
        ("/v1/users", {"surprise": 1}, 422),
    ],
)
async def test_bad_writes_are_refused_with_a_json_reason(
    client: httpx.AsyncClient, path: str, body: object, status: int
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status
    assert response.json()["detail"]


async def test_unknown_item_writes_nothing(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/users/1/ratings")).json()
    response = await client.post(
        "/v1/users/1/ratings",
        json={"ratings": [{"item_id": 2, "rating": 1}, {"item_id": 77777, "rating": 5}]},
    )
    assert response.status_code == 404
    assert "77777" in response.json()["detail"]
    assert (await client.get("/v1/users/1/ratings")).json() == before


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    limit = client.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]
    payload = b'{"ratings": [' + b" " * limit + b"]}"
    response = await client.post(
        "/v1/users/1/ratings", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


async def test_streamed_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    limit = client.app.state.settings.max_upload_bytes  # type: ignore[attr-defined]

    async def chunks():  # no content-length: the limit is enforced while reading
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = await client.post(
        "/v1/users/1/ratings", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
