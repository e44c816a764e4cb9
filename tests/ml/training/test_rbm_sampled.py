"""Sparse-data RBM training: biases and free energies from CSR rows, the fold-in's sparse
likelihood, and sampled CD for the joint model (the chain over rated + sampled items)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from ml.data.splits import protocol_split
from ml.evaluation.evaluate import top_k
from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig, dense_states, predict_rows
from ml.models.rbm_config import RBMTraining
from ml.models.rbm_ratings import RatingFoldIn
from ml.training.base import TrainingOptions
from ml.training.rbm import RBMTrainer, fit_rbm
from ml.training.rbm_sampled import sample_columns, uses_sampled_cd
from tests.conftest import planted_frame

OPTIONS = TrainingOptions(device="cpu", seed=3, progress=False)
SMALL = RBMConfig(
    n_hidden=8,
    training=RBMTraining(learning_rate=0.1, batch_size=8, epochs=30, cd_k_step_epochs=10),
)


def _random_rows(n_users: int = 12, n_items: int = 40, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, (n_users, n_items)) * (rng.random((n_users, n_items)) < 0.2)
    return sp.csr_matrix(dense.astype(np.float32))


def _model(n_items: int, **overrides: object) -> RatingRBM:
    config = RBMConfig(n_items=n_items, n_hidden=6, **overrides)  # type: ignore[arg-type]
    model = RatingRBM(config, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.3)
    return model


def test_biases_from_csr_rows_equal_the_dense_ones() -> None:
    rows = _random_rows()
    dense, sparse = _model(rows.shape[1]), _model(rows.shape[1])
    dense.init_biases(dense_states(rows, 5, "cpu"))
    sparse.init_biases_from_rows(rows)
    assert torch.equal(dense.rating_bias, sparse.rating_bias)
    assert torch.equal(dense.rated_bias, sparse.rated_bias)


def test_sparse_free_energy_matches_the_dense_one() -> None:
    rows = _random_rows()
    model = _model(rows.shape[1])
    dense = model.free_energy(*model.split_visible(dense_states(rows, 5, "cpu")))
    sparse = model.free_energy_sparse(RatedBatch.from_rows(rows, 5, torch.device("cpu")))
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-4)


def test_the_fold_in_likelihood_reads_the_rated_pairs_only() -> None:
    rows = _random_rows(n_users=70)  # several padded groups of users
    gen = torch.Generator().manual_seed(2)
    fold_in = RatingFoldIn(
        torch.rand(rows.shape[1], 4, generator=gen),
        torch.randn(5, 4, generator=gen),
        torch.zeros(5),
    )
    weight = torch.randn(rows.shape[0], 5, 4, generator=gen)
    bias = torch.randn(rows.shape[0], 5, generator=gen)
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    dense = fold_in._logits(weight, bias)  # (B, K, I)
    rated = torch.log_softmax(dense[batch.owner, :, batch.items], -1)  # (nnz, K)
    expected = -rated.gather(1, (batch.values - 1).unsqueeze(1)).sum()
    groups = fold_in._padded_groups(batch)
    assert sum(int(g.mask.sum()) for g in groups) == len(batch.items)  # every pair, once
    nll = fold_in._negative_log_likelihood(weight, bias, groups)
    torch.testing.assert_close(nll, expected)


def test_the_fold_in_gradients_are_those_of_its_likelihood() -> None:
    dense = _random_rows(n_users=70).toarray()  # several padded groups of users
    dense[5] = 0  # and one without ratings
    rows = sp.csr_matrix(dense)
    gen = torch.Generator().manual_seed(3)
    fold_in = RatingFoldIn(
        torch.rand(rows.shape[1], 4, generator=gen),
        torch.randn(5, 4, generator=gen),
        torch.zeros(5),
    )
    weight = torch.randn(rows.shape[0], 5, 4, generator=gen, requires_grad=True)
    bias = torch.randn(rows.shape[0], 5, generator=gen, requires_grad=True)
    groups = fold_in._padded_groups(RatedBatch.from_rows(rows, 5, torch.device("cpu")))
    nll, grad_weight, grad_bias = fold_in._likelihood_and_gradients(weight, bias, groups)
    with torch.enable_grad():
        logits = fold_in._logits(weight, bias)  # (B, K, I), every pair, by autograd
        coo = rows.tocoo()
        rated = torch.log_softmax(logits[coo.row, :, coo.col], -1)
        values = torch.from_numpy(coo.data).long().unsqueeze(1) - 1
        expected = -rated.gather(1, values).sum()
        expected.backward()
    torch.testing.assert_close(nll, expected.detach())
    torch.testing.assert_close(grad_weight, weight.grad)
    torch.testing.assert_close(grad_bias, bias.grad)
    assert torch.all(grad_weight[5] == 0)


def test_sampled_columns_hold_every_rated_item_then_weighted_others() -> None:
    rows = _random_rows(n_users=3, n_items=600)
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    columns, weight, n_rated = sample_columns(batch, 0.5, torch.Generator().manual_seed(0))
    rated = torch.unique(batch.items)
    n_rated = int(n_rated)
    assert torch.equal(columns[:n_rated], rated)
    assert len(set(columns.tolist())) == len(columns)  # no item twice
    n_others = 600 - n_rated
    n_sample = math.ceil(0.5 * n_rated)
    assert 0 < n_sample < n_others
    assert len(columns) == n_rated + n_sample
    assert torch.all(weight[:n_rated] == 1)
    torch.testing.assert_close(weight[n_rated:], torch.full((n_sample,), n_others / n_sample))


def test_the_catalogue_size_chooses_the_cd_path() -> None:
    assert not uses_sampled_cd(RBMConfig(n_items=1682))  # MovieLens-100K stays exact
    assert uses_sampled_cd(RBMConfig(n_items=10677))
    assert uses_sampled_cd(RBMConfig(n_items=30, training=RBMTraining(sampled_cd_min_items=0)))
    assert not uses_sampled_cd(
        RBMConfig(n_items=30, training=RBMTraining(sampled_cd_min_items=0, persistent=True))
    )


def test_sampled_cd_learns_the_planted_groups() -> None:
    # Batches of 2 users rate about half the catalogue: the chain really samples the rest.
    split = protocol_split(planted_frame())
    config = SMALL.with_training(batch_size=2, sampled_cd_min_items=0, sampled_cd_negatives=0.5)
    assert RBMTrainer(split.train, config, OPTIONS).sampled
    model, history = fit_rbm(split.train, config, OPTIONS, validation=split.test)
    assert history[-1]["val_ndcg@10"] > history[0]["val_ndcg@10"]
    ranked = top_k(predict_rows(model, split.train), 5, exclude=split.train)
    items = split.items.ids[ranked]  # group g likes items g*15+1..g*15+15
    assert ((items > 15).astype(int) == (split.users.ids % 2)[:, None]).mean() >= 0.95
