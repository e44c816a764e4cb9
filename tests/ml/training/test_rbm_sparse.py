"""Sparse CD for the paper's rating RBM: same statistics as the dense path, and it learns."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ml.data.splits import protocol_split
from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig, dense_states, predict_rows
from ml.models.rbm_config import RBMTraining
from ml.training.base import TrainingOptions
from ml.training.cd import MomentumSGD
from ml.training.rbm import RBMTrainer, fit_rbm, rating_cd_statistics
from ml.training.rbm_sparse import sparse_rating_cd_gradients, sparse_rating_cd_statistics
from tests.conftest import planted_frame

PAPER = RBMConfig(
    n_hidden=6, model_rated=False, ranking_score="expected_rating", hidden_dropout=0.0
)


def _rows() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = rng.integers(1, 6, size=(5, 12)) * (rng.random((5, 12)) < 0.4)
    return sp.csr_matrix(dense.astype(np.float32))


def _model(config: RBMConfig) -> RatingRBM:
    return RatingRBM(
        RBMConfig(**{**config.__dict__, "n_items": 12}), torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("conditional", [False, True])
def test_positive_phase_is_the_one_hot_data_statistics(conditional: bool) -> None:
    config = RBMConfig(**{**PAPER.__dict__, "conditional": conditional})
    model, rows = _model(config), _rows()
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    stats = sparse_rating_cd_statistics(model, batch, 1, torch.Generator().manual_seed(0))
    # Reference: the dense formulas on the one-hot visibles (B, I, K).
    onehot, rated = model.split_visible(dense_states(rows, 5, "cpu"))
    h = model.hidden_probs(onehot, rated)  # (B, H)
    n = rows.shape[0]
    expected = {
        "rating_weight": torch.einsum("bik,bh->ikh", onehot, h) / n,
        "rating_bias": onehot.sum(0) / n,
        "hidden_bias": h.mean(0),
    }
    if conditional:
        expected["rated_weight"] = rated.T @ h / n
        expected["rated_bias"] = rated.mean(0)
    assert stats.positive.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(stats.positive[name], value, msg=name)


def test_dense_and_sparse_positive_phases_agree() -> None:
    model, rows = _model(PAPER), _rows()
    gen = torch.Generator().manual_seed(0)
    dense = rating_cd_statistics(model, dense_states(rows, 5, "cpu"), 1, gen)
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    sparse = sparse_rating_cd_statistics(model, batch, 1, gen)
    for name, value in sparse.positive.items():
        torch.testing.assert_close(value, dense.positive[name], msg=name)


def test_negative_phase_resamples_values_of_rated_items_only() -> None:
    model, rows = _model(PAPER), _rows()
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    stats = sparse_rating_cd_statistics(model, batch, 3, torch.Generator().manual_seed(0))
    rated = torch.from_numpy(rows.toarray() > 0)  # (B, I)
    per_item_mass = stats.negative["rating_bias"].sum(1) * rows.shape[0]  # raters per item
    torch.testing.assert_close(per_item_mass, rated.sum(0).float())
    assert stats.negative_visible.shape == (rows.nnz,)
    assert int(stats.negative_visible.min()) >= 1 and int(stats.negative_visible.max()) <= 5


def test_explicit_zeros_are_not_ratings() -> None:
    rows = sp.csr_matrix((np.array([0.0, 4.0]), np.array([1, 3]), np.array([0, 2])), shape=(1, 5))
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    assert batch.items.tolist() == [3] and batch.values.tolist() == [4]


def test_trainer_takes_the_sparse_path_and_fits_the_ratings() -> None:
    split = protocol_split(planted_frame(per_user=10))
    config = RBMConfig(
        **{**PAPER.__dict__, "n_hidden": 8, "training": RBMTraining(epochs=20, batch_size=8)}
    )
    assert RBMTrainer(split.train, config, TrainingOptions(progress=False)).sparse
    model, history = fit_rbm(split.train, config, TrainingOptions(seed=3, progress=False))
    assert history[-1]["train_rmse"] < history[0]["train_rmse"]
    expected = predict_rows(model, split.train, "rating")
    assert np.isfinite(expected).all() and expected.min() >= 1 and expected.max() <= 5


@pytest.mark.parametrize("k", [1, 3])
def test_the_batched_gradients_are_the_per_triple_ones(k: int) -> None:
    model, rows = _model(PAPER), _rows()
    with torch.no_grad():
        model.rating_weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    reference = sparse_rating_cd_statistics(model, batch, k, torch.Generator().manual_seed(3))
    buffers = {"rating_weight": torch.full_like(model.rating_weight, 7.0)}  # stale contents
    buffers["rating_bias"] = torch.full_like(model.rating_bias, 7.0)
    grads = sparse_rating_cd_gradients(model, batch, k, torch.Generator().manual_seed(3), buffers)
    assert grads["rating_weight"] is buffers["rating_weight"]  # written in place
    for name, expected in reference.gradients().items():
        torch.testing.assert_close(grads[name], expected)


def test_the_visited_rows_gradient_is_the_full_ones_nonzero_rows() -> None:
    model, rows = _model(PAPER), _rows()
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    full = sparse_rating_cd_gradients(model, batch, 3, torch.Generator().manual_seed(3))
    compact = sparse_rating_cd_gradients(
        model, batch, 3, torch.Generator().manual_seed(3), visited_rows=True
    )
    visited = compact["visited"]
    assert torch.equal(visited, torch.unique(batch.items))
    torch.testing.assert_close(compact["rating_weight"], full["rating_weight"][visited])
    others = torch.ones(12, dtype=torch.bool)
    others[visited] = False
    assert torch.all(full["rating_weight"][others] == 0)
    for name in ("rating_bias", "hidden_bias"):
        torch.testing.assert_close(compact[name], full[name])


@pytest.mark.parametrize("weight_decay", [0.0, 3e-3])
def test_a_row_gradient_updates_as_its_full_size_zero_padded_one(weight_decay: float) -> None:
    gen = torch.Generator().manual_seed(0)
    dense_param = torch.randn(10, 3, 4, generator=gen)
    rows_param = dense_param.clone()
    dense = MomentumSGD({"w": dense_param}, frozenset({"w"}))
    by_rows = MomentumSGD({"w": rows_param}, frozenset({"w"}))
    for _ in range(5):
        rows = torch.randperm(10, generator=gen)[:4].sort().values
        grad = torch.randn(4, 3, 4, generator=gen)
        full = torch.zeros_like(dense_param)
        full[rows] = grad
        dense.step({"w": full}, 0.3, 0.5, weight_decay)
        by_rows.step({"w": grad}, 0.3, 0.5, weight_decay, rows={"w": rows})
    torch.testing.assert_close(rows_param, dense_param, rtol=1e-6, atol=1e-7)
