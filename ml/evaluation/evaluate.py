"""Run the protocol's evaluation for any model that scores users from their train ratings.

A *scorer* takes a CSR batch of users' train ratings (B, I) and returns scores (B, I), higher
is better: the same fold-in contract the service uses, so evaluation measures what is served.
A *rating predictor* returns expected ratings (B, I) for the same input.

Cost is bounded whatever the data's size: users are scored a batch at a time (at most
``MAX_BATCH_CELLS`` scores in memory, never users x items), and where more than
``DEEPREC_EVAL_MAX_USERS`` users (default 10,000; 0: no limit) have test ratings, a seeded
sample of that many is evaluated. ML-100K (943 users) and ML-1M (6,040) are evaluated in full.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ml.evaluation.metrics import catalogue_coverage, mae, ranking_metrics, rmse

Scorer = Callable[[sp.csr_matrix], np.ndarray]
LIKED_THRESHOLD = 4.0
MAX_USERS_ENV = "DEEPREC_EVAL_MAX_USERS"
DEFAULT_MAX_USERS = 10_000
EVAL_SAMPLE_SEED = 42
MAX_BATCH_CELLS = 1 << 24  # scores held at once: 16M (64 MiB as float32)


def default_max_users() -> int:
    """The evaluation sample's size from ``DEEPREC_EVAL_MAX_USERS`` (0: every user)."""
    raw = os.environ.get(MAX_USERS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_USERS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_USERS_ENV} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{MAX_USERS_ENV} must be 0 (no limit) or positive, got {value}")
    return value


def evaluation_users(
    test: sp.csr_matrix, max_users: int | None = None, *, seed: int = EVAL_SAMPLE_SEED
) -> np.ndarray:
    """Rows with test ratings, sorted; a seeded sample of ``max_users`` of them when there are
    more (``None``: the ``DEEPREC_EVAL_MAX_USERS`` setting; 0: all)."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    limit = default_max_users() if max_users is None else max_users
    if limit and len(users) > limit:
        chosen = np.random.default_rng(seed).choice(len(users), size=limit, replace=False)
        users = users[np.sort(chosen)]
    return users


def batch_rows(n_items: int, batch_size: int) -> int:
    """Users per batch: ``batch_size``, fewer where the catalogue is large."""
    return max(1, min(batch_size, MAX_BATCH_CELLS // max(n_items, 1)))


def _sample_record(test: sp.csr_matrix, users: np.ndarray) -> dict[str, float]:
    population = int((np.diff(test.indptr) > 0).sum())
    record = {"users_evaluated": float(len(users))}
    if len(users) < population:
        record["users_sampled_from"] = float(population)
    return record


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Indices of the k best items per row, best first; items in ``exclude`` never appear."""
    scores = np.array(scores, copy=True)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
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
    max_users: int | None = None,
) -> dict[str, float]:
    """Protocol metrics at k for relevance "all" and "liked" (test rating >= 4), plus cost;
    over a seeded sample of users where there are more than ``max_users`` (see the module)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    liked = test.multiply(test >= LIKED_THRESHOLD).tocsr()
    liked.eliminate_zeros()
    users = evaluation_users(test, max_users)
    batch_size = batch_rows(train.shape[1], batch_size)
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
    result.update(_sample_record(test, users))
    result["scoring_seconds"] = elapsed
    return result


def evaluate_rating(
    predictor: Scorer,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    *,
    batch_size: int = 1024,
    max_users: int | None = None,
) -> dict[str, float]:
    """RMSE and MAE of predicted ratings over every test rating (of the sampled users where
    there are more than ``max_users``: see the module)."""
    users = evaluation_users(test, max_users)
    batch_size = batch_rows(train.shape[1], batch_size)
    predicted, actual = [], []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        predictions = predictor(train[rows])  # (B, I)
        block = test[rows].tocoo()
        predicted.append(predictions[block.row, block.col])
        actual.append(block.data)
    p, a = np.concatenate(predicted), np.concatenate(actual)
    return {"rmse": rmse(p, a), "mae": mae(p, a)}
