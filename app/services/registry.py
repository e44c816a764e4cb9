"""The models the service answers with: one loaded object per model type, swapped atomically.

Every route reads a model through ``registry.get(model_type)``, which returns a
:class:`LoadedModel` (``.version`` and ``.model`` plus where it came from). A retrain loads the new
checkpoint OUTSIDE the lock and then replaces the reference under it: a request that already holds
the old ``LoadedModel`` finishes on it (nothing is dropped), the next request gets the new one.
The registry is generic: it does not know what a model does, only its type and version, and
that a model with a ``warm_up()`` runs it once before it is served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ml.checkpoint import CheckpointError, checkpoint_sha256, read_manifest
from ml.inference import Recommender, load_model
from ml.inference.gan import GANSampler
from ml.inference.images import ImageModel
from ml.registry import BY_NAME

log = logging.getLogger(__name__)

# What a checkpoint loads into: a recommender, an image model (reconstruct) or a GAN sampler.
ServedModel = Recommender | ImageModel | GANSampler
Loader = Callable[[str | Path, torch.device], ServedModel]


class ModelNotLoadedError(LookupError):
    """No model of that type is loaded (none trained or activated yet, or its load failed)."""

    def __init__(self, model_type: str, loaded: list[str], message: str | None = None) -> None:
        self.model_type = model_type
        self.loaded = loaded
        reason = "is not loaded" if model_type in BY_NAME else "is not a known model type"
        super().__init__(
            message or f"model {model_type!r} {reason}; loaded: {', '.join(loaded) or 'none'}"
        )

    @property
    def unknown_type(self) -> bool:
        return self.model_type not in BY_NAME


@dataclass(frozen=True)
class LoadedModel:
    """One served model: the object ``ml.inference`` built, and the version it came from."""

    model_type: str
    version: str
    model: ServedModel
    checkpoint_path: str
    sha256: str | None = None
    version_id: int | None = None  # the model_version row, when it came from the database
    metrics: dict[str, Any] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def verify_sha256(path: str | Path, expected: str | None) -> str:
    """The checkpoint's fingerprint; :class:`CheckpointError` if it differs from ``expected``."""
    read_manifest(path)  # a clear CheckpointError for a missing or foreign folder
    actual = checkpoint_sha256(path)
    if expected is not None and actual != expected:
        raise CheckpointError(
            f"{path}: checkpoint sha256 {actual[:12]}... differs from the registered "
            f"{expected[:12]}... (the files changed after registration)"
        )
    return actual


def stored_checkpoint_path(path: str | Path, checkpoint_dir: str | Path | None) -> str:
    """How a ``model_version`` row records a checkpoint: relative to the checkpoint folder when
    it lies inside it (a data folder moved or restored elsewhere keeps serving), else absolute."""
    absolute = Path(path).resolve()
    if checkpoint_dir is not None:
        try:
            return absolute.relative_to(Path(checkpoint_dir).resolve()).as_posix()
        except ValueError:
            pass
    return str(absolute)


def resolve_checkpoint_path(path: str | Path, checkpoint_dir: str | Path | None) -> Path:
    """Where a recorded checkpoint path is now: relative ones under ``checkpoint_dir``. An old
    absolute one that no longer exists (written before paths were relative, then the folder
    moved) is looked for at the same ``MODEL_TYPE/VERSION`` place under ``checkpoint_dir``."""
    recorded = Path(path)
    if checkpoint_dir is None:
        return recorded
    root = Path(checkpoint_dir)
    if not recorded.is_absolute():
        return root / recorded
    if not recorded.exists():
        moved = root / recorded.parent.name / recorded.name
        if moved.exists():
            log.warning("checkpoint %s not found; serving it from %s", recorded, moved)
            return moved
    return recorded


def version_kwargs(row: Any) -> dict[str, Any]:
    """The :meth:`ModelRegistry.load` arguments of a ``model_version`` row."""
    return {
        "model_type": row.model_type,
        "version": row.version,
        "checkpoint_path": row.checkpoint_path,
        "sha256": row.sha256,
        "version_id": row.id,
        "metrics": row.metrics,
    }


class ModelRegistry:
    """Thread-safe map model_type -> :class:`LoadedModel` with atomic replacement."""

    def __init__(
        self,
        device: torch.device | str = "cpu",
        loader: Loader = load_model,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        """``checkpoint_dir``: where relative checkpoint paths (as rows record them) resolve."""
        self.device = torch.device(device)
        self.checkpoint_dir = checkpoint_dir
        self._loader = loader
        self._models: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[LoadedModel], None]] = []

    # ---------------------------------------------------------------- reading
    def get(self, model_type: str) -> LoadedModel:
        """The loaded model of that type, or :class:`ModelNotLoadedError`."""
        entry = self._models.get(model_type)  # one dict read: atomic under the GIL
        if entry is None:
            raise ModelNotLoadedError(model_type, self.model_types())
        return entry

    def find(self, model_type: str) -> LoadedModel | None:
        return self._models.get(model_type)

    def __contains__(self, model_type: object) -> bool:
        return model_type in self._models

    def model_types(self) -> list[str]:
        return sorted(self._models)

    def snapshot(self) -> dict[str, LoadedModel]:
        """A consistent copy of everything loaded right now."""
        with self._lock:
            return dict(self._models)

    def errors(self) -> dict[str, str]:
        """Why the last load of a model type failed (cleared by a successful load)."""
        with self._lock:
            return dict(self._errors)

    # ---------------------------------------------------------------- writing
    def add_swap_listener(self, listener: Callable[[LoadedModel], None]) -> None:
        """Call ``listener(entry)`` after every swap (e.g. to precompute answers); it must be
        quick and must not raise (errors are logged)."""
        with self._lock:
            self._listeners.append(listener)

    def swap(self, entry: LoadedModel) -> LoadedModel | None:
        """Make ``entry`` the served model of its type; returns the one it replaced."""
        with self._lock:
            old = self._models.get(entry.model_type)
            self._models[entry.model_type] = entry
            self._errors.pop(entry.model_type, None)
            listeners = list(self._listeners)
        log.info(
            "serving %s version %s (was %s)",
            entry.model_type,
            entry.version,
            old.version if old else "none",
        )
        for listener in listeners:
            try:
                listener(entry)
            except Exception:
                log.exception("a swap listener failed for %s", entry.model_type)
        return old

    def record_error(self, model_type: str, message: str) -> None:
        with self._lock:
            self._errors[model_type] = message

    def load(
        self,
        *,
        model_type: str,
        version: str,
        checkpoint_path: str | Path,
        sha256: str | None = None,
        version_id: int | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> LoadedModel:
        """Load a checkpoint (sha256 verified) WITHOUT serving it yet; call :meth:`swap` next.

        Raises :class:`CheckpointError` (or the loader's error) when the checkpoint is unusable.
        """
        path = resolve_checkpoint_path(checkpoint_path, self.checkpoint_dir)
        actual = verify_sha256(path, sha256)
        model = self._loader(path, self.device)
        found = getattr(model, "model_type", model_type)
        if found != model_type:
            raise CheckpointError(f"{path}: holds a {found!r} model, not {model_type!r}")
        warm_up = getattr(model, "warm_up", None)
        if callable(warm_up):  # before it is served: the first request must not pay for it
            warm_up()
        return LoadedModel(
            model_type=model_type,
            version=version,
            model=model,
            checkpoint_path=str(path),
            sha256=actual,
            version_id=version_id,
            metrics=dict(metrics or {}),
        )

    def load_and_swap(self, **kwargs: Any) -> LoadedModel:
        """Load then serve; a failure is recorded and re-raised, the old model stays served."""
        model_type = kwargs["model_type"]
        try:
            entry = self.load(**kwargs)
        except Exception as exc:
            self.record_error(model_type, f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise
        self.swap(entry)
        return entry
