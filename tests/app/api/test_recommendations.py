"""Recommendations: fold-in from the database, model choice, genre filter, popularity fallback."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import httpx
import pytest

from tests.app.api.conftest import (
    GROUP_GENRES,
    item_genre,
    make_settings,
    open_client,
    user_genre,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("model", ["ease", "rbm"])
async def test_known_user_gets_items_of_their_group(client: httpx.AsyncClient, model: str) -> None:
    user = 4  # group 0: rates only Action items
    rated = {r["item_id"] for r in (await client.get(f"/v1/users/{user}/ratings")).json()}
    response = await client.get(
        f"/v1/users/{user}/recommendations", params={"k": 5, "model": model}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == model
    assert body["model_version"] == "v1"
    assert body["strategy"] == "model"
    assert len(body["items"]) == 5
    assert all(item["genres"] == [user_genre(user)] for item in body["items"])
    assert all(item["title"] == f"Planted Movie {item['id']}" for item in body["items"])
    assert not rated & {item["id"] for item in body["items"]}
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)


async def test_default_model_is_the_best_loaded(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/users/1/recommendations")).json()
    assert body["model"] == "rbm"  # rbm before autoencoder before ease
    assert len(body["items"]) == 10


async def test_exclude_seen_false_may_return_rated_items(client: httpx.AsyncClient) -> None:
    user = 2
    rated = {r["item_id"] for r in (await client.get(f"/v1/users/{user}/ratings")).json()}
    response = await client.get(
        f"/v1/users/{user}/recommendations",
        params={"k": 15, "model": "ease", "exclude_seen": "false"},
    )
    ids = {item["id"] for item in response.json()["items"]}
    assert rated <= ids  # the user's own (liked) items score highest under EASE


async def test_genre_restricts_the_answer(client: httpx.AsyncClient) -> None:
    user = 3  # group 1 (Comedy); ask for the other group's genre
    response = await client.get(
        f"/v1/users/{user}/recommendations",
        params={"k": 4, "model": "ease", "genre": GROUP_GENRES[0].lower()},
    )
    assert response.status_code == 200
    items = response.json()["items"]
    assert items and all(item_genre(item["id"]) == GROUP_GENRES[0] for item in items)


async def test_new_ratings_count_in_the_very_next_answer(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/users", json={"age": 30})
    assert created.status_code == 201
    user = created.json()["id"]
    cold = (await client.get(f"/v1/users/{user}/recommendations", params={"k": 5})).json()
    assert cold["strategy"] == "popularity"
    assert cold["model"] == "popularity"
    assert cold["model_version"] is None
    counts = [item["score"] for item in cold["items"]]
    assert counts == sorted(counts, reverse=True)

    # Rate five Comedy items: the answer becomes personal (Comedy), unlike popularity.
    ratings = [{"item_id": i, "rating": 5} for i in (16, 17, 18, 19, 20)]
    written = await client.post(f"/v1/users/{user}/ratings", json={"ratings": ratings})
    assert written.status_code == 200
    assert written.json()["written"] == 5
    warm = await client.get(f"/v1/users/{user}/recommendations", params={"k": 5, "model": "ease"})
    body = warm.json()
    assert body["strategy"] == "model"
    assert all(item["genres"] == ["Comedy"] for item in body["items"])
    assert not {16, 17, 18, 19, 20} & {item["id"] for item in body["items"]}
    assert [i["id"] for i in body["items"]] != [i["id"] for i in cold["items"]]


async def test_user_rating_only_unknown_items_gets_popularity(client: httpx.AsyncClient) -> None:
    user = (await client.post("/v1/users", json={})).json()["id"]
    # Items 31..34 exist in the catalogue but no model was trained on them.
    await client.post(f"/v1/users/{user}/ratings", json=[{"item_id": 31, "rating": 4}])
    body = (await client.get(f"/v1/users/{user}/recommendations", params={"k": 3})).json()
    assert body["strategy"] == "popularity"
    assert 31 not in {item["id"] for item in body["items"]}


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"model": "foo"}, 422, "unknown model"),
        ({"model": "autoencoder"}, 503, "not loaded"),
        ({"model": "gan"}, 422, "does not serve recommendations"),  # as dbn, loaded or not
        ({"genre": "Western"}, 422, "unknown genre"),
        ({"k": 0}, 422, "greater than or equal"),
        ({"k": "ten"}, 422, "valid integer"),
        ({"exclude_seen": "maybe"}, 422, "valid boolean"),
    ],
)
async def test_bad_parameters_are_4xx_with_a_reason(
    client: httpx.AsyncClient, params: dict[str, object], status: int, words: str
) -> None:
    response = await client.get("/v1/users/1/recommendations", params=params)
    assert response.status_code == status
    assert words in str(response.json()["detail"])


async def test_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/4242/recommendations")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown user 4242"}


async def test_recommendations_wait_for_a_free_inference_thread(
    tmp_path: Path, service_db_template: Path
) -> None:
    """``inference_threads`` caps how many recommendations run at once in a worker."""
    database = tmp_path / "deeprec.db"
    shutil.copyfile(service_db_template, database)
    # Misses of every model go to the inference thread (none computed on the event loop).
    settings = make_settings(
        tmp_path, f"sqlite:///{database}", inference_threads=1, inline_miss_ms=0
    )
    async for client in open_client(settings):
        limiter = client.app.state.serving.limiter  # type: ignore[attr-defined]
        assert limiter.total_tokens == 1
        answers: list[httpx.Response] = []
        async with anyio.create_task_group() as tasks:
            await limiter.acquire()  # the worker's only inference thread is busy
            tasks.start_soon(_ask, client, answers)
            await anyio.sleep(0.3)
            assert answers == [] and limiter.statistics().tasks_waiting == 1
            limiter.release()
        assert [a.status_code for a in answers] == [200]


async def _ask(client: httpx.AsyncClient, answers: list[httpx.Response]) -> None:
    answers.append(await client.get("/v1/users/4/recommendations", params={"k": 3}))
