"""The per-user random split of PROTOCOL.md, and the sparse matrices models train on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.data.vocab import IdVocab

PROTOCOL_SEED = 42
VALIDATION_SEED = 7
TRAIN_FRACTION = 0.75


def per_user_split(
    ratings: pd.DataFrame, *, seed: int = PROTOCOL_SEED, train_fraction: float = TRAIN_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each user's ratings at random: ceil(75%) to train, the rest to test.

    Follows PROTOCOL.md exactly: rows sorted by (user_id, item_id); one generator
    ``default_rng(seed)``; users in ascending id order; ``perm = rng.permutation(n)`` and
    ``perm[:ceil(0.75 n)]`` to train. The same generator runs on from user to user.
    """
    ordered = ratings.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    users = ordered["user_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    in_train = np.zeros(len(ordered), dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        n = int(end - start)
        perm = rng.permutation(n)
        in_train[start + perm[: math.ceil(train_fraction * n)]] = True
    train = ordered[in_train].reset_index(drop=True)
    test = ordered[~in_train].reset_index(drop=True)
    return train, test


def to_csr(ratings: pd.DataFrame, users: IdVocab, items: IdVocab) -> sp.csr_matrix:
    """Users x items matrix of rating values (float32); absent ratings are structural zeros."""
    rows = users.encode(ratings["user_id"].to_numpy())
    cols = items.encode(ratings["item_id"].to_numpy())
    values = ratings["rating"].to_numpy(dtype=np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    matrix.sort_indices()
    return matrix


@dataclass(frozen=True)
class SplitData:
    """A train/test pair over one id vocabulary, as matrices and as frames."""

    users: IdVocab
    items: IdVocab
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame
    train: sp.csr_matrix  # (U, I)
    test: sp.csr_matrix  # (U, I)


def protocol_split(
    ratings: pd.DataFrame, *, seed: int = PROTOCOL_SEED, validation_seed: int | None = None
) -> SplitData:
    """The protocol's train/test split; with ``validation_seed``, train is split again and the
    returned pair is (train-within-train, validation): the one to tune on.

    The vocabularies always cover every user and item of ``ratings``, so ids and matrix shapes
    are the same for the validation and the test pair.
    """
    users = IdVocab(ratings["user_id"].to_numpy())
    items = IdVocab(ratings["item_id"].to_numpy())
    train, test = per_user_split(ratings, seed=seed)
    if validation_seed is not None:
        train, test = per_user_split(train, seed=validation_seed)
    return SplitData(
        users, items, train, test, to_csr(train, users, items), to_csr(test, users, items)
    )
