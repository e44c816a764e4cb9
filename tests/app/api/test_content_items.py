"""Films created and edited through the API: persisted, recommended by the content models and
listed among content neighbours at once, with no retraining; bad input refused."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.db.session import create_db_engine, create_session_factory
from ml.checkpoint import save_checkpoint
from ml.data.schema import RatingsDataset
from ml.models.content import ContentConfig
from ml.training.base import TrainingOptions
from ml.training.content import train_content, train_hybrid
from tests.app.api.conftest import (
    N_ITEMS,
    admin_headers,
    item_genre,
    load_service_database,
    make_settings,
    open_client,
)

pytestmark = pytest.mark.anyio

CONFIG = ContentConfig(code_dim=8, n_hidden=32, epochs=200, batch_size=16, ease_l2=10.0)
COMEDY_FAN, ACTION_FAN = 1, 2  # odd users rate only Comedy items, even ones only Action
# Titled like the planted catalogue ("Planted Movie N"): on these 34 titles a film without those
# two words would differ from every training item in its title more than in its genre.
NEW_FILM = {
    "title": "Planted Movie Laugh Riot",
    "year": 1995,
    "genres": ["Comedy"],
    "description": "Two rival clowns open a bakery.",
}


@pytest.fixture(scope="module")
def content_checkpoints(
    tmp_path_factory: pytest.TempPathFactory, planted_dataset: RatingsDataset
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("content-checkpoints")
    options = TrainingOptions(device="cpu", seed=3, progress=False)
    return {
        "content": save_checkpoint(train_content(planted_dataset, CONFIG, options), root / "c"),
        "hybrid": save_checkpoint(train_hybrid(planted_dataset, CONFIG, options), root / "h"),
    }


@pytest.fixture(scope="module")
def content_db_template(
    tmp_path_factory: pytest.TempPathFactory,
    _migrated_sqlite_template: Path,
    planted_dataset: RatingsDataset,
    checkpoints: dict[str, Path],
    content_checkpoints: dict[str, Path],
) -> Path:
    target = tmp_path_factory.mktemp("content-db") / "deeprec.db"
    shutil.copyfile(_migrated_sqlite_template, target)
    engine = create_db_engine(f"sqlite:///{target}")
    with create_session_factory(engine)() as session:
        load_service_database(
            session,
            planted_dataset,
            {**checkpoints, **content_checkpoints},
            active=("ease", "rbm", "content", "hybrid"),
        )
    engine.dispose()
    return target


@pytest.fixture
def database(tmp_path: Path, content_db_template: Path) -> Path:
    target = tmp_path / "deeprec.db"
    shutil.copyfile(content_db_template, target)
    return target


@pytest.fixture
async def client(tmp_path: Path, database: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in open_client(make_settings(tmp_path, f"sqlite:///{database}")):
        yield c


async def _recommended(
    client: httpx.AsyncClient, user_id: int, model: str, k: int, genre: str | None = None
) -> list[int]:
    params: dict[str, str | int] = {"model": model, "k": k, **({"genre": genre} if genre else {})}
    response = await client.get(f"/v1/users/{user_id}/recommendations", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model
    return [item["id"] for item in response.json()["items"]]


async def _similar(client: httpx.AsyncClient, item_id: int, k: int) -> list[dict]:
    response = await client.get(f"/v1/items/{item_id}/similar", params={"by": "content", "k": k})
    assert response.status_code == 200, response.text
    return response.json()["similar"]


async def test_a_created_film_is_recommended_and_has_neighbours_at_once(
    client: httpx.AsyncClient,
) -> None:
    before = await _recommended(client, COMEDY_FAN, "content", 10)
    created = await client.post("/v1/items", json=NEW_FILM, headers=admin_headers())
    assert created.status_code == 201, created.text
    film = created.json()
    new_id = film["id"]
    assert new_id == N_ITEMS + 5  # the next id after the catalogue's largest (34)
    assert film == {**NEW_FILM, "id": new_id}
    assert new_id not in before

    stored = await client.get(f"/v1/items/{new_id}")
    assert stored.status_code == 200 and stored.json()["title"] == NEW_FILM["title"]

    # Recommended to a user whose ratings favour comedies, by both content models...
    assert new_id in await _recommended(client, COMEDY_FAN, "content", 10)
    assert new_id in await _recommended(client, COMEDY_FAN, "hybrid", 10)
    # ... and not to one who only rates action films.
    assert new_id not in await _recommended(client, ACTION_FAN, "content", 10)

    # Among its genre neighbours' similar items, and its own neighbours share its genre.
    comedies = [i for i in range(1, N_ITEMS + 1) if item_genre(i) == "Comedy"]
    for neighbour in comedies[:3]:
        assert new_id in [s["id"] for s in await _similar(client, neighbour, len(comedies))]
    own = await _similar(client, new_id, 5)
    assert all("Comedy" in s["genres"] for s in own)
    body = (await client.get(f"/v1/items/{new_id}/similar", params={"by": "content"})).json()
    assert body["model"] == "content" and body["item"]["id"] == new_id

    # The collaborative models never saw it: by=ratings says so instead of guessing.
    by_ratings = await client.get(f"/v1/items/{new_id}/similar")
    assert by_ratings.status_code == 422 and "vocabulary" in by_ratings.json()["detail"]


async def test_editing_a_film_moves_it_to_its_new_genre(client: httpx.AsyncClient) -> None:
    film = (await client.post("/v1/items", json=NEW_FILM, headers=admin_headers())).json()
    changed = await client.patch(
        f"/v1/items/{film['id']}",
        json={"genres": ["Action"], "description": "Two rival soldiers open a bakery."},
        headers=admin_headers(),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["genres"] == ["Action"] and changed.json()["title"] == NEW_FILM["title"]
    # The action fan has 7 action films left to see: the edited film joins them.
    assert film["id"] in await _recommended(client, ACTION_FAN, "content", 8, genre="Action")
    # ... and the comedy fan's 7 unseen comedies all come before it now.
    assert film["id"] not in await _recommended(client, COMEDY_FAN, "content", 7)
    assert all("Action" in s["genres"] for s in await _similar(client, film["id"], 5))


async def test_a_created_film_is_persisted(
    client: httpx.AsyncClient, tmp_path: Path, database: Path
) -> None:
    film = (await client.post("/v1/items", json=NEW_FILM, headers=admin_headers())).json()
    async for restarted in open_client(make_settings(tmp_path, f"sqlite:///{database}")):
        stored = await restarted.get(f"/v1/items/{film['id']}")
        assert stored.status_code == 200 and stored.json()["genres"] == ["Comedy"]
        assert film["id"] in await _recommended(restarted, COMEDY_FAN, "content", 10)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"year": 1995}, 422),  # no title
        ({"title": "   "}, 422),
        ({"title": "X", "year": 3000}, 422),
        ({"title": "X", "genres": [""]}, 422),
        ({"title": "X", "rating": 5}, 422),  # unknown field
        ({"title": "X", "id": 5}, 409),  # an existing id
        ({"title": "X" * 600}, 422),
    ],
)
async def test_bad_films_are_refused(client: httpx.AsyncClient, body: dict, status: int) -> None:
    response = await client.post("/v1/items", json=body, headers=admin_headers())
    assert response.status_code == status, response.text
    assert "detail" in response.json()


async def test_item_writes_need_the_admin_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/items", json=NEW_FILM)).status_code == 401
    wrong = await client.post("/v1/items", json=NEW_FILM, headers=admin_headers("nope"))
    assert wrong.status_code == 403
    assert (await client.patch("/v1/items/5", json={"title": "Y"})).status_code == 401
    assert (await client.get("/v1/items/35")).status_code == 404  # nothing was written


async def test_bad_edits_and_queries_are_refused(client: httpx.AsyncClient) -> None:
    headers = admin_headers()
    missing = await client.patch("/v1/items/999", json={"title": "Y"}, headers=headers)
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
    for body in ({}, {"title": None}, {"genres": None}, {"colour": "red"}):
        response = await client.patch("/v1/items/5", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    unchanged = await client.get("/v1/items/5")
    assert unchanged.json()["title"] == "Planted Movie 5"
    wrong_model = await client.get("/v1/items/5/similar", params={"by": "content", "model": "ease"})
    assert wrong_model.status_code == 422 and "content model" in wrong_model.json()["detail"]
    assert (await client.get("/v1/items/5/similar", params={"by": "taste"})).status_code == 422
    assert (await client.get("/v1/items/999/similar", params={"by": "content"})).status_code == 404
