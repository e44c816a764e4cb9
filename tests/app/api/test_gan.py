"""GAN routes against a real app: a real (briefly trained) GAN checkpoint registered as the active
``gan`` model version in the SQLite database, loaded by the lifespan like every model."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app.core.config import Settings
from app.crud import register_model_version
from app.db.session import create_db_engine, create_session_factory
from ml.checkpoint import Checkpoint, checkpoint_sha256, save_checkpoint
from ml.data.digits import load_images
from ml.inference.gan import gan_tensors
from ml.models.gan import GANConfig
from ml.training.base import TrainingOptions
from ml.training.gan import train_gan
from tests.app.api.conftest import open_client

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gan_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An unconditional and a conditional GAN, a few epochs on the real 8x8 digits."""
    data = load_images("digits")
    root = tmp_path_factory.mktemp("gan-checkpoints")
    paths = {}
    for name, conditional in (("unconditional", False), ("conditional", True)):
        config = GANConfig(n_hidden=32, latent_dim=8, conditional=conditional)
        options = TrainingOptions(device="cpu", seed=1, epochs=2, progress=False)
        model, _ = train_gan(data.train_images, data.train_labels, config, options)
        ckpt = Checkpoint("gan", dataclasses.asdict(config), gan_tensors(model))
        paths[name] = save_checkpoint(ckpt, root / name)
    return paths


def _activate(settings: Settings, path: Path, version: str) -> None:
    engine = create_db_engine(settings.database_url)
    with create_session_factory(engine)() as session:
        register_model_version(
            session=session,
            model_type="gan",
            checkpoint_path=str(path),
            sha256=checkpoint_sha256(path),
            version=version,
            activate=True,
        )
    engine.dispose()


@pytest.fixture
async def gan_client(
    service_settings: Settings, gan_checkpoints: dict[str, Path]
) -> AsyncIterator[httpx.AsyncClient]:
    _activate(service_settings, gan_checkpoints["unconditional"], "g1")
    async for c in open_client(service_settings):
        yield c


@pytest.fixture
async def cgan_client(
    service_settings: Settings, gan_checkpoints: dict[str, Path]
) -> AsyncIterator[httpx.AsyncClient]:
    _activate(service_settings, gan_checkpoints["conditional"], "c1")
    async for c in open_client(service_settings):
        yield c


async def test_samples_as_json_are_reproducible_from_the_seed(
    gan_client: httpx.AsyncClient,
) -> None:
    first = await gan_client.get("/v1/gan/samples", params={"n": 5, "seed": 11})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == "gan" and body["model_version"] == "g1" and body["seed"] == 11
    images = np.asarray(body["images"])
    assert images.shape == (5, 64) and images.min() >= 0 and images.max() <= 1
    again = await gan_client.get("/v1/gan/samples", params={"n": 5, "seed": 11})
    assert again.json()["images"] == body["images"]
    other = await gan_client.get("/v1/gan/samples", params={"n": 5, "seed": 12})
    assert other.json()["images"] != body["images"]
    # No seed: a fresh one, reported so the same images can be asked for again.
    fresh = await gan_client.get("/v1/gan/samples", params={"n": 2})
    seed = fresh.json()["seed"]
    assert fresh.headers["x-seed"] == str(seed)
    replay = await gan_client.get("/v1/gan/samples", params={"n": 2, "seed": seed})
    assert replay.json()["images"] == fresh.json()["images"]


async def test_samples_as_png_grid(gan_client: httpx.AsyncClient) -> None:
    response = await gan_client.get(
        "/v1/gan/samples", params={"n": 6, "seed": 1, "format": "png", "columns": 3, "scale": 2}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as picture:
        assert picture.size == ((3 * 9 + 1) * 2, (2 * 9 + 1) * 2)


async def test_sample_parameters_are_validated(gan_client: httpx.AsyncClient) -> None:
    for params in ({"n": 0}, {"n": 10_000}, {"seed": -1}, {"format": "gif"}):
        response = await gan_client.get("/v1/gan/samples", params=params)
        assert response.status_code == 422, params
    unconditional = await gan_client.get("/v1/gan/samples", params={"label": 3})
    assert unconditional.status_code == 422
    assert "unconditional" in unconditional.json()["detail"]


async def test_conditional_samples_carry_their_labels(cgan_client: httpx.AsyncClient) -> None:
    response = await cgan_client.get("/v1/gan/samples", params={"n": 4, "seed": 0, "label": 7})
    assert response.status_code == 200
    assert response.json()["labels"] == [7, 7, 7, 7] and response.json()["label"] == 7
    mixed = await cgan_client.get("/v1/gan/samples", params={"n": 12, "seed": 0})
    assert mixed.json()["labels"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    bad = await cgan_client.get("/v1/gan/samples", params={"label": 10})
    assert bad.status_code == 422


async def test_discriminate_json_and_png(
    gan_client: httpx.AsyncClient, cgan_client: httpx.AsyncClient
) -> None:
    digits = load_images("digits").test_images[:3]
    response = await gan_client.post("/v1/gan/discriminate", json={"images": digits.tolist()})
    assert response.status_code == 200, response.text
    probabilities = response.json()["probabilities"]
    assert len(probabilities) == 3 and all(0.0 <= p <= 1.0 for p in probabilities)
    served = gan_client.app.state.registry.get("gan").model  # type: ignore[attr-defined]
    assert probabilities == pytest.approx(served.discriminate(digits).tolist(), abs=1e-6)
    # (N, 8, 8) nested lists work too; a PNG is resized to 8x8.
    square = await gan_client.post(
        "/v1/gan/discriminate", json={"images": digits.reshape(3, 8, 8).tolist()}
    )
    assert square.json()["probabilities"] == pytest.approx(probabilities)
    buffer = io.BytesIO()
    Image.fromarray((digits[0].reshape(8, 8) * 255).astype(np.uint8)).resize((32, 32)).save(
        buffer, format="PNG"
    )
    png = await gan_client.post(
        "/v1/gan/discriminate",
        content=buffer.getvalue(),
        headers={"content-type": "image/png"},
    )
    assert png.status_code == 200 and len(png.json()["probabilities"]) == 1
    labelled = await cgan_client.post(
        "/v1/gan/discriminate", json={"images": digits.tolist(), "labels": [1, 2, 3]}
    )
    assert labelled.status_code == 200
    assert all(0.0 <= p <= 1.0 for p in labelled.json()["probabilities"])


async def test_discriminate_refuses_bad_input(gan_client: httpx.AsyncClient) -> None:
    cases = [
        {"images": [[2.0] * 64]},  # out of [0, 1]
        {"images": [[0.5] * 10]},  # wrong size
        {"images": []},
        {"images": [[0.5] * 64], "labels": [1]},  # labels for an unconditional GAN
    ]
    for body in cases:
        response = await gan_client.post("/v1/gan/discriminate", json=body)
        assert response.status_code == 422, body
        assert "detail" in response.json()
    garbage = await gan_client.post(
        "/v1/gan/discriminate", content=b"not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 422
    bad_png = await gan_client.post(
        "/v1/gan/discriminate", content=b"\x89PNG broken", headers={"content-type": "image/png"}
    )
    assert bad_png.status_code == 422


async def test_without_an_active_gan_the_routes_answer_503(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/gan/samples")
    assert response.status_code == 503
    assert "gan" in response.json()["detail"]


async def test_interpolation_runs_from_one_seed_to_the_other(
    cgan_client: httpx.AsyncClient,
) -> None:
    params = {"seed_a": 5, "seed_b": 9, "steps": 6, "label": 3}
    response = await cgan_client.get("/v1/gan/interpolate", params=params)
    assert response.status_code == 200
    body = response.json()
    assert (body["seed_a"], body["seed_b"], body["label"], body["side"]) == (5, 9, 3, 8)
    images = np.asarray(body["images"])
    assert images.shape == (6, 64) and images.min() >= 0 and images.max() <= 1
    # The ends are the seeds' own samples (the first code each seed draws).
    for seed, end in ((5, images[0]), (9, images[-1])):
        one = await cgan_client.get("/v1/gan/samples", params={"n": 1, "seed": seed, "label": 3})
        np.testing.assert_allclose(one.json()["images"][0], end, atol=1e-4)
    default = await cgan_client.get("/v1/gan/interpolate", params={"seed_a": 1, "seed_b": 2})
    assert default.json()["label"] == 0 and len(default.json()["images"]) == 8
    for bad in ({"seed_a": 1}, {"seed_a": 1, "seed_b": 2, "steps": 1}, {**params, "label": 10}):
        refused = await cgan_client.get("/v1/gan/interpolate", params=bad)
        assert refused.status_code == 422, bad
        assert "detail" in refused.json()
