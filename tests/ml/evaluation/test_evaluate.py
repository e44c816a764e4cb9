from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating, top_k


def test_top_k_excludes_seen_items_and_orders_best_first() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    seen = sp.csr_matrix(np.array([[0, 1, 0, 0]]))
    assert top_k(scores, 2, exclude=seen).tolist() == [[3, 2]]


def test_an_oracle_scores_one_and_liked_relevance_skips_users_without_likes() -> None:
    train = sp.csr_matrix(np.array([[5, 0, 0, 0], [0, 4, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 5, 0, 0], [0, 0, 2, 0]], dtype=np.float32))
    oracle = lambda rows: np.asarray((test != 0).toarray()[: rows.shape[0]], float)  # noqa: E731
    metrics = evaluate_ranking(oracle, train, test, k=1, batch_size=2)
    assert metrics["ndcg@1_all"] == pytest.approx(1.0)
    assert metrics["precision@1_all"] == pytest.approx(1.0)
    assert metrics["ndcg@1_liked"] == pytest.approx(1.0)  # only user 0 has a liked item
    assert metrics["users_evaluated"] == 2


def test_rating_evaluation_uses_every_test_rating() -> None:
    train = sp.csr_matrix(np.array([[5, 0], [0, 4]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 3], [1, 0]], dtype=np.float32))
    constant = lambda rows: np.full(rows.shape, 3.0)  # noqa: E731
    result = evaluate_rating(constant, train, test)
    assert result["mae"] == pytest.approx(1.0)
    assert result["rmse"] == pytest.approx(np.sqrt(2.0))
