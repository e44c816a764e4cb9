from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml.data.splits import per_user_split, protocol_split, to_csr
from ml.data.vocab import IdVocab
from ml.evaluation.evaluate import evaluate_ranking
from ml.models.baselines import Popularity
from tests.conftest import planted_frame


def test_each_user_gets_ceil_three_quarters_in_train() -> None:
    ratings = planted_frame(n_users=10, per_user=7)
    train, test = per_user_split(ratings, seed=42)
    counts = train.groupby("user_id").size()
    assert (counts == math.ceil(0.75 * 7)).all()
    merged = pd.concat([train, test]).sort_values(["user_id", "item_id"]).reset_index(drop=True)
    expected = ratings.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, expected, check_dtype=False)


def test_split_follows_the_protocols_generator_sequence() -> None:
    ratings = planted_frame(n_users=3, per_user=4)
    train, _ = per_user_split(ratings, seed=42)
    rng = np.random.default_rng(42)
    ordered = ratings.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    expected = []
    for _, rows in ordered.groupby("user_id", sort=True):
        perm = rng.permutation(len(rows))
        expected.append(rows.iloc[np.sort(perm[: math.ceil(0.75 * len(rows))])])
    want = pd.concat(expected).reset_index(drop=True)
    pd.testing.assert_frame_equal(train, want)


def test_validation_pair_shares_the_vocabularies_and_avoids_the_test_fold() -> None:
    ratings = planted_frame()
    full = protocol_split(ratings)
    val = protocol_split(ratings, validation_seed=7)
    assert full.users == val.users and full.items == val.items
    assert val.train.nnz + val.test.nnz == full.train.nnz
    assert full.test.multiply(val.train).nnz == 0 and full.test.multiply(val.test).nnz == 0


def test_to_csr_places_ratings() -> None:
    frame = pd.DataFrame({"user_id": [5, 9], "item_id": [3, 1], "rating": [4.0, 2.0]})
    matrix = to_csr(frame, IdVocab([5, 9]), IdVocab([1, 3]))
    assert matrix.toarray().tolist() == [[0, 4], [2, 0]]


def test_popularity_on_real_ml100k_matches_the_independent_run(ml100k) -> None:
    split = protocol_split(ml100k.ratings)
    assert (split.train.nnz, split.test.nnz) == (75353, 24647)
    metrics = evaluate_ranking(Popularity.fit(split.train).score, split.train, split.test)
    assert round(metrics["ndcg@10_all"], 3) == 0.246
