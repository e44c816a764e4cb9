from __future__ import annotations

import numpy as np

from ml.data.splits import protocol_split
from ml.evaluation.evaluate import top_k
from ml.models.baselines import EASE, EASEConfig, Popularity
from tests.conftest import planted_frame


def test_popularity_counts_raters() -> None:
    split = protocol_split(planted_frame())
    model = Popularity.fit(split.train)
    assert model.counts.sum() == split.train.nnz
    assert model.score(split.train[:3]).shape == (3, split.train.shape[1])


def test_ease_recommends_within_each_planted_group() -> None:
    split = protocol_split(planted_frame(n_users=60, n_items=30, per_user=8))
    model = EASE.fit(split.train, EASEConfig(l2=5.0))
    assert np.allclose(np.diag(model.weights), 0.0)
    ranked = top_k(model.score(split.train), 5, exclude=split.train)
    half = split.items.encode([15])[0] + 1  # items 1..15 are group 0's, 16..30 group 1's
    for row, items in enumerate(ranked):
        group = split.users.ids[row] % 2
        assert all((item >= half) == bool(group) for item in items)
