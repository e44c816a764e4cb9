"""Serving the rating RBM: refusals, fold-in equals batch inference. (The checkpoint round trip,
bit-exact, is the contract every family passes: tests/ml/test_registry_contract.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from ml.data.movielens import load_ratings_path
from ml.data.splits import protocol_split
from ml.evaluation.evaluate import top_k
from ml.inference import load_model, load_recommender
from ml.inference.rbm import RBMScorer
from ml.models.rbm import RBMConfig
from ml.models.rbm_config import RBMTraining
from ml.models.rbm_ratings import TENSOR_PREFIX
from ml.training.base import TrainingOptions
from ml.training.rbm import train_rbm_checkpoint
from tests.conftest import planted_frame

CONFIG = RBMConfig(n_hidden=8, training=RBMTraining(learning_rate=0.1, batch_size=8, epochs=20))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("rbm")
    ratings_file = folder / "planted.csv"
    planted_frame().to_csv(ratings_file, index=False)
    dataset = load_ratings_path(ratings_file)
    options = TrainingOptions(device="cpu", seed=5, progress=False)
    checkpoint = train_rbm_checkpoint(dataset, CONFIG, options)
    return save_checkpoint(checkpoint, folder / "ckpt"), ratings_file


def test_manifest_carries_test_figures_vocab_and_sha(trained: tuple[Path, Path]) -> None:
    path, ratings_file = trained
    ckpt = load_checkpoint(path, model_type="rbm")
    assert {"ndcg@10_all", "precision@10_all", "rmse", "train_seconds"} <= ckpt.metrics.keys()
    assert ckpt.data_sha256 == load_ratings_path(ratings_file).sha256
    assert len(ckpt.vocab["user"]) == 40 and len(ckpt.vocab["item"]) == 30
    assert ckpt.config["n_items"] == 30 and len(ckpt.extra["history"]) == CONFIG.training.epochs


def test_ratings_come_from_the_item_based_rbm(trained: tuple[Path, Path]) -> None:
    path, ratings_file = trained
    recommender = load_recommender(path)
    assert isinstance(recommender.scorer, RBMScorer)
    assert recommender.scorer.ratings_model is not None
    split = protocol_split(load_ratings_path(ratings_file).ratings)
    predicted = recommender.scorer.predict_ratings(split.train[:4])
    assert predicted.shape == (4, 30) and predicted.min() >= 1 and predicted.max() <= 5
    assert not np.allclose(
        predicted,
        recommender.scorer.model.predict(  # not the joint E[r]
            torch.from_numpy(split.train[:4].toarray()).long()
        )[0].numpy(),
    )


def test_checkpoints_before_the_rating_model_still_load(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    path, ratings_file = trained
    ckpt = load_checkpoint(path, model_type="rbm")
    config = {k: v for k, v in ckpt.config.items() if k != "rating_model"}
    tensors = {k: v for k, v in ckpt.tensors.items() if not k.startswith(TENSOR_PREFIX)}
    old = load_recommender(
        save_checkpoint(Checkpoint("rbm", config, tensors, ckpt.vocab), tmp_path / "old")
    )
    assert isinstance(old.scorer, RBMScorer) and old.scorer.ratings_model is None
    split = protocol_split(load_ratings_path(ratings_file).ratings)
    assert old.predict_ratings is not None and old.predict_ratings(split.train[:2]).shape == (2, 30)
    # A checkpoint that names the item-based rating model but lacks its tensors is refused.
    broken = save_checkpoint(Checkpoint("rbm", ckpt.config, tensors, ckpt.vocab), tmp_path / "bad")
    with pytest.raises(CheckpointError, match="rating model"):
        load_recommender(broken)


def test_corrupted_and_foreign_checkpoints_are_refused(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    path, _ = trained
    broken = tmp_path / "broken"
    save_checkpoint(load_checkpoint(path), broken)
    tensors = broken / "model.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_model(broken)
    foreign = save_checkpoint(
        Checkpoint("ease", {"l2": 1.0}, {"weights": torch.zeros(2, 2)}), tmp_path / "ease"
    )
    with pytest.raises(CheckpointError, match="not 'rbm'"):
        load_checkpoint(foreign, model_type="rbm")
    wrong = save_checkpoint(
        Checkpoint(
            "rbm", {"n_items": 3}, {"hidden_bias": torch.zeros(2)}, {"user": [], "item": []}
        ),
        tmp_path / "wrong",
    )
    with pytest.raises(CheckpointError, match="not a valid rbm checkpoint"):
        load_model(wrong)


def test_fold_in_for_a_training_user_matches_batch_inference(trained: tuple[Path, Path]) -> None:
    path, ratings_file = trained
    model = load_recommender(path)
    split = protocol_split(load_ratings_path(ratings_file).ratings)
    batch_scores = model.scorer.score(split.train)  # (U, I)
    batch_top = top_k(batch_scores, 5, exclude=split.train)
    frame = split.train_frame
    for row in (0, 7, 21):
        raw_user = int(split.users.ids[row])
        mine = frame[frame["user_id"] == raw_user]
        recs = model.recommend(dict(zip(mine["item_id"], mine["rating"], strict=True)), k=5)
        assert [item for item, _ in recs] == [int(split.items.ids[i]) for i in batch_top[row]]
        np.testing.assert_allclose(
            [score for _, score in recs], batch_scores[row, batch_top[row]], rtol=1e-6
        )
        assert not set(mine["item_id"]) & {item for item, _ in recs}


def test_predictions_and_embeddings_have_the_contract_shapes(trained: tuple[Path, Path]) -> None:
    path, ratings_file = trained
    model = load_recommender(path)
    split = protocol_split(load_ratings_path(ratings_file).ratings)
    assert model.predict_ratings is not None and model.item_embeddings is not None
    assert model.user_embeddings is not None
    ratings = model.predict_ratings(split.train[:4])
    assert ratings.shape == (4, 30) and ratings.min() >= 1 and ratings.max() <= 5
    assert model.item_embeddings().shape == (30, CONFIG.n_hidden)
    assert model.user_embeddings(split.train[:4]).shape == (4, CONFIG.n_hidden)
    with pytest.raises(ValueError, match="k must be positive"):
        model.recommend({1: 5.0}, k=0)


def test_warm_up_runs_every_inference_path_and_changes_nothing(
    trained: tuple[Path, Path],
) -> None:
    path, _ = trained
    model = load_recommender(path)
    before = model.recommend({1: 5.0, 2: 4.0}, k=5)
    seen: dict[str, tuple[int, ...]] = {}

    def recording(name: str, fn):  # the real function, with its input's shape noted
        def wrapped(rows):
            seen[name] = (*rows.shape, rows.nnz)
            return fn(rows)

        return wrapped

    assert model.predict_ratings is not None and model.user_embeddings is not None
    model.predict_ratings = recording("predict_ratings", model.predict_ratings)
    model.user_embeddings = recording("user_embeddings", model.user_embeddings)
    model.scorer.score = recording("score", model.scorer.score)  # type: ignore[method-assign]
    model.warm_up()
    assert seen == {name: (1, 30, 1) for name in ("score", "predict_ratings", "user_embeddings")}
    assert model.recommend({1: 5.0, 2: 4.0}, k=5) == before
