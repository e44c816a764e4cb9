"""The contract every model family keeps, parametrised over ``ml.registry.SPECS``: trained through
its spec on a small planted data set, saved, loaded back bit-exact, it answers each capability
it declares with the right shapes and offers none it does not declare.

Each spec carries its own small settings (``ModelSpec.smoke``): a new family is tested here as
soon as it is declared.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from app.core.params import override_config
from ml.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from ml.data.digits import ImageDataset
from ml.data.schema import RatingsDataset, normalise_ratings
from ml.inference import Recommender, load_model, load_recommender
from ml.inference.content import ContentRecommender, ItemMeta
from ml.registry import BY_NAME, CAPABILITIES, SPECS, Capability, ModelSpec
from ml.training.base import TrainingOptions
from tests.conftest import planted_frame

EPOCHS = 2
N_ITEMS = 30


def ratings_dataset() -> RatingsDataset:
    """Two groups of users with disjoint tastes over 30 titled items (tests/conftest.py)."""
    ratings = normalise_ratings(planted_frame(n_users=40, n_items=N_ITEMS, per_user=8, seed=0))
    ids = list(range(1, N_ITEMS + 1))
    items = pd.DataFrame(
        {
            "item_id": pd.Series(ids, dtype="int64"),
            "title": [f"Planted {'Action' if i <= 15 else 'Comedy'} {i}" for i in ids],
            "year": pd.Series([1990 + i % 10 for i in ids], dtype="Int64"),
            "genres": [["Action"] if i <= 15 else ["Comedy"] for i in ids],
        }
    )
    return RatingsDataset(name="planted", ratings=ratings, items=items, source="test")


def image_dataset() -> ImageDataset:
    """8x8 images of two planted shapes (top half lit, bottom half lit) with a little noise."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 2
        images = np.zeros((n, 8, 8), np.float32)
        images[labels == 0, :4] = 1.0
        images[labels == 1, 4:] = 1.0
        noisy = np.clip(images + rng.normal(0, 0.1, images.shape), 0, 1).astype(np.float32)
        return noisy.reshape(n, 64), labels.astype(np.int64)

    train_images, train_labels = draw(48)
    test_images, test_labels = draw(16)
    return ImageDataset("planted", 8, train_images, train_labels, test_images, test_labels)


@dataclasses.dataclass
class Trained:
    spec: ModelSpec
    checkpoint: Checkpoint  # as the trainer returned it
    path: Path
    ratings: RatingsDataset
    images: ImageDataset


@pytest.fixture(scope="module", params=SPECS, ids=lambda spec: spec.name)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    spec: ModelSpec = request.param
    ratings, images = ratings_dataset(), image_dataset()
    data = images if spec.data == "images" else ratings
    config = override_config(spec.config(data), spec.smoke)
    options = TrainingOptions(device="cpu", seed=7, epochs=EPOCHS, progress=False)
    checkpoint = spec.trainer()(data, config, options, fit="train")  # one fit, not two
    assert checkpoint.model_type == spec.name
    path = save_checkpoint(checkpoint, tmp_path_factory.mktemp("contract") / spec.name)
    return Trained(spec, checkpoint, path, ratings, images)


# ------------------------------------------------------------------ what each capability answers
def _user(t: Trained) -> dict[int, float]:
    rows = t.ratings.ratings[t.ratings.ratings["user_id"] == 1]
    return dict(zip(rows["item_id"].tolist(), rows["rating"].tolist(), strict=True))


def _recommend(model: Any, t: Trained) -> np.ndarray:
    seen = _user(t)
    ranked = model.recommend(seen, k=5)
    ids = [item for item, _ in ranked]
    assert 0 < len(ids) <= 5 and len(set(ids)) == len(ids)
    assert not set(ids) & set(seen), "seen items are excluded by default"
    assert set(ids) <= set(model.items.ids.tolist())
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    return np.asarray(ranked, np.float64)


def _predict_ratings(model: Any, t: Trained) -> np.ndarray:
    predicted = model.predict_ratings(model.rows_from_ratings(_user(t)))
    assert predicted.shape == (1, len(model.items)) and np.isfinite(predicted).all()
    return np.asarray(predicted)


def _similar_items(model: Any, t: Trained) -> np.ndarray:
    item = int(model.items.ids[0])
    ranked = model.similar_items(item, 5)
    ids = [i for i, _ in ranked]
    assert len(ids) == 5 and len(set(ids)) == 5 and item not in ids
    return np.asarray(ranked, np.float64)


def _embed(model: Any, t: Trained) -> np.ndarray:
    if isinstance(model, ContentRecommender):  # items embedded from their metadata alone
        codes = model.encode([ItemMeta(id=999, title="New Action", genres=("Action",))])
        assert codes.shape == (1, model.trained.codes.shape[1]) and np.isfinite(codes).all()
        return np.asarray(codes)
    if isinstance(model, Recommender):
        vectors = []
        if model.item_embeddings is not None:
            items = model.item_embeddings()
            assert items.ndim == 2 and items.shape[0] == len(model.items)
            vectors.append(items.ravel())
        if model.user_embeddings is not None:
            users = model.user_embeddings(model.rows_from_ratings([_user(t), {}]))
            assert users.ndim == 2 and users.shape[0] == 2
            vectors.append(users.ravel())
        assert vectors
        return np.concatenate(vectors)
    codes = model.encode(t.images.test_images[:3])
    assert codes.ndim == 2 and codes.shape[0] == 3 and np.isfinite(codes).all()
    return np.asarray(codes)


def _reconstruct(model: Any, t: Trained) -> np.ndarray:
    images = t.images.test_images[:4]
    out = model.reconstruct(images)
    assert out.shape == images.shape and out.min() >= 0.0 and out.max() <= 1.0
    return np.asarray(out)


def _sample(model: Any, t: Trained) -> np.ndarray:
    steps = {"steps": 3} if "steps" in inspect.signature(model.sample).parameters else {}
    first = model.sample(3, seed=1, **steps)
    assert first.shape == (3, t.images.n_pixels)
    np.testing.assert_array_equal(first, model.sample(3, seed=1, **steps))  # seeded
    return np.asarray(first)


def _discriminate(model: Any, t: Trained) -> np.ndarray:
    p = model.discriminate(t.images.test_images[:5])
    assert p.shape == (5,) and ((p >= 0.0) & (p <= 1.0)).all()
    return np.asarray(p)


ANSWER: dict[Capability, Callable[[Any, Trained], np.ndarray]] = {
    "recommend": _recommend,
    "predict_ratings": _predict_ratings,
    "similar_items": _similar_items,
    "embed": _embed,
    "reconstruct": _reconstruct,
    "sample": _sample,
    "discriminate": _discriminate,
}


def offers(model: Any, capability: Capability) -> bool:
    """Whether a loaded model offers ``capability`` at all (what its spec must declare)."""
    if capability == "recommend":
        return isinstance(model, Recommender)
    if capability == "predict_ratings":
        return getattr(model, "predict_ratings", None) is not None
    if capability == "similar_items":
        own = getattr(type(model), "similar_items", None)
        if own is None:
            return False
        if own is not Recommender.similar_items:
            return True  # a family's own neighbours (content: from the live catalogue)
        # Every Recommender has the method; it answers from the model's item embeddings.
        return isinstance(model, Recommender) and model.item_embeddings is not None
    if capability == "embed":
        names = ("item_embeddings", "user_embeddings", "encode")
        return any(getattr(model, name, None) is not None for name in names)
    return callable(getattr(model, capability, None))


# ------------------------------------------------------------------------------------ the tests
def test_every_capability_has_an_answer_check() -> None:
    assert set(ANSWER) == set(CAPABILITIES)


@pytest.mark.slow  # trains each family (seconds for the RBM and the Mult-DAE)
def test_round_trip_is_bit_exact(trained: Trained) -> None:
    loaded = load_checkpoint(trained.path, model_type=trained.spec.name)
    assert set(loaded.tensors) == set(trained.checkpoint.tensors)
    for name, tensor in trained.checkpoint.tensors.items():
        stored = loaded.tensors[name]
        assert stored.dtype == tensor.dtype and torch.equal(stored, tensor.cpu()), name
    assert loaded.vocab == trained.checkpoint.vocab
    assert loaded.config == _json_like(trained.checkpoint.config)
    # The model served from disk answers exactly as the one built from the trainer's tensors.
    from_memory = trained.spec.loader()(trained.checkpoint, torch.device("cpu"))
    from_disk = load_model(trained.path, "cpu")
    for capability in sorted(trained.spec.capabilities):
        np.testing.assert_array_equal(
            ANSWER[capability](from_memory, trained),
            ANSWER[capability](from_disk, trained),
            err_msg=capability,
        )


@pytest.mark.slow  # trains each family (seconds for the RBM and the Mult-DAE)
def test_declared_capabilities_and_only_those(trained: Trained) -> None:
    model = load_model(trained.path, "cpu")
    for capability in CAPABILITIES:
        declared = capability in trained.spec.capabilities
        assert offers(model, capability) == declared, (capability, declared)
        if declared:
            ANSWER[capability](model, trained)  # asserts the answer's shape


@pytest.mark.slow  # trains each family (seconds for the RBM and the Mult-DAE)
def test_only_recommenders_load_as_recommenders(trained: Trained) -> None:
    if trained.spec.can("recommend"):
        assert isinstance(load_recommender(trained.path), Recommender)
    else:
        with pytest.raises(CheckpointError, match="cannot serve recommendations"):
            load_recommender(trained.path)


def _json_like(value: Any) -> Any:
    """A config as JSON gives it back (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _json_like(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_like(v) for v in value]
    return value


# Checkpoints written by format 1 (this tree's first ModelSpec table; tiny, from the data above):
# every later build must keep loading them and answering from them.
FORMAT_1 = Path(__file__).parent / "fixtures" / "checkpoints_v1"


@pytest.mark.parametrize("path", sorted(FORMAT_1.iterdir()), ids=lambda path: path.name)
def test_format_1_checkpoints_keep_loading(path: Path) -> None:
    checkpoint = load_checkpoint(path)
    spec = BY_NAME[checkpoint.model_type]
    old = Trained(spec, checkpoint, path, ratings_dataset(), image_dataset())
    model = load_model(path, "cpu")
    for capability in CAPABILITIES:
        assert offers(model, capability) == (capability in spec.capabilities), capability
    for capability in sorted(spec.capabilities):
        ANSWER[capability](model, old)
