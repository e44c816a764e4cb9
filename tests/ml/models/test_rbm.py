"""The RBMs' conditionals and free energies against brute-force enumeration on tiny models."""

from __future__ import annotations

import itertools

import pytest
import torch

from ml.models.rbm import (
    BernoulliRBM,
    BernoulliRBMConfig,
    RatingRBM,
    RBMConfig,
    bin_ratings,
)
from ml.models.rbm_config import FoldInSettings, ItemRBMSettings, RBMTraining


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))


def _all_hiddens(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))  # (2^H, H)


def test_bernoulli_free_energy_matches_enumeration() -> None:
    rbm = BernoulliRBM(BernoulliRBMConfig(n_visible=4, n_hidden=3))
    _randomise(rbm)
    v = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    h = _all_hiddens(3)
    energy = -(v @ rbm.visible_bias)[:, None] - h @ rbm.hidden_bias - (v @ rbm.weight) @ h.T
    expected = -torch.logsumexp(-energy, dim=1)  # (B,)
    torch.testing.assert_close(rbm.free_energy(v), expected)


def test_bernoulli_conditionals_shapes_and_ranges() -> None:
    rbm = BernoulliRBM(
        BernoulliRBMConfig(n_visible=6, n_hidden=5), torch.Generator().manual_seed(1)
    )
    v = torch.bernoulli(torch.full((7, 6), 0.5), generator=torch.Generator().manual_seed(2))
    probs, sample = rbm.sample_hidden(v, torch.Generator().manual_seed(3))
    assert probs.shape == sample.shape == (7, 5)
    assert set(sample.unique().tolist()) <= {0.0, 1.0}
    recon = rbm.reconstruct(v)
    assert recon.shape == (7, 6) and bool(((recon > 0) & (recon < 1)).all())


@pytest.mark.parametrize("model_rated", [True, False])
def test_rating_free_energy_matches_enumeration(model_rated: bool) -> None:
    model = RatingRBM(
        RBMConfig(
            n_items=3,
            n_hidden=3,
            n_ratings=3,
            model_rated=model_rated,
            ranking_score="p_rated" if model_rated else "expected_rating",
        )
    )
    _randomise(model)
    bins = torch.tensor([[0, 2, 3], [1, 0, 0]])
    onehot, rated = model.split_visible(bins)
    h = _all_hiddens(3)  # (8, H)
    # E(v, h) = -sum v_ik (W_ik h + b_ik) - sum r_i (D_i h + c_i) - b_h h
    w = torch.einsum("bik,ikh->bh", onehot, model.rating_weight)  # (B, H)
    vis = (onehot * model.rating_bias).sum((1, 2))
    if model_rated:
        w = w + rated @ model.rated_weight
        vis = vis + rated @ model.rated_bias
    energy = -vis[:, None] - w @ h.T - h @ model.hidden_bias  # (B, 8)
    torch.testing.assert_close(model.free_energy(onehot, rated), -torch.logsumexp(-energy, 1))


def test_rating_predictions_are_consistent_with_visible_probs() -> None:
    model = RatingRBM(RBMConfig(n_items=4, n_hidden=5, n_ratings=5))
    _randomise(model, seed=3)
    bins = torch.tensor([[0, 5, 1, 0]])
    expected, p_rated = model.predict(bins)
    probs, p_rated_direct = model.visible_probs(model.hidden_probs(*model.split_visible(bins)))
    torch.testing.assert_close(p_rated, p_rated_direct)
    values = torch.arange(1.0, 6.0)
    torch.testing.assert_close(expected, (probs @ values) / probs.sum(-1))
    assert bool(((expected >= 1) & (expected <= 5)).all())
    torch.testing.assert_close(model.score(bins), p_rated)


def test_bin_ratings_rounds_half_stars_up_and_keeps_unrated() -> None:
    values = torch.tensor([0.0, 0.5, 1.0, 3.5, 4.0, 5.0])
    assert bin_ratings(values, 5).tolist() == [0, 1, 1, 4, 4, 5]


def test_config_refuses_inconsistent_settings() -> None:
    with pytest.raises(ValueError, match="needs model_rated"):
        RBMConfig(model_rated=False, ranking_score="p_rated")
    with pytest.raises(ValueError, match="ranking_score"):
        RBMConfig(ranking_score="stars")
    with pytest.raises(ValueError):
        BernoulliRBMConfig(n_visible=4, n_hidden=2, cd_k=0)
    with pytest.raises(ValueError, match="rating_model"):
        RBMConfig(rating_model="svd")
    with pytest.raises(ValueError, match="hidden_dropout"):
        RBMConfig(hidden_dropout=1.0)
    with pytest.raises(ValueError, match=r"fold_in\.prior"):
        RBMConfig(fold_in=FoldInSettings(prior=0.0))


def test_item_rbm_config_is_the_papers_model_with_its_own_settings() -> None:
    config = RBMConfig(item_rbm=ItemRBMSettings(n_hidden=7, learning_rate=0.2, epochs=3))
    item = config.item_rbm_config()
    assert (item.n_hidden, item.training.learning_rate, item.training.epochs) == (7, 0.2, 3)
    assert not item.model_rated and item.ranking_score == "expected_rating"
    assert item.hidden_dropout == 0.0 and not item.training.persistent  # the sparse CD path applies


def test_hidden_dropout_scales_the_down_pass_by_the_keep_probability() -> None:
    plain = RatingRBM(RBMConfig(n_items=5, n_hidden=4, hidden_dropout=0.0))
    dropout = RatingRBM(RBMConfig(n_items=5, n_hidden=4, hidden_dropout=0.5))
    dropout.load_state_dict(plain.state_dict())
    h = torch.rand(2, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(dropout.rating_logits(h), plain.rating_logits(0.5 * h))


def test_cd_k_schedule_rises() -> None:
    config = RBMConfig(training=RBMTraining(cd_k_max=5, cd_k_step_epochs=2))
    assert [config.training.cd_k(e) for e in range(1, 9)] == [1, 1, 3, 3, 5, 5, 5, 5]


def test_sparse_fold_in_matches_the_dense_one() -> None:
    import numpy as np
    import scipy.sparse as sp

    from ml.models.rbm import predict_rows

    model = RatingRBM(RBMConfig(n_items=6, n_hidden=4, ranking_score="p_rated_x_rating"))
    _randomise(model, seed=5)
    dense = np.array([[0, 4.0, 0, 1.0, 0, 5.0], [0, 0, 0, 0, 0, 0], [3.0, 0, 2.0, 0, 0, 0]])
    rows = sp.csr_matrix(  # row 2 stores an explicit zero at item 5: no rating
        (
            np.array([4.0, 1.0, 5.0, 3.0, 2.0, 0.0], np.float32),
            np.array([1, 3, 5, 0, 2, 5]),
            np.array([0, 3, 3, 6]),
        ),
        shape=(3, 6),
    )
    expected, p_rated = model.predict(torch.from_numpy(dense).long())
    np.testing.assert_allclose(predict_rows(model, rows, "rating"), expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(predict_rows(model, rows, "p_rated"), p_rated.numpy(), rtol=1e-5)
    np.testing.assert_allclose(predict_rows(model, rows), (expected * p_rated).numpy(), rtol=1e-5)


def test_rated_batch_leaves_its_input_rows_unchanged() -> None:
    import numpy as np
    import scipy.sparse as sp

    from ml.models.rbm import RatedBatch

    rows = sp.csr_matrix(
        (np.array([0.0, 4.0, -1.0]), np.array([3, 1, 2]), np.array([0, 3])), (1, 5)
    )
    before = (rows.data.copy(), rows.indices.copy(), rows.indptr.copy())
    batch = RatedBatch.from_rows(rows, 5, torch.device("cpu"))
    assert batch.items.tolist() == [1] and batch.values.tolist() == [4]
    for now, then in zip((rows.data, rows.indices, rows.indptr), before, strict=True):
        np.testing.assert_array_equal(now, then)


def test_epochs_shrink_with_the_ratings_per_visible_unit_and_never_grow() -> None:
    config = RBMConfig()  # epochs 20 tuned at 45 ratings per item
    assert config.scaled_to(75_353, 1_682).training.epochs == 20  # MovieLens-100K's train fold
    assert config.scaled_to(1_000, 1_682).training.epochs == 20  # sparser data: never lengthened
    dense = config.scaled_to(750_440, 3_706).training  # 202 ratings per item
    assert dense.epochs == 5  # ceil(20 * 45 / 202.5)
    assert [dense.cd_k(e) for e in range(1, 6)] == [1, 3, 3, 3, 3]
    assert dense.epochs_ratings_per_visible == 0  # a refit with it runs the same epochs
    assert dense.scaled_to(750_440, 3_706) == dense
    assert RBMTraining(epochs_ratings_per_visible=0).scaled_to(750_440, 3_706).epochs == 20
    items = config.item_rbm_config()  # the companion: ratings per user
    assert items.scaled_to(75_353, 943).training.epochs == 20
    assert items.scaled_to(750_440, 6_040).training.epochs == 13
