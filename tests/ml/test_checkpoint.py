from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ml.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def make(model_type: str = "toy") -> Checkpoint:
    gen = torch.Generator().manual_seed(0)
    return Checkpoint(
        model_type=model_type,
        config={"hidden": 3},
        tensors={"w": torch.randn(4, 3, generator=gen), "b": torch.arange(3, dtype=torch.float64)},
        vocab={"user": [1, 5], "item": [7, 8, 9, 10]},
        data_sha256="abc",
        metrics={"ndcg@10_all": 0.5},
    )


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    original = make()
    save_checkpoint(original, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt", model_type="toy")
    for name, tensor in original.tensors.items():
        assert (
            torch.equal(loaded.tensors[name], tensor) and loaded.tensors[name].dtype == tensor.dtype
        )
    assert (loaded.config, loaded.vocab, loaded.metrics) == (
        original.config,
        original.vocab,
        original.metrics,
    )
    assert loaded.created_at and loaded.code_version
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging folders left


def test_refuses_overwrite_unless_asked(tmp_path: Path) -> None:
    save_checkpoint(make(), tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(make(), tmp_path / "ckpt")
    save_checkpoint(make("other"), tmp_path / "ckpt", overwrite=True)
    assert load_checkpoint(tmp_path / "ckpt").model_type == "other"


def test_corrupted_foreign_and_missing_checkpoints_are_refused(tmp_path: Path) -> None:
    path = save_checkpoint(make(), tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="holds a 'toy' model, not 'rbm'"):
        load_checkpoint(path, model_type="rbm")
    tensors = path / "model.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        load_checkpoint(tmp_path / "absent")
    (tmp_path / "foreign").mkdir()
    with pytest.raises(CheckpointError, match="not a DeepRec checkpoint"):
        load_checkpoint(tmp_path / "foreign")
    (tmp_path / "foreign" / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(CheckpointError, match="unsupported checkpoint format"):
        load_checkpoint(tmp_path / "foreign")
    (tmp_path / "foreign" / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted manifest"):
        load_checkpoint(tmp_path / "foreign")


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    bad = make()
    bad.config = {"not json": object()}
    with pytest.raises(TypeError):
        save_checkpoint(bad, tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (FORMAT_VERSION + 1, "written by a newer DeepRec .* upgrade DeepRec to load it"),
        (0, "not a DeepRec format version"),
        ("1", "not a DeepRec format version"),
        (True, "not a DeepRec format version"),
        (None, "not a DeepRec format version"),
    ],
)
def test_a_format_version_this_build_cannot_read_is_refused_clearly(
    tmp_path: Path, version: object, message: str
) -> None:
    path = save_checkpoint(make(), tmp_path / "ckpt")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = version
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=f"unsupported checkpoint format .*{message}"):
        load_checkpoint(path)


def test_every_format_up_to_this_builds_loads(tmp_path: Path) -> None:
    path = save_checkpoint(make(), tmp_path / "ckpt")
    manifest = json.loads((path / "manifest.json").read_text())
    for version in range(1, FORMAT_VERSION + 1):
        manifest["format_version"] = version
        (path / "manifest.json").write_text(json.dumps(manifest))
        assert load_checkpoint(path, model_type="toy").config == {"hidden": 3}
