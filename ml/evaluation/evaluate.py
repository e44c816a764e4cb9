"""Run the protocol's evaluation for any model that scores users from their train ratings.

A *scorer* takes a CSR batch of users' train ratings (B, I) and returns scores (B, I), higher
is better: the same fold-in contract the service uses, so evaluation measures what is served.
A *rating predictor* returns expected ratings (B, I) for the same input.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ml.evaluation.metrics import catalogue_coverage, mae, ranking_metrics, rmse

Scorer = Callable[[sp.csr_matrix], np.ndarray]
LIKED_THRESHOLD = 4.0


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Indices of the k best items per row, best first; items in ``exclude`` never appear."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def evaluate_ranking(
    scorer: Scorer,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    *,
    k: int = 10,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Protocol metrics at k for relevance "all" and "liked" (test rating >= 4), plus cost."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    liked = test.multiply(test >= LIKED_THRESHOLD).tocsr()
    liked.eliminate_zeros()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    per_user: dict[str, list[np.ndarray]] = {}
    recommended = []
    started = time.perf_counter()
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        seen = train[rows]
        scores = scorer(seen)
        ranked = top_k(scores, k, exclude=seen)
        recommended.append(ranked)
        for relevance, matrix in (("all", test), ("liked", liked)):
            for name, values in ranking_metrics(ranked, matrix, rows).items():
                per_user.setdefault(f"{name}_{relevance}", []).append(values)
        per_user.setdefault("_has_liked", []).append(np.diff(liked[rows].indptr) > 0)
    elapsed = time.perf_counter() - started
    has_liked = np.concatenate(per_user.pop("_has_liked"))
    result: dict[str, float] = {}
    for key, chunks in per_user.items():
        values = np.concatenate(chunks)
        if key.endswith("_liked"):
            values = values[has_liked]
        result[f"{key.rsplit('_', 1)[0]}@{k}_{key.rsplit('_', 1)[1]}"] = float(values.mean())
    result["coverage"] = catalogue_coverage(np.concatenate(recommended), train.shape[1])
    result["users_evaluated"] = float(len(users))
    result["scoring_seconds"] = elapsed
    return result


def evaluate_rating(
    predictor: Scorer, train: sp.csr_matrix, test: sp.csr_matrix, *, batch_size: int = 1024
) -> dict[str, float]:
    """RMSE and MAE of predicted ratings over every test rating."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    predicted, actual = [], []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        predictions = predictor(train[rows])  # (B, I)
        block = test[rows].tocoo()
        predicted.append(predictions[block.row, block.col])
        actual.append(block.data)
    p, a = np.concatenate(predicted), np.concatenate(actual)
    return {"rmse": rmse(p, a), "mae": mae(p, a)}
