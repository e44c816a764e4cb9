"""Loading autoencoder checkpoints into what the service calls: round trips and contracts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.checkpoint import CheckpointError, save_checkpoint
from ml.data.digits import ImageDataset
from ml.data.splits import protocol_split
from ml.inference import Recommender, load_model, load_recommender
from ml.inference.autoencoder import ImageAutoencoder
from ml.inference.images import ImageModel
from ml.models.autoencoder import AutoencoderConfig, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.training.autoencoder import score_rows, train_images, train_ranking
from ml.training.autorec import predict_fold_in, train_autorec
from ml.training.base import TrainingOptions

OPTIONS = TrainingOptions(device="cpu", seed=0, epochs=40, progress=False)


@pytest.fixture(scope="module")
def ranking_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import planted_frame

    config = mult_dae_config(1, hidden_layers=(8,), batch_size=8, noise_level=0.5, weight_decay=0.0)
    ckpt = train_ranking(planted_frame(), config, replace(OPTIONS, epochs=100))
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ae") / "ranking")


def test_ranking_round_trip_scores_identically(ranking_dir: Path, planted_ratings) -> None:
    model = load_recommender(ranking_dir)
    assert isinstance(model, Recommender) and model.model_type == "autoencoder"
    split = protocol_split(planted_ratings)
    from ml.checkpoint import load_checkpoint
    from ml.inference.autoencoder import build_autoencoder

    rebuilt = build_autoencoder(load_checkpoint(ranking_dir), torch.device("cpu"))
    np.testing.assert_allclose(model.scorer.score(split.train), score_rows(rebuilt, split.train))
    assert model.item_embeddings is not None and model.user_embeddings is not None
    assert model.item_embeddings().shape == (30, 16)  # Mult-DAE input columns + item-DAE codes
    stored = load_checkpoint(ranking_dir).tensors["item_embeddings"].numpy()
    np.testing.assert_array_equal(model.item_embeddings(), stored)
    assert model.user_embeddings(split.train[:3]).shape == (3, 8)


def test_checkpoints_without_stored_item_embeddings_serve_decoder_rows(ranking_dir: Path) -> None:
    from ml.checkpoint import load_checkpoint
    from ml.inference.autoencoder import load

    old = load_checkpoint(ranking_dir)
    old.tensors = {k: v for k, v in old.tensors.items() if k != "item_embeddings"}
    model = load(old, torch.device("cpu"))
    assert model.item_embeddings is not None
    expected = old.tensors["decoder.0.weight"].numpy()
    np.testing.assert_array_equal(model.item_embeddings(), expected)


def test_recommend_folds_in_and_excludes_seen(ranking_dir: Path) -> None:
    model = load_recommender(ranking_dir)
    liked = {1: 5.0, 2: 5.0, 3: 4.0}  # group-0 items (1-15)
    recs = model.recommend(liked, k=5)
    ids = [item for item, _ in recs]
    assert len(ids) == len(set(ids)) == 5 and not set(ids) & set(liked)
    assert all(item <= 15 for item in ids)
    other = [item for item, _ in model.recommend({20: 5.0, 21: 5.0, 22: 4.0}, k=5)]
    assert all(item > 15 for item in other)
    assert len(model.recommend({}, k=3)) == 3  # a user with no ratings still gets an answer


def test_autorec_round_trip_predicts_ratings(tmp_path: Path, planted_ratings) -> None:
    ckpt = train_autorec(planted_ratings, AutoRecConfig(n_hidden=4, batch_size=8), OPTIONS)
    path = save_checkpoint(ckpt, tmp_path / "autorec")
    model = load_recommender(path)
    assert model.model_type == "autorec" and model.predict_ratings is not None
    split = protocol_split(planted_ratings)
    from ml.models.autorec import IAutoRec

    fresh = IAutoRec(AutoRecConfig(**ckpt.config))
    fresh.load_state_dict({k: v for k, v in ckpt.tensors.items() if k != "item_codes"})
    expected = predict_fold_in(fresh, ckpt.tensors["item_codes"], split.train[:5])
    np.testing.assert_allclose(model.predict_ratings(split.train[:5]), expected, rtol=1e-5)
    assert model.item_embeddings is not None and model.item_embeddings().shape == (30, 4)
    assert len(model.recommend({1: 5.0}, k=4)) == 4


def test_image_model_protocol(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.random((40, 16)).astype(np.float32)
    data = ImageDataset("toy", 4, images, np.zeros(40, np.int64), images[:5], np.zeros(5, np.int64))
    ckpt = train_images(data, AutoencoderConfig(n_inputs=16, hidden_layers=(6,)), OPTIONS)
    model = load_model(save_checkpoint(ckpt, tmp_path / "img"))
    assert isinstance(model, ImageAutoencoder) and isinstance(model, ImageModel)
    assert model.model_type == "autoencoder-images" and model.side == 4
    out = model.reconstruct(images[:3])
    assert out.shape == (3, 16) and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
    assert model.encode(images[:3]).shape == (3, 6)
    with pytest.raises(ValueError):
        model.reconstruct(np.zeros((2, 15)))
    with pytest.raises(CheckpointError):
        load_recommender(tmp_path / "img")
