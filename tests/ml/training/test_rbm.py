"""Training the RBMs: CD moves free energy the right way, planted groups, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ml.data.splits import protocol_split
from ml.evaluation.evaluate import top_k
from ml.models.rbm import (
    BernoulliRBM,
    BernoulliRBMConfig,
    RatingRBM,
    RBMConfig,
    dense_states,
    predict_rows,
)
from ml.models.rbm_config import RBMTraining
from ml.training.base import TrainingOptions
from ml.training.cd import MomentumSGD, bernoulli_cd_statistics, train_bernoulli_rbm
from ml.training.rbm import (
    RBMTrainer,
    exact_rating_cd_gradients,
    fit_rbm,
    rating_cd_statistics,
)
from tests.conftest import planted_frame

OPTIONS = TrainingOptions(device="cpu", seed=3, progress=False)
SMALL = RBMConfig(
    n_hidden=8,
    training=RBMTraining(learning_rate=0.1, batch_size=8, epochs=30, cd_k_step_epochs=10),
)


def _two_patterns(n: int = 64) -> torch.Tensor:
    a = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    return torch.stack([a if i % 2 else 1 - a for i in range(n)])  # (N, 6)


def test_bernoulli_cd_update_lowers_data_free_energy_relative_to_samples() -> None:
    data = _two_patterns()
    data[::4] = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])  # a third, rarer pattern
    rbm = BernoulliRBM(BernoulliRBMConfig(6, 4), torch.Generator().manual_seed(0))
    with torch.no_grad():
        rbm.visible_bias.fill_(-1.0)  # a model far from the data: samples are mostly zeros
    gen = torch.Generator().manual_seed(1)
    stats = bernoulli_cd_statistics(rbm, data, k=1, generator=gen)
    samples = stats.negative_visible
    gap_before = float(rbm.free_energy(data).mean() - rbm.free_energy(samples).mean())
    MomentumSGD(rbm.cd_parameters()).step(stats.gradients(), lr=0.1, momentum=0.0, weight_decay=0)
    gap_after = float(rbm.free_energy(data).mean() - rbm.free_energy(samples).mean())
    assert gap_after < gap_before


def test_train_bernoulli_rbm_reconstructs_patterns_and_reports_metrics() -> None:
    data = _two_patterns()
    rbm = BernoulliRBM(BernoulliRBMConfig(6, 4, learning_rate=0.2, batch_size=16))
    history = train_bernoulli_rbm(rbm, data, 40, OPTIONS, validation=data[:8])
    assert {"recon_error", "free_energy", "val_recon_error", "val_free_energy"} <= history[
        -1
    ].keys()
    assert history[-1]["recon_error"] < history[0]["recon_error"]
    assert history[-1]["recon_error"] < 0.05


def test_rating_cd_update_lowers_data_free_energy_relative_to_samples() -> None:
    split = protocol_split(planted_frame())
    trainer = RBMTrainer(split.train, SMALL, OPTIONS)
    model = trainer.model
    bins = dense_states(split.train, SMALL.n_ratings, "cpu")
    stats = rating_cd_statistics(model, bins, k=1, generator=torch.Generator().manual_seed(0))
    samples = model.split_visible(stats.negative_visible)
    data = model.split_visible(bins)

    def gap() -> float:
        return float(model.free_energy(*data).mean() - model.free_energy(*samples).mean())

    before = gap()
    trainer.optimiser.step(stats.gradients(), lr=0.5, momentum=0.0, weight_decay=0.0)
    assert gap() < before


def test_planted_groups_get_recommendations_within_their_group() -> None:
    ratings = planted_frame()
    split = protocol_split(ratings)
    model, history = fit_rbm(split.train, SMALL, OPTIONS, validation=split.test)
    assert {"train_rmse", "free_energy_train", "free_energy_val", "val_ndcg@10", "val_rmse"} <= (
        history[-1].keys()
    )
    ranked = top_k(predict_rows(model, split.train), 5, exclude=split.train)  # (U, 5)
    items = split.items.ids[ranked]  # raw ids; group g likes items g*15+1..g*15+15
    users = split.users.ids
    item_group = (items > 15).astype(int)
    assert (item_group == (users % 2)[:, None]).mean() >= 0.95


def test_training_is_deterministic_under_a_seed() -> None:
    split = protocol_split(planted_frame())
    config = RBMConfig(n_hidden=6, training=RBMTraining(batch_size=8, epochs=3, persistent=True))
    a, _ = fit_rbm(split.train, config, OPTIONS)
    b, _ = fit_rbm(split.train, config, OPTIONS)
    c, _ = fit_rbm(split.train, config, TrainingOptions(device="cpu", seed=4, progress=False))
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert not torch.equal(a.rating_weight, c.rating_weight)
    assert np.isfinite(predict_rows(a, split.train, "rating")).all()


def test_early_stopping_in_the_shared_loop_returns_the_best_epochs_model() -> None:
    split = protocol_split(planted_frame())
    config = SMALL.with_training(epochs=8)
    model, history = fit_rbm(split.train, config, OPTIONS, validation=split.test, patience=1)
    scores = [record["val_ndcg@10"] for record in history]
    best = int(np.argmax(scores))  # the first best epoch, as the loop keeps it
    # It stopped one validation after the best (patience 1), or ran to the ceiling.
    assert len(history) == min(best + 2, config.training.epochs)
    again, _ = fit_rbm(split.train, config.with_training(epochs=best + 1), OPTIONS)
    for name, tensor in model.state_dict().items():  # the best epoch's weights came back
        torch.testing.assert_close(tensor, again.state_dict()[name])


@pytest.mark.parametrize(("model_rated", "k"), [(True, 1), (True, 3), (False, 1), (False, 3)])
def test_the_one_product_gradients_are_the_two_phase_ones(model_rated: bool, k: int) -> None:
    config = RBMConfig(
        n_items=30,
        n_hidden=6,
        model_rated=model_rated,
        ranking_score="p_rated" if model_rated else "expected_rating",
    )  # hidden dropout 0.4: the dense path
    model = RatingRBM(config, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.rating_weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    rng = np.random.default_rng(2)
    rows = rng.integers(1, 6, (9, 30)) * (rng.random((9, 30)) < 0.3)
    bins = dense_states(sp.csr_matrix(rows.astype(np.float32)), 5, "cpu")
    reference = rating_cd_statistics(model, bins, k, torch.Generator().manual_seed(3))
    stale = {"rating_weight": torch.full_like(model.rating_weight, 7.0)}
    grads = exact_rating_cd_gradients(model, bins, k, torch.Generator().manual_seed(3), stale)
    assert grads["rating_weight"] is stale["rating_weight"]  # written in place
    expected = reference.gradients()
    assert set(expected) <= set(grads)
    for name in expected:
        torch.testing.assert_close(grads[name], expected[name])
