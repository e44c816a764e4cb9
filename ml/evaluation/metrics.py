"""Ranking and rating metrics of PROTOCOL.md.

Per-list functions (``precision_at_k`` ...) are the readable definitions; ``ranking_metrics``
computes the same figures for many users at once from a top-k index matrix and is what the
evaluation uses. Tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import scipy.sparse as sp


def _hits(ranked: Sequence[int], relevant: Collection[int], k: int) -> np.ndarray:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return np.array([item in relevant for item in list(ranked)[:k]], dtype=float)


def precision_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Hits in the top k, divided by k."""
    return float(_hits(ranked, relevant, k).sum() / k)


def recall_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Hits in the top k, divided by the number of relevant items."""
    if not relevant:
        return 0.0
    return float(_hits(ranked, relevant, k).sum() / len(relevant))


def ndcg_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    """nDCG with binary gains; the ideal DCG puts min(k, |relevant|) hits first."""
    hits = _hits(ranked, relevant, k)
    n_ideal = min(k, len(relevant))
    if n_ideal == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    return float((hits * discounts[: len(hits)]).sum() / discounts[:n_ideal].sum())


def average_precision_at_k(ranked: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Sum of precision at each hit's rank, divided by min(k, |relevant|)."""
    hits = _hits(ranked, relevant, k)
    n_ideal = min(k, len(relevant))
    if n_ideal == 0:
        return 0.0
    precision_at_rank = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at_rank * hits).sum() / n_ideal)


def catalogue_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Distinct items recommended to anyone, divided by all items."""
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    return float(len(np.unique(np.asarray(recommended).ravel())) / n_items)


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    return float(np.mean(np.abs(predicted - actual)))


def ranking_metrics(
    topk: np.ndarray, relevant: sp.csr_matrix, rows: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-user metrics for a batch.

    topk: (B, K) item indices, best first, for users ``rows``; relevant: (U, I) CSR whose
    nonzeros are the relevant items. Returns arrays of shape (B,) for precision, recall, ndcg, map.
    """
    batch, k = topk.shape
    rel = relevant[rows]  # (B, I)
    n_relevant = np.diff(rel.indptr).astype(float)  # (B,)
    hits = np.asarray(rel[np.arange(batch)[:, None], topk].todense() != 0, dtype=float)  # (B, K)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # (K,)
    n_ideal = np.minimum(n_relevant, k)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[n_ideal.astype(int)]
    hit_count = hits.sum(axis=1)
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    safe = np.maximum(n_ideal, 1)
    return {
        "precision": hit_count / k,
        "recall": np.where(n_relevant > 0, hit_count / np.maximum(n_relevant, 1), 0.0),
        "ndcg": np.where(
            n_ideal > 0, (hits * discounts).sum(axis=1) / np.maximum(ideal, 1e-12), 0.0
        ),
        "map": np.where(n_ideal > 0, (precision_at_rank * hits).sum(axis=1) / safe, 0.0),
    }
