from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from ml.evaluation.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    mae,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    rmse,
)


def test_hand_computed_example() -> None:
    ranked = [7, 3, 9, 1, 5]
    relevant = {3, 5, 8}
    assert precision_at_k(ranked, relevant, 5) == pytest.approx(2 / 5)
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 5) == pytest.approx(dcg / idcg)
    assert average_precision_at_k(ranked, relevant, 5) == pytest.approx((1 / 2 + 2 / 5) / 3)


def test_ideal_is_capped_at_k() -> None:
    # 12 relevant items, k = 2, both hits: perfect on every metric but recall.
    relevant = set(range(12))
    assert ndcg_at_k([0, 1], relevant, 2) == pytest.approx(1.0)
    assert average_precision_at_k([0, 1], relevant, 2) == pytest.approx(1.0)
    assert recall_at_k([0, 1], relevant, 2) == pytest.approx(2 / 12)


def test_rating_errors_and_coverage() -> None:
    assert rmse([3, 4], [4, 2]) == pytest.approx(math.sqrt((1 + 4) / 2))
    assert mae([3, 4], [4, 2]) == pytest.approx(1.5)
    assert catalogue_coverage(np.array([[1, 2], [2, 3]]), 10) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        precision_at_k([1], {1}, 0)


rankings = st.lists(st.integers(0, 40), min_size=1, max_size=15, unique=True)
relevants = st.sets(st.integers(0, 40), max_size=15)


@given(rankings, relevants, st.integers(1, 15))
def test_metrics_are_bounded(ranked: list[int], relevant: set[int], k: int) -> None:
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k):
        assert 0.0 <= metric(ranked, relevant, k) <= 1.0 + 1e-12


@given(st.sets(st.integers(0, 100), min_size=1, max_size=20), st.integers(1, 20))
def test_a_perfect_ranking_scores_one(relevant: set[int], k: int) -> None:
    ranked = sorted(relevant) + [1000 + i for i in range(k)]
    assert ndcg_at_k(ranked, relevant, k) == pytest.approx(1.0)
    assert average_precision_at_k(ranked, relevant, k) == pytest.approx(1.0)
    assert precision_at_k(ranked, relevant, k) == pytest.approx(min(len(relevant), k) / k)
    assert recall_at_k(ranked, relevant, k) == pytest.approx(min(len(relevant), k) / len(relevant))


@given(rankings, relevants, st.randoms(use_true_random=False))
def test_precision_and_recall_ignore_order_within_the_top_k(ranked, relevant, rnd) -> None:
    shuffled = list(ranked)
    rnd.shuffle(shuffled)
    k = len(ranked)
    assert precision_at_k(shuffled, relevant, k) == precision_at_k(ranked, relevant, k)
    assert recall_at_k(shuffled, relevant, k) == recall_at_k(ranked, relevant, k)


@given(st.lists(st.tuples(rankings, relevants), min_size=1, max_size=6), st.integers(1, 8))
def test_vectorised_metrics_equal_the_per_list_definitions(users, k) -> None:
    n_items = 41
    topk = np.array([(r + [i for i in range(n_items) if i not in r])[:k] for r, _ in users])
    rows, cols = [], []
    for u, (_, rel) in enumerate(users):
        rows += [u] * len(rel)
        cols += sorted(rel)
    relevant = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), n_items))
    got = ranking_metrics(topk, relevant, np.arange(len(users)))
    for u, (_, rel) in enumerate(users):
        ranked = topk[u].tolist()
        assert got["precision"][u] == pytest.approx(precision_at_k(ranked, rel, k))
        assert got["recall"][u] == pytest.approx(recall_at_k(ranked, rel, k))
        assert got["ndcg"][u] == pytest.approx(ndcg_at_k(ranked, rel, k))
        assert got["map"][u] == pytest.approx(average_precision_at_k(ranked, rel, k))
