"""The model registry: verified loads, clear errors, atomic swaps under concurrent readers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.services.registry import LoadedModel, ModelNotLoadedError, ModelRegistry
from ml.checkpoint import CheckpointError, checkpoint_sha256, save_checkpoint
from ml.data.schema import RatingsDataset, empty_items, normalise_ratings
from ml.device import resolve_device
from ml.inference import Recommender
from ml.models.rbm import RBMConfig
from ml.models.rbm_config import RBMTraining
from ml.training.base import TrainingOptions
from ml.training.baselines import EASETrainingConfig, train_ease
from ml.training.rbm import train_rbm_checkpoint
from tests.conftest import planted_frame


@pytest.fixture(scope="module")
def ease_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ratings = normalise_ratings(planted_frame())
    dataset = RatingsDataset("planted", ratings, empty_items(ratings["item_id"].to_numpy()))
    root = tmp_path_factory.mktemp("registry")
    a = save_checkpoint(train_ease(dataset, EASETrainingConfig(l2=10.0)), root / "a")
    b = save_checkpoint(train_ease(dataset, EASETrainingConfig(l2=50.0)), root / "b")
    return a, b


def test_load_verifies_and_swap_serves(ease_checkpoints: tuple[Path, Path]) -> None:
    a, _ = ease_checkpoints
    registry = ModelRegistry("cpu")
    with pytest.raises(ModelNotLoadedError, match="'ease' is not loaded; loaded: none"):
        registry.get("ease")
    entry = registry.load(
        model_type="ease", version="v1", checkpoint_path=a, sha256=checkpoint_sha256(a)
    )
    assert "ease" not in registry  # loaded, not yet served
    assert registry.swap(entry) is None
    served = registry.get("ease")
    assert served is entry
    assert isinstance(served.model, Recommender)
    assert served.model.recommend({1: 5.0, 3: 4.0}, k=3)
    assert registry.model_types() == ["ease"]


def test_unknown_type_and_bad_checkpoints_are_refused(
    ease_checkpoints: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = ease_checkpoints
    registry = ModelRegistry("cpu")
    with pytest.raises(ModelNotLoadedError) as caught:
        registry.get("word2vec")
    assert caught.value.unknown_type
    with pytest.raises(CheckpointError, match="differs from the registered"):
        registry.load(model_type="ease", version="v1", checkpoint_path=a, sha256="0" * 64)
    with pytest.raises(CheckpointError, match="not 'rbm'"):
        registry.load(model_type="rbm", version="v1", checkpoint_path=a)
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        registry.load_and_swap(model_type="ease", version="v2", checkpoint_path=tmp_path / "x")
    assert "no checkpoint folder" in registry.errors()["ease"]
    registry.load_and_swap(model_type="ease", version="v3", checkpoint_path=b)
    assert registry.errors() == {}


def test_swap_is_atomic_for_concurrent_readers(ease_checkpoints: tuple[Path, Path]) -> None:
    """Readers never see a missing or half-made entry while versions are swapped under them,
    and an entry a reader holds keeps working after it was replaced."""
    a, b = ease_checkpoints
    registry = ModelRegistry("cpu")
    first = registry.load(model_type="ease", version="a", checkpoint_path=a)
    second = registry.load(model_type="ease", version="b", checkpoint_path=b)
    registry.swap(first)
    held = registry.get("ease")
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                entry = registry.get("ease")
                assert entry.version in ("a", "b")
                assert isinstance(entry, LoadedModel)
                seen.add(entry.version)
                time.sleep(0)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(100):
        registry.swap(second if i % 2 == 0 else first)
        time.sleep(0.0005)  # let the readers run between swaps
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen == {"a", "b"}
    assert held.model.recommend({1: 5.0}, k=2)  # the replaced model still answers


def test_auto_device_is_cpu_without_cuda(ease_checkpoints: tuple[Path, Path]) -> None:
    """``DEEPREC_DEVICE=auto`` serves on CUDA when present, else on the CPU."""
    registry = ModelRegistry(resolve_device("auto"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert registry.device.type == expected
    entry = registry.load_and_swap(
        model_type="ease", version="v1", checkpoint_path=ease_checkpoints[0]
    )
    assert entry.model.recommend({1: 5.0}, k=2)


@pytest.mark.gpu
def test_rbm_serves_on_cuda(tmp_path: Path) -> None:
    """A CUDA inference check: the rating RBM loads onto the GPU and answers like on the CPU."""
    ratings = normalise_ratings(planted_frame())
    dataset = RatingsDataset("planted", ratings, empty_items(ratings["item_id"].to_numpy()))
    checkpoint = train_rbm_checkpoint(
        dataset,
        RBMConfig(n_hidden=8, training=RBMTraining(epochs=3)),
        TrainingOptions(device="cpu", progress=False),
    )
    path = save_checkpoint(checkpoint, tmp_path / "rbm")
    answers = {}
    for device in ("cpu", "cuda"):
        registry = ModelRegistry(device)
        entry = registry.load_and_swap(model_type="rbm", version="v1", checkpoint_path=path)
        answers[device] = entry.model.recommend({1: 5.0, 3: 4.0, 5: 5.0}, k=5)
    assert [i for i, _ in answers["cpu"]] == [i for i, _ in answers["cuda"]]
    assert np.allclose([s for _, s in answers["cpu"]], [s for _, s in answers["cuda"]], atol=1e-4)


def test_a_model_that_fails_its_warm_up_is_never_served(
    ease_checkpoints: tuple[Path, Path],
) -> None:
    """A CUDA build without kernels for the GPU loads fine and fails at its first launch: the
    warm-up meets that failure before the swap, and the old model keeps serving."""
    from ml.inference import load_model

    a, b = ease_checkpoints

    def loader(path: Path, device: torch.device) -> Recommender:
        model = load_model(path, device)
        if path == b:
            model.predict_ratings = _no_kernel_image
        return model

    registry = ModelRegistry("cpu", loader=loader)
    registry.load_and_swap(model_type="ease", version="v1", checkpoint_path=a)
    with pytest.raises(RuntimeError, match="no kernel image"):
        registry.load_and_swap(model_type="ease", version="v2", checkpoint_path=b)
    assert registry.get("ease").version == "v1"
    assert "no kernel image" in registry.errors()["ease"]


def _no_kernel_image(rows: object) -> np.ndarray:
    raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
