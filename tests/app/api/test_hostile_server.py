"""Hostile input against a REAL server: ``deeprec serve`` (uvicorn) on a free loopback port, over
the planted database with a small model of every family active.

- ``/healthz`` keeps answering while decompression bombs, huge PNGs, deeply nested JSON and an
  oversized bare list of ratings are refused (all of them used to reach a decoder on the event
  loop or a 500);
- schemathesis, with and without the admin token, finds no server error and no answer that
  breaks the OpenAPI schema.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image

from app.db.session import create_db_engine, create_session_factory
from ml.checkpoint import Checkpoint, save_checkpoint
from ml.data.digits import load_images
from ml.data.schema import RatingsDataset
from ml.inference.dbn import model_tensors as dbn_tensors
from ml.inference.gan import gan_tensors
from ml.models.autoencoder import image_config, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.models.content import ContentConfig
from ml.models.dbn import DBN, DBNConfig
from ml.models.gan import GANConfig
from ml.models.rbm import BernoulliRBM, BernoulliRBMConfig
from ml.training.autoencoder import train_images, train_ranking
from ml.training.autorec import train_autorec
from ml.training.base import TrainingOptions
from ml.training.content import train_content, train_hybrid
from ml.training.gan import train_gan
from tests.app.api.conftest import ADMIN_TOKEN
from tests.factories import activate_checkpoints
from tests.live_server import LiveServer, running_server, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def png_bytes(size: tuple[int, int], mode: str = "1") -> bytes:
    """A real PNG of ``size``: mode "1" compresses to kilobytes however large it is."""
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def hostile_bodies() -> dict[str, tuple[bytes, str]]:
    """What the probe sent: (body, content type)."""
    ratings = [{"item_id": 1 + i % 30, "rating": 4} for i in range(140_000)]
    return {
        "bomb 20000x20000 png": (png_bytes((20_000, 20_000)), "image/png"),
        "large 12000x12000 png": (png_bytes((12_000, 12_000)), "image/png"),
        "50000-deep json": (b"[" * 50_000, "application/json"),
        "140000 ratings bare list": (json.dumps(ratings).encode(), "application/json"),
    }


def small_models(root: Path, planted: RatingsDataset) -> dict[str, Path]:
    """A small checkpoint of every other model family, so that no answer is a 503 for a model
    that is not loaded (schemathesis counts every 5xx as a server error)."""
    options = TrainingOptions(device="cpu", seed=1, epochs=1, progress=False)
    digits = load_images("digits")
    gan_config = GANConfig(n_hidden=16, latent_dim=4, conditional=True)
    gan, _ = train_gan(digits.train_images, digits.train_labels, gan_config, options)
    generator = torch.Generator().manual_seed(0)
    dbn = DBN(DBNConfig(layers=(64, 20, 5), gibbs_steps=5))
    rbm = BernoulliRBM(BernoulliRBMConfig(n_visible=64, n_hidden=16))
    for module in (dbn, rbm):  # untrained but not degenerate: perturbed weights
        with torch.no_grad():
            for param in module.parameters():
                param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    ratings = planted.ratings
    content_config = ContentConfig(code_dim=4, n_hidden=8, epochs=2, batch_size=16, ease_l2=10.0)
    ranking = mult_dae_config(
        1, hidden_layers=(8,), batch_size=8, noise_level=0.5, weight_decay=0.0
    )
    checkpoints = {
        "gan": Checkpoint("gan", dataclasses.asdict(gan_config), gan_tensors(gan)),
        "dbn": Checkpoint("dbn", dataclasses.asdict(dbn.config), dbn_tensors(dbn)),
        "rbm-images": Checkpoint(
            "rbm-images", dataclasses.asdict(rbm.config), dbn_tensors(rbm), extra={"gibbs_steps": 5}
        ),
        "autoencoder-images": train_images(digits, image_config(64), options),
        "autoencoder": train_ranking(ratings, ranking, options, data_sha256="x"),
        "autorec": train_autorec(ratings, AutoRecConfig(n_hidden=8, batch_size=8), options),
        "content": train_content(planted, content_config, options),
        "hybrid": train_hybrid(planted, content_config, options),
    }
    return {name: save_checkpoint(ckpt, root / name) for name, ckpt in checkpoints.items()}


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory,
    service_db_template: Path,
    planted_dataset: RatingsDataset,
    checkpoints: dict[str, Path],
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("hostile")
    database = root / "deeprec.db"
    shutil.copyfile(service_db_template, database)
    url = f"sqlite:///{database}"
    served = {**checkpoints, **small_models(root / "ckpt", planted_dataset)}
    engine = create_db_engine(url)
    with create_session_factory(engine)() as session:
        others = {t: path for t, path in served.items() if t not in ("ease", "rbm")}
        activate_checkpoints(session, others, "h1")  # ease and rbm are active already
    engine.dispose()
    # schemathesis starts real retrain jobs: keep them short
    env = server_env(url, root, admin_token=ADMIN_TOKEN, retrain_timeout_s="5")
    with running_server(env, root, access_log=True, ready_timeout=180) as server:
        yield server


def test_healthz_answers_while_hostile_uploads_are_refused(
    live_server: LiveServer, hostile_bodies: dict[str, tuple[bytes, str]]
) -> None:
    targets = ["/v1/gan/discriminate", "/v1/images/reconstruct", "/v1/users/1/ratings"]
    refused: list[tuple[str, str, int, object]] = []
    done = threading.Event()

    def attack() -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as hostile:
            try:
                for _ in range(3):
                    for name, (body, kind) in hostile_bodies.items():
                        for path in targets:
                            if kind == "image/png" and path.endswith("/ratings"):
                                continue
                            answer = hostile.post(
                                path, content=body, headers={"content-type": kind}
                            )
                            refused.append((name, path, answer.status_code, answer.json()))
            finally:
                done.set()

    latencies: list[float] = []
    peak_before = live_server.peak_rss_mb()
    attacker = threading.Thread(target=attack)
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        attacker.start()
        while not done.is_set():
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
        attacker.join()
    codes = {(name, path): code for name, path, code, _ in refused}
    assert all(code < 500 for code in codes.values()), codes
    assert all("detail" in body for *_, body in refused)  # type: ignore[operator]
    gan = "/v1/gan/discriminate"
    assert codes[("bomb 20000x20000 png", gan)] == 413
    assert codes[("large 12000x12000 png", gan)] == 413
    assert codes[("50000-deep json", gan)] == 422
    assert codes[("bomb 20000x20000 png", "/v1/images/reconstruct")] == 413
    assert codes[("50000-deep json", "/v1/images/reconstruct")] == 422
    assert codes[("50000-deep json", "/v1/users/1/ratings")] == 422
    assert codes[("140000 ratings bare list", "/v1/users/1/ratings")] == 422
    worst = max(latencies)
    print(  # the figures the issue asks for; -s shows them
        f"\n{len(refused)} hostile requests, {sum(c >= 500 for *_, c, _ in refused)} 5xx; "
        f"/healthz x{len(latencies)}: median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} "
        f"ms, max {worst * 1000:.1f} ms; server peak RSS {peak_before:.0f} MB before the "
        f"uploads, {live_server.peak_rss_mb():.0f} MB after"
    )
    # 100 ms on an idle machine; loose, because CI shares its cores (the figure is printed).
    assert worst < 1.0


def schemathesis_run(live_server: LiveServer, report: Path, *extra: str) -> dict[str, object]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{live_server.url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance,unsupported_method,allow_header_conformance",
        "--max-examples",
        "25",
        "--seed",
        "16",
        "--workers",
        "2",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-shrink",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *extra,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=report.parent)
    return {"code": run.returncode, "output": run.stdout[-6000:] + run.stderr[-2000:]}


@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "admin"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server: LiveServer, tmp_path: Path, with_token: bool
) -> None:
    # With the token, the admin operations (the others answer the same either way).
    admin = ["-H", f"Authorization: Bearer {ADMIN_TOKEN}", "--include-tag", "admin"]
    extra = admin if with_token else []
    result = schemathesis_run(live_server, tmp_path / "junit.xml", *extra)
    print(result["output"])
    assert result["code"] == 0, result["output"]
    junit = (tmp_path / "junit.xml").read_text()
    assert 'failures="0"' in junit and 'errors="0"' in junit, junit[-3000:]
