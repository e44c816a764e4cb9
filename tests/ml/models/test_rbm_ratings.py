"""The companion item-based rating RBM: folded-in users get their own taste back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from ml.data.splits import protocol_split
from ml.evaluation.metrics import rmse
from ml.models.rbm import RBMConfig
from ml.models.rbm_config import FoldInSettings, ItemRBMSettings, RBMTraining
from ml.models.rbm_ratings import TENSOR_PREFIX, RatingFoldIn
from ml.training.base import TrainingOptions
from ml.training.rbm import fit_rating_fold_in

CONFIG = RBMConfig(
    training=RBMTraining(batch_size=4),
    item_rbm=ItemRBMSettings(n_hidden=8, epochs=60),
    fold_in=FoldInSettings(prior=1.0),
)


def _opposite_tastes(n_users: int = 60, n_items: int = 20, seed: int = 0) -> pd.DataFrame:
    """Group 0 rates the first half of the items 5 and the second half 1; group 1 the reverse.
    Every user rates a random 60% of the items."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        for item in range(n_items):
            if rng.random() < 0.6:
                likes = (item < n_items // 2) == (user % 2 == 0)
                rows.append((user + 1, item + 1, 5.0 if likes else 1.0, 0))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture(scope="module")
def fitted() -> tuple[RatingFoldIn, object]:
    split = protocol_split(_opposite_tastes())
    return fit_rating_fold_in(split.train, CONFIG, TrainingOptions(seed=1, progress=False)), split


def test_held_out_ratings_follow_each_users_group(fitted: tuple[RatingFoldIn, object]) -> None:
    model, split = fitted
    predicted = model.predict(split.train)  # (U, I)
    test = split.test.tocoo()
    item_means = np.asarray(split.train.sum(0) / (split.train != 0).sum(0)).ravel()
    assert rmse(predicted[test.row, test.col], test.data) < 0.5 * rmse(
        item_means[test.col], test.data
    )


def test_a_new_user_is_folded_in_from_a_few_ratings(fitted: tuple[RatingFoldIn, object]) -> None:
    model, _ = fitted
    likes_second_half = np.zeros((1, 20), dtype=np.float32)
    likes_second_half[0, [0, 2, 11, 13]] = [1.0, 1.0, 5.0, 5.0]
    predicted = model.predict(sp.csr_matrix(likes_second_half))[0]
    assert predicted[10:].mean() > predicted[:10].mean() + 1.5
    assert predicted.min() >= 1.0 and predicted.max() <= 5.0


def test_a_user_without_ratings_gets_the_prior(fitted: tuple[RatingFoldIn, object]) -> None:
    model, _ = fitted
    predicted = model.predict(sp.csr_matrix((1, 20), dtype=np.float32))
    weight = model.weight_prior.unsqueeze(0)
    expected = model.expected_ratings(weight, model.bias_prior.unsqueeze(0)).numpy()
    np.testing.assert_allclose(predicted, expected, rtol=1e-6)


def test_tensors_round_trip(fitted: tuple[RatingFoldIn, object]) -> None:
    model, split = fitted
    tensors = {TENSOR_PREFIX + k: v.clone() for k, v in model.state_dict().items()}
    again = RatingFoldIn.from_tensors(tensors, prior_strength=1.0, steps=CONFIG.fold_in.steps)
    np.testing.assert_array_equal(again.predict(split.train[:5]), model.predict(split.train[:5]))
    with pytest.raises(KeyError):
        RatingFoldIn.from_tensors({}, prior_strength=1.0, steps=5)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="item_codes"):
        RatingFoldIn(torch.zeros(3, 4), torch.zeros(5, 3), torch.zeros(5))
