"""Checkpoints: tensors in safetensors plus a JSON manifest, written atomically.

Layout of a checkpoint folder::

    model.safetensors   every tensor needed to rebuild the model
    manifest.json       format version, model type, config, id vocabularies, data sha256,
                        metrics, created time, code version, and the tensors' sha256

The folder is written under a temporary name beside its destination and renamed into place, so
a reader never sees half a checkpoint. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ml import __version__
from ml.models.config_keys import rename_legacy_keys

# Raise it when the manifest or the tensors' layout changes meaning; readers keep accepting every
# older version (1: the layout above, since the first release).
FORMAT_VERSION = 1
TENSORS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupted, of another format or of another model type."""


@dataclass
class Checkpoint:
    model_type: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    vocab: dict[str, list[int]] = field(default_factory=dict)
    data_sha256: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    code_version: str = __version__
    tensors_sha256: str | None = None
    path: Path | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    checkpoint: Checkpoint, directory: str | Path, *, overwrite: bool = False
) -> Path:
    """Write ``checkpoint`` to ``directory`` atomically and return the directory."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise CheckpointError(f"{directory}: already exists (pass overwrite=True to replace it)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        tensors = {
            name: t.detach().to("cpu").contiguous() for name, t in checkpoint.tensors.items()
        }
        save_file(tensors, str(staging / TENSORS_FILE))
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_type": checkpoint.model_type,
            "config": checkpoint.config,
            "vocab": checkpoint.vocab,
            "data_sha256": checkpoint.data_sha256,
            "metrics": checkpoint.metrics,
            "extra": checkpoint.extra,
            "created_at": checkpoint.created_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": checkpoint.code_version,
            "tensors_sha256": _sha256(staging / TENSORS_FILE),
        }
        with (staging / MANIFEST_FILE).open("w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no checkpoint folder there")
    if not manifest_path.is_file():
        raise CheckpointError(f"{directory}: not a DeepRec checkpoint ({MANIFEST_FILE} is missing)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_path}: corrupted manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{manifest_path}: corrupted manifest (not a JSON object)")
    _check_format_version(directory, manifest.get("format_version"))
    return manifest


def _check_format_version(directory: str | Path, found: object) -> None:
    """Accept every format this build has written (1 up to ``FORMAT_VERSION``; a change of
    format keeps reading the older ones); refuse a newer one with what to do about it."""
    if type(found) is not int or found < 1:
        raise CheckpointError(
            f"{directory}: unsupported checkpoint format {found!r} (not a DeepRec format version)"
        )
    if found > FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: unsupported checkpoint format {found}: written by a newer DeepRec "
            f"(this one reads formats 1 to {FORMAT_VERSION}); upgrade DeepRec to load it"
        )


def load_checkpoint(
    directory: str | Path, *, model_type: str | None = None, device: str | torch.device = "cpu"
) -> Checkpoint:
    """Read and verify a checkpoint; refuse a corrupted one or one of another model type."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if model_type is not None and manifest.get("model_type") != model_type:
        raise CheckpointError(
            f"{directory}: holds a {manifest.get('model_type')!r} model, not {model_type!r}"
        )
    tensors_path = directory / TENSORS_FILE
    if not tensors_path.is_file():
        raise CheckpointError(f"{directory}: {TENSORS_FILE} is missing")
    actual = _sha256(tensors_path)
    if actual != manifest.get("tensors_sha256"):
        raise CheckpointError(f"{directory}: {TENSORS_FILE} is corrupted (sha256 mismatch)")
    try:
        tensors = load_file(str(tensors_path), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{tensors_path}: unreadable ({exc})") from exc
    return Checkpoint(
        model_type=manifest["model_type"],
        config=manifest.get("config", {}),
        tensors=tensors,
        vocab=manifest.get("vocab", {}),
        data_sha256=manifest.get("data_sha256"),
        metrics=manifest.get("metrics", {}),
        extra=manifest.get("extra", {}),
        created_at=manifest.get("created_at"),
        code_version=manifest.get("code_version", "unknown"),
        tensors_sha256=actual,
        path=directory,
    )


def checkpoint_sha256(directory: str | Path) -> str:
    """A fingerprint of the whole checkpoint: sha256 of its manifest (which pins the tensors)."""
    return _sha256(Path(directory) / MANIFEST_FILE)


def module_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as checkpoint tensors: detached, on the CPU."""
    return {name: t.detach().cpu() for name, t in model.state_dict().items()}


def rebuild_module(
    checkpoint: Checkpoint, config_type: type, module_type: type[ModuleT], what: str
) -> ModuleT:
    """``module_type(config_type(**config))`` with the checkpoint's tensors, in eval mode, on the
    CPU; a config or tensors that do not fit are refused with a ``CheckpointError``. Keys the
    config type has renamed (its ``LEGACY_KEYS``) are read under their new names."""
    try:
        legacy = getattr(config_type, "LEGACY_KEYS", {})
        config = config_type(**rename_legacy_keys(checkpoint.config, legacy))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint.path}: bad {what} config ({exc})") from exc
    model = module_type(config)
    try:
        model.load_state_dict(checkpoint.tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint.path}: tensors do not fit the {what} config") from exc
    return model.eval()
