"""Embeddings and image-reconstruction routes against a real app: a Mult-DAE and a digits
autoencoder trained here, registered as active model versions in the SQLite database."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app.core.config import Settings
from app.db.session import create_db_engine, create_session_factory
from ml.checkpoint import save_checkpoint
from ml.data.digits import load_images
from ml.data.schema import RatingsDataset
from ml.inference.images import images_to_png
from ml.models.autoencoder import apply_variants, image_config, mult_dae_config
from ml.training.autoencoder import train_images, train_ranking
from ml.training.base import TrainingOptions
from tests.app.api.conftest import make_settings, open_client
from tests.factories import activate_checkpoints

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ae_checkpoints(
    tmp_path_factory: pytest.TempPathFactory, planted_dataset: RatingsDataset
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ae-checkpoints")
    options = TrainingOptions(device="cpu", seed=0, epochs=60, progress=False)
    config = mult_dae_config(1, hidden_layers=(8,), batch_size=8, noise_level=0.5, weight_decay=0.0)
    ranking = train_ranking(planted_dataset.ratings, config, options, data_sha256="x")
    digits = load_images("digits")
    img_config = apply_variants(image_config(64), "denoising")
    image = train_images(digits, img_config, replace(options, epochs=30))
    return {
        "autoencoder": save_checkpoint(ranking, root / "ranking"),
        "autoencoder-images": save_checkpoint(image, root / "images"),
    }


@pytest.fixture
async def ae_client(
    service_settings: Settings, ae_checkpoints: dict[str, Path]
) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_db_engine(service_settings.database_url)
    with create_session_factory(engine)() as session:
        activate_checkpoints(session, ae_checkpoints, "a1")
    engine.dispose()
    async for c in open_client(service_settings):
        yield c


async def test_item_embeddings_as_json(ae_client: httpx.AsyncClient) -> None:
    answer = await ae_client.get("/v1/embeddings/items", params={"model": "autoencoder"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "autoencoder" and body["dims"] == 2 and body["method"] == "pca"
    points = body["points"]
    assert len(points) == 30 and all(len(p["coords"]) == 2 for p in points)
    first = next(p for p in points if p["id"] == 1)
    assert first["title"] == "Planted Movie 1" and first["genres"] == ["Action"]


async def test_item_embeddings_by_autoencoder_in_3d_and_png(ae_client: httpx.AsyncClient) -> None:
    params = {"dims": 3, "method": "autoencoder"}
    answer = await ae_client.get("/v1/embeddings/items", params=params)
    assert answer.status_code == 200, answer.text
    assert all(len(p["coords"]) == 3 for p in answer.json()["points"])
    png = await ae_client.get("/v1/embeddings/items", params={"format": "png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size[0] > 100


async def test_user_embeddings_fold_in_database_ratings(ae_client: httpx.AsyncClient) -> None:
    answer = await ae_client.get("/v1/embeddings/users", params={"limit": 10})
    assert answer.status_code == 200, answer.text
    points = answer.json()["points"]
    assert len(points) == 10 and points[0]["title"] is None


async def test_user_embeddings_come_in_pages(ae_client: httpx.AsyncClient) -> None:
    """A request reads one page of users (by id), never the whole ratings table."""
    pages = []
    for offset in (0, 15, 30):
        answer = await ae_client.get("/v1/embeddings/users", params={"limit": 15, "offset": offset})
        assert answer.status_code == 200, answer.text
        pages.append([p["id"] for p in answer.json()["points"]])
    assert pages == [list(range(1, 16)), list(range(16, 31)), list(range(31, 41))]
    past = await ae_client.get("/v1/embeddings/users", params={"offset": 40})
    assert past.status_code == 422 and "on this page" in past.json()["detail"]
    too_many = await ae_client.get("/v1/embeddings/users", params={"limit": 1001})
    assert too_many.status_code == 422


async def test_embeddings_errors(ae_client: httpx.AsyncClient) -> None:
    cases = [
        ("/v1/embeddings/items", {"dims": 4}, 422),
        ("/v1/embeddings/items", {"method": "tsne"}, 422),
        ("/v1/embeddings/things", {}, 422),
        ("/v1/embeddings/items", {"model": "gan"}, 422),  # loaded or not: no embeddings
        ("/v1/embeddings/items", {"model": "nonsense"}, 422),
        ("/v1/embeddings/items", {"model": "popularity"}, 503),
    ]
    for path, params, code in cases:
        answer = await ae_client.get(path, params=params)
        assert answer.status_code == code, (params, answer.text)
        assert "detail" in answer.json()
    ease = await ae_client.get("/v1/embeddings/users", params={"model": "ease"})
    assert ease.status_code == 422 and "no user embeddings" in ease.json()["detail"]


async def test_reconstruct_json_denoises(ae_client: httpx.AsyncClient) -> None:
    digits = load_images("digits").test_images[:20]
    answer = await ae_client.post(
        "/v1/images/reconstruct",
        params={"model": "autoencoder", "noise": 0.3, "seed": 1},
        json=digits.tolist(),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    out, inputs = np.asarray(body["reconstructions"]), np.asarray(body["inputs"])
    assert out.shape == (20, 64) and body["side"] == 8 and body["noise"] == 0.3
    assert ((out - digits) ** 2).mean() < ((inputs - digits) ** 2).mean()
    wrapped = await ae_client.post("/v1/images/reconstruct", json={"images": digits[:2].tolist()})
    assert wrapped.status_code == 200 and np.asarray(wrapped.json()["inputs"]).shape == (2, 64)


async def test_reconstruct_png_in_and_out(ae_client: httpx.AsyncClient) -> None:
    digit = load_images("digits").test_images[:1]
    answer = await ae_client.post(
        "/v1/images/reconstruct",
        params={"format": "png", "noise": 0.2},
        content=images_to_png(digit, 8),
        headers={"content-type": "image/png"},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (8, 24)  # original/input/output


async def test_reconstruct_errors(ae_client: httpx.AsyncClient) -> None:
    url = "/v1/images/reconstruct"
    bad = [
        (json.dumps([[0.5] * 63]), {}, 422),
        (json.dumps([[2.0] * 64]), {}, 422),
        ("not json", {}, 422),
        (json.dumps([]), {}, 422),
        (json.dumps([[0.1] * 64]), {"noise": 2}, 422),
        (json.dumps([[0.1] * 64]), {"model": "gan"}, 422),
        (json.dumps([[0.1] * 64]), {"model": "dbn"}, 503),
        (json.dumps([[0.0] * 64] * 1025), {}, 413),
    ]
    for content, params, code in bad:
        answer = await ae_client.post(
            url, params=params, content=content, headers={"content-type": "application/json"}
        )
        assert answer.status_code == code, (params, answer.text[:200])
        assert "detail" in answer.json()
    png = await ae_client.post(
        url, content=b"\x89PNG\r\n\x1a\nbroken", headers={"content-type": "image/png"}
    )
    assert png.status_code == 422


async def test_oversized_upload_is_refused(
    tmp_path: Path, service_settings: Settings, ae_checkpoints: dict[str, Path]
) -> None:
    small = make_settings(tmp_path, service_settings.database_url, max_upload_bytes=2048)
    async for client in open_client(small):
        answer = await client.post("/v1/images/reconstruct", content=json.dumps([[0.5] * 64] * 20))
        assert answer.status_code == 413 and "detail" in answer.json()


async def test_recommendations_and_similar_items_with_the_autoencoder(
    ae_client: httpx.AsyncClient,
) -> None:
    answer = await ae_client.get("/v1/users/2/recommendations", params={"model": "autoencoder"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "autoencoder" and body["strategy"] == "model"
    ids = [item["id"] for item in body["items"]]
    assert len(ids) == 10 and all(i <= 15 for i in ids[:5])  # user 2 likes items 1-15
    similar = await ae_client.get("/v1/items/1/similar", params={"model": "autoencoder", "k": 3})
    assert similar.status_code == 200, similar.text
    assert similar.json()["model"] == "autoencoder" and len(similar.json()["similar"]) == 3
