"""``deeprec models list | register | activate | export`` against a real database."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from app.core.config import get_settings
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.schema import RatingsDataset, normalise_ratings
from ml.training.baselines import EASETrainingConfig, train_ease
from tests.app.cli.runner import deeprec_in_process as deeprec
from tests.app.cli.test_foundation_cli import assert_one_line_error
from tests.conftest import planted_frame


@pytest.fixture
def store(migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The service's database and checkpoint folder, as the CLI's settings see them."""
    monkeypatch.setenv("DEEPREC_DATABASE_URL", migrated_url)
    monkeypatch.setenv("DEEPREC_CHECKPOINT_DIR", str(tmp_path / "store"))
    get_settings.cache_clear()
    yield tmp_path / "store"
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EASE checkpoint "trained elsewhere"."""
    ratings = normalise_ratings(planted_frame())
    items = pd.DataFrame({"item_id": sorted(ratings["item_id"].unique())})
    dataset = RatingsDataset(name="planted", ratings=ratings, items=items)
    folder = tmp_path_factory.mktemp("elsewhere") / "ease"
    return save_checkpoint(train_ease(dataset, EASETrainingConfig(l2=10.0)), folder)


def _json(done) -> dict:  # type: ignore[no-untyped-def]
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_register_activate_export_round_trip(store: Path, trained: Path, tmp_path: Path) -> None:
    registered = _json(deeprec("models", "register", str(trained), "--version", "gpu-1"))
    assert registered["model_type"] == "ease" and registered["version"] == "gpu-1"
    assert registered["sha256"] == checkpoint_sha256(trained)
    assert registered["active"] is False
    stored = Path(registered["checkpoint_path"])
    assert stored.parent.parent == store.resolve() and stored.name == "gpu-1"

    active = _json(deeprec("models", "activate", "gpu-1"))
    assert active["active"] is True and active["id"] == registered["id"]
    listed = _json(deeprec("models", "list", "--json"))["items"]
    assert [(v["version"], v["active"]) for v in listed] == [("gpu-1", True)]

    out = tmp_path / "exported"
    exported = _json(deeprec("models", "export", "gpu-1", str(out)))
    assert exported["exported_to"] == str(out)
    for name in ("manifest.json", "model.safetensors"):
        assert (out / name).read_bytes() == (trained / name).read_bytes()
    # The exported folder imports again, as another version, with the same fingerprint.
    again = _json(deeprec("models", "register", str(out), "--version", "gpu-2", "--activate"))
    assert again["sha256"] == registered["sha256"] and again["active"] is True
    listed = _json(deeprec("models", "list", "--json"))["items"]
    assert {v["version"]: v["active"] for v in listed} == {"gpu-1": False, "gpu-2": True}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_tampered_and_foreign_checkpoints_are_refused(
    store: Path, trained: Path, tmp_path: Path
) -> None:
    tampered = _copy(trained, tmp_path / "tampered")
    blob = bytearray((tampered / "model.safetensors").read_bytes())
    blob[-1] ^= 0xFF  # one flipped byte in the weights
    (tampered / "model.safetensors").write_bytes(bytes(blob))
    assert_one_line_error(
        deeprec("models", "register", str(tampered), "--version", "bad"), "sha256 mismatch"
    )

    future = _copy(trained, tmp_path / "future")
    manifest = json.loads((future / "manifest.json").read_text())
    (future / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    assert_one_line_error(
        deeprec("models", "register", str(future)), "unsupported checkpoint format 99"
    )

    foreign = _copy(trained, tmp_path / "foreign")
    (foreign / "manifest.json").write_text(json.dumps({**manifest, "model_type": "resnet"}))
    assert_one_line_error(deeprec("models", "register", str(foreign)), "unknown model type")

    not_ours = tmp_path / "not-ours"
    not_ours.mkdir()
    (not_ours / "weights.bin").write_bytes(b"\0" * 16)
    assert_one_line_error(deeprec("models", "register", str(not_ours)), "not a DeepRec checkpoint")
    # Nothing was stored or recorded for any of them.
    assert not store.exists() or not any(store.rglob("manifest.json"))
    assert _json(deeprec("models", "list", "--json"))["items"] == []


def test_activate_refuses_files_changed_after_registration(store: Path, trained: Path) -> None:
    registered = _json(deeprec("models", "register", str(trained), "--version", "v7"))
    stored = Path(registered["checkpoint_path"])
    manifest = json.loads((stored / "manifest.json").read_text())
    manifest["metrics"]["ndcg@10_all"] = 0.99  # a doctored figure
    (stored / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(deeprec("models", "activate", "v7"), "differs from the registered")
    assert_one_line_error(deeprec("models", "activate", "v8"), "unknown model version 'v8'")
    listed = _json(deeprec("models", "list", "--json"))["items"]
    assert [v["active"] for v in listed] == [False]
