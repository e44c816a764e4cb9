"""Strong generalisation: whole users held out of training, then folded in from a few ratings.

The protocol of the cold-start benchmark (``python -m bench coldstart``): the users are shuffled
with a seeded generator and cut into train, validation and test users; models train on every
rating of the train users only. Each held-out user is then given ``n`` of their ratings (the
first ``n`` of one seeded permutation, so the sets are nested: the 3 given include the 1) and
the model ranks every other item; the user's remaining ratings are the relevant ones. Metrics
are PROTOCOL.md's at k = 10 (relevance "all").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.data.splits import to_csr
from ml.data.vocab import IdVocab
from ml.evaluation.evaluate import batch_rows, top_k
from ml.evaluation.metrics import ranking_metrics

COLDSTART_SEED = 42
GIVEN_COUNTS: tuple[int, ...] = (1, 3, 5, 10)


@dataclass(frozen=True)
class UserHoldout:
    """Train users' ratings as a matrix; validation and test users' rows over the same items."""

    items: IdVocab
    train: sp.csr_matrix  # (U_train, I): every rating of the train users
    validation: sp.csr_matrix  # (U_val, I): every rating of the validation users
    test: sp.csr_matrix  # (U_test, I)
    seed: int


def user_holdout(
    ratings: pd.DataFrame,
    *,
    seed: int = COLDSTART_SEED,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
) -> UserHoldout:
    """Split the users (not the ratings) at random into train, validation and test users."""
    if not (
        test_fraction > 0 and validation_fraction > 0 and test_fraction + validation_fraction < 1
    ):
        raise ValueError("need positive fractions that leave train users")
    items = IdVocab(ratings["item_id"].to_numpy())
    users = np.unique(ratings["user_id"].to_numpy())
    order = np.random.default_rng(seed).permutation(users)
    n_test = round(test_fraction * len(users))
    n_val = round(validation_fraction * len(users))
    groups = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    matrices = {}
    for name, ids in groups.items():
        frame = ratings[ratings["user_id"].isin(ids)]
        matrices[name] = to_csr(frame, IdVocab(np.sort(ids)), items)
    return UserHoldout(items, matrices["train"], matrices["validation"], matrices["test"], seed)


def given_and_rest(rows: sp.csr_matrix, n: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each row's first ``n`` ratings in a seeded per-user permutation (given) and the rest.

    The permutation depends on the seed only, not on ``n``: the given sets are nested. Users with
    no more than ``n`` ratings are left out of both (rows of zeros).
    """
    rows = sp.csr_matrix(rows)
    rng = np.random.default_rng(seed)
    given_mask = np.zeros(rows.nnz, dtype=bool)
    keep = np.zeros(rows.nnz, dtype=bool)
    for u in range(rows.shape[0]):
        start, end = rows.indptr[u], rows.indptr[u + 1]
        perm = rng.permutation(end - start)
        if end - start <= n:
            continue
        keep[start:end] = True
        given_mask[start + perm[:n]] = True
    given = rows.copy()
    given.data = np.where(given_mask, rows.data, 0).astype(rows.dtype)
    rest = rows.copy()
    rest.data = np.where(keep & ~given_mask, rows.data, 0).astype(rows.dtype)
    given.eliminate_zeros()
    rest.eliminate_zeros()
    return given, rest


def coldstart_ndcg(
    score: Callable[[sp.csr_matrix], np.ndarray],
    rows: sp.csr_matrix,
    counts: Sequence[int] = GIVEN_COUNTS,
    *,
    seed: int = COLDSTART_SEED,
    k: int = 10,
    batch_size: int = 1024,
) -> dict[int, float]:
    """Mean nDCG@k over held-out ``rows`` for each number of given ratings (users scored a
    batch at a time: never held-out users x items at once)."""
    out: dict[int, float] = {}
    step = batch_rows(rows.shape[1], batch_size)
    for n in counts:
        given, rest = given_and_rest(rows, n, seed)
        users = np.flatnonzero(np.diff(rest.indptr) > 0)
        ndcg = []
        for start in range(0, len(users), step):
            batch = users[start : start + step]
            ranked = top_k(score(given[batch]), k, exclude=given[batch])
            ndcg.append(ranking_metrics(ranked, rest, batch)["ndcg"])
        out[n] = float(np.concatenate(ndcg).mean()) if ndcg else float("nan")
    return out
