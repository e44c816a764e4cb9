"""Training runs: determinism under a seed, best-epoch selection, checkpoints with metrics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ml.data.digits import ImageDataset
from ml.inference.embeddings import genre_agreement
from ml.models.autoencoder import AutoencoderConfig, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.training.autoencoder import (
    fit_autoencoder,
    fit_item_dae,
    fit_item_embeddings,
    fit_mult_dae,
    item_view_rows,
    train_images,
    train_ranking,
    two_view_item_embeddings,
    validation_slice,
)
from ml.training.autorec import train_autorec
from ml.training.base import TrainingOptions

OPTIONS = TrainingOptions(device="cpu", seed=3, epochs=5, progress=False)


def _images(n: int = 64) -> np.ndarray:
    return np.random.default_rng(0).random((n, 16)).astype(np.float32)


def test_same_seed_same_model_other_seed_other_model() -> None:
    config = AutoencoderConfig(n_inputs=16, hidden_layers=(4,), noise="mask", noise_level=0.2)
    a = fit_autoencoder(_images(), config, OPTIONS).model
    b = fit_autoencoder(_images(), config, OPTIONS).model
    c = fit_autoencoder(_images(), config, replace(OPTIONS, seed=4)).model
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.encoder[0].weight, c.encoder[0].weight)


def test_validation_keeps_the_best_epoch() -> None:
    config = AutoencoderConfig(n_inputs=16, hidden_layers=(4,))
    scores = iter([0.1, 0.5, 0.2, 0.3, 0.4])
    fit = fit_autoencoder(_images(), config, OPTIONS, validate=lambda _m: next(scores))
    assert fit.best_epoch == 2 and fit.best_score == 0.5
    assert [h["validation"] for h in fit.history.records] == [0.1, 0.5, 0.2, 0.3, 0.4]
    assert fit.history.records[-1]["loss"] < fit.history.records[0]["loss"]


def test_refuses_mismatched_data() -> None:
    with pytest.raises(ValueError):
        fit_autoencoder(_images(), AutoencoderConfig(n_inputs=15, hidden_layers=(4,)), OPTIONS)
    with pytest.raises(ValueError):
        fit_autoencoder(_images(), AutoencoderConfig(n_inputs=16), replace(OPTIONS, epochs=0))


def test_ranking_checkpoint_carries_protocol_metrics(planted_ratings) -> None:
    config = mult_dae_config(1, hidden_layers=(8,), batch_size=8)
    ckpt = train_ranking(planted_ratings, config, OPTIONS, data_sha256="abc")
    assert ckpt.model_type == "autoencoder" and ckpt.data_sha256 == "abc"
    assert ckpt.config["n_inputs"] == planted_ratings["item_id"].nunique()
    for key in ("ndcg@10_all", "precision@10_liked", "coverage", "train_seconds"):
        assert key in ckpt.metrics
    assert len(ckpt.vocab["user"]) == planted_ratings["user_id"].nunique()
    items = ckpt.tensors["item_embeddings"]  # the served two-view item embedding
    assert items.shape == (planted_ratings["item_id"].nunique(), 16)
    np.testing.assert_allclose(items.norm(dim=1).numpy(), 1.0, rtol=1e-5)


def test_item_embedding_learns_from_every_rating_unless_told_train(planted_ratings) -> None:
    import scipy.sparse as sp

    from ml.data.splits import protocol_split

    split = protocol_split(planted_ratings)
    config = mult_dae_config(split.train.shape[1], hidden_layers=(8,), batch_size=8)
    served = train_ranking(planted_ratings, config, OPTIONS)
    assert served.extra["item_embedding_data"] == "all"
    everything = sp.csr_matrix(split.train + split.test)
    assert everything.nnz == len(planted_ratings)  # the test fold's ratings are in
    # every later fit reuses the epoch count early stopping found on the split
    chosen = replace(OPTIONS, epochs=served.extra["epochs"]["best_epoch"])
    expected = fit_item_embeddings(everything, config, chosen, item_dae_epochs=OPTIONS.epochs)
    np.testing.assert_allclose(served.tensors["item_embeddings"].numpy(), expected, atol=1e-6)
    train_only = train_ranking(planted_ratings, config, OPTIONS, item_embedding_data="train")
    assert train_only.extra["item_embedding_data"] == "train"
    ranking = fit_mult_dae(split.train, config, OPTIONS).model
    expected = fit_item_embeddings(
        split.train, config, chosen, ranking_model=ranking, item_dae_epochs=OPTIONS.epochs
    )
    np.testing.assert_allclose(train_only.tensors["item_embeddings"].numpy(), expected, atol=1e-6)
    assert not np.allclose(served.tensors["item_embeddings"], train_only.tensors["item_embeddings"])
    # the ranking model and its test figures do not depend on where the embedding learns
    assert served.metrics["ndcg@10_all"] == train_only.metrics["ndcg@10_all"]
    with pytest.raises(ValueError, match="item_embedding_data"):
        train_ranking(planted_ratings, config, OPTIONS, item_embedding_data="test")


def test_validation_slice_holds_out_part_of_some_users_ratings(planted_ratings) -> None:
    from ml.data.splits import protocol_split

    train = protocol_split(planted_ratings).train
    fit_rows, held = validation_slice(train, seed=0, users=0.5, held_out=0.25)
    assert fit_rows.shape == held.shape == train.shape
    assert fit_rows.nnz + held.nnz == train.nnz and fit_rows.multiply(held).nnz == 0
    np.testing.assert_array_equal((fit_rows + held).toarray(), train.toarray())
    lenders = np.flatnonzero(np.diff(held.indptr))
    assert len(lenders) == round(0.5 * train.shape[0])
    assert (np.diff(fit_rows.indptr) > 0).all()  # nobody lends every rating
    again = validation_slice(train, seed=0, users=0.5, held_out=0.25)[1]
    assert (again != held).nnz == 0  # seeded


def test_mult_dae_epochs_follow_the_validation_slice(planted_ratings) -> None:
    from ml.data.splits import protocol_split

    split = protocol_split(planted_ratings)
    n_items = split.train.shape[1]
    config = mult_dae_config(n_items, hidden_layers=(8,), batch_size=8, learning_rate=0.01)
    history = fit_mult_dae(split.train, config, replace(OPTIONS, epochs=100), patience=1).history
    assert history.metric == "val_ndcg@10_all" and history.mode == "max"
    assert history.stopped_early and history.epochs_run < 100
    assert history.best_epoch == history.epochs_run - 5  # one validation without a gain
    assert history.best_score == max(r.get("val_ndcg@10_all", 0) for r in history.records)


def test_fit_all_reuses_the_epochs_found_on_the_split(planted_ratings) -> None:
    config = mult_dae_config(1, hidden_layers=(8,), batch_size=8)
    options = replace(OPTIONS, epochs=10)
    ckpt = train_ranking(planted_ratings, config, options, fit="all")
    epochs = ckpt.extra["epochs"]
    assert epochs["max_epochs"] == 10 and epochs["best_epoch"] in (5, 10)  # validated every 5
    assert ckpt.metrics["epochs"] == epochs["best_epoch"] and epochs["item_dae_epochs"] == 10
    assert "best epoch found on the split" in epochs["reused_by"]
    assert ckpt.extra["fit"] == "all" and ckpt.extra["n_ratings_fitted"] == len(planted_ratings)


def test_item_view_rows_weight_heavy_users_down() -> None:
    import scipy.sparse as sp

    train = sp.csr_matrix(np.array([[5, 3, 0], [4, 0, 0], [1, 2, 3]], dtype=np.float32))
    binary = item_view_rows(train, "binary").toarray()
    np.testing.assert_array_equal(binary, (train.toarray() != 0).T)
    weighted = item_view_rows(train, "inverse_sqrt").toarray()  # (I, U)
    np.testing.assert_allclose(weighted[0], [1 / np.sqrt(2), 1.0, 1 / np.sqrt(3)], rtol=1e-6)
    with pytest.raises(ValueError):
        item_view_rows(train, "tfidf")


def test_two_view_item_embeddings_separate_planted_groups(planted_ratings) -> None:
    from ml.data.splits import protocol_split

    split = protocol_split(planted_ratings)
    options = replace(OPTIONS, seed=0, epochs=60)
    config = mult_dae_config(
        split.train.shape[1], hidden_layers=(8,), batch_size=8, weight_decay=0.0
    )
    model = fit_autoencoder(split.train, config, options).model
    codes = fit_item_dae(split.train, 8, options)
    assert codes.shape == (30, 8)
    np.testing.assert_array_equal(codes, fit_item_dae(split.train, 8, options))  # seeded
    items = two_view_item_embeddings(model, codes)  # (I, 16)
    groups = [["low"] if item <= 15 else ["high"] for item in split.items.ids]
    assert genre_agreement(items, groups, k=5).ratio > 1.8  # neighbours stay in their group


def test_autorec_checkpoint_carries_rmse(planted_ratings) -> None:
    config = AutoRecConfig(n_hidden=4, batch_size=8)
    ckpt = train_autorec(planted_ratings, config, OPTIONS)
    assert ckpt.model_type == "autorec" and "item_codes" in ckpt.tensors
    assert ckpt.tensors["item_codes"].shape == (planted_ratings["item_id"].nunique(), 4)
    for key in ("rmse", "mae", "rmse_trained_rows", "ndcg@10_all", "train_seconds"):
        assert np.isfinite(ckpt.metrics[key])


def test_image_checkpoint_reports_denoising_figures() -> None:
    rng = np.random.default_rng(0)
    data = ImageDataset(
        "toy", 4, _images(), np.zeros(64, np.int64), rng.random((8, 16)).astype(np.float32),
        np.zeros(8, np.int64),
    )  # fmt: skip
    ckpt = train_images(data, AutoencoderConfig(n_inputs=1, hidden_layers=(4,)), OPTIONS)
    assert ckpt.config["n_inputs"] == 16 and ckpt.extra["side"] == 4
    assert {"mse", "mse_corrupted_input@0.3", "mse_denoised@0.3"} <= set(ckpt.metrics)


def test_trains_and_serves_on_each_device(torch_device: torch.device, planted_ratings) -> None:
    """Models, corruption generators and the fold-in all live on the run's device."""
    from ml.checkpoint import Checkpoint
    from ml.inference.autoencoder import load, load_images

    options = replace(OPTIONS, device=str(torch_device))
    config = AutoencoderConfig(n_inputs=16, hidden_layers=(4,), noise="dropout", noise_level=0.3)
    model = fit_autoencoder(_images(), config, options).model
    assert next(model.parameters()).device.type == torch_device.type
    image_ckpt = Checkpoint(
        "autoencoder-images", config.to_dict(), dict(model.state_dict()), extra={"side": 4}
    )
    out = load_images(image_ckpt, torch_device).reconstruct(_images(3))
    assert out.shape == (3, 16) and isinstance(out, np.ndarray)
    for ckpt in (
        train_ranking(
            planted_ratings, mult_dae_config(1, hidden_layers=(4,), batch_size=8), options
        ),
        train_autorec(planted_ratings, AutoRecConfig(n_hidden=4, batch_size=8), options),
    ):
        recommender = load(ckpt, torch_device)
        assert len(recommender.recommend({1: 5.0, 2: 4.0}, k=3)) == 3
