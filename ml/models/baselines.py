"""Classical baselines every neural model is compared with: popularity and EASE.

EASE: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019. Closed form
B = I - P diag(1/diag(P)) with P = (X^T X + lambda I)^-1 on binary interactions X.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


class Popularity:
    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.float64)  # (I,)

    @classmethod
    def fit(cls, train: sp.csr_matrix) -> Popularity:
        return cls(np.asarray((train != 0).sum(axis=0)).ravel())

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts, (user_rows.shape[0], len(self.counts))).copy()


@dataclass(frozen=True)
class EASEConfig:
    l2: float = 500.0  # lambda; chosen on the validation split (see bench/)


class EASE:
    def __init__(self, weights: np.ndarray, config: EASEConfig) -> None:
        self.weights = weights  # (I, I), zero diagonal
        self.config = config

    @classmethod
    def fit(cls, train: sp.csr_matrix, config: EASEConfig = EASEConfig()) -> EASE:
        x = torch.from_numpy((train != 0).astype(np.float64).toarray())  # (U, I)
        gram = x.T @ x  # (I, I)
        gram += config.l2 * torch.eye(gram.shape[0], dtype=gram.dtype)
        precision = torch.linalg.inv(gram)
        weights = -precision / torch.diagonal(precision)[None, :]
        weights.fill_diagonal_(0.0)
        return cls(weights.to(torch.float32).numpy(), config)

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        binary = (user_rows != 0).astype(np.float32)
        return np.asarray(binary @ self.weights)


@dataclass(frozen=True)
class EASETrainingConfig:
    """What ``deeprec train ease`` starts from. ``l2``: EASE's lambda; ``None`` tunes it on the
    validation pair (``ml.training.baselines.DEFAULT_L2_GRID``)."""

    l2: float | None = None
    k: int = 10  # cut-off of the ranking metrics stored in the manifest

    def __post_init__(self) -> None:
        if self.l2 is not None and (
            isinstance(self.l2, bool)
            or not isinstance(self.l2, int | float)
            or not math.isfinite(self.l2)
            or self.l2 <= 0
        ):
            raise ValueError(f"l2 must be a positive number or null, got {self.l2!r}")
        if self.k <= 0:
            raise ValueError(f"k must be positive, got {self.k}")


@dataclass(frozen=True)
class PopularityTrainingConfig:
    """No hyper-parameters: items ranked by how many users rated them in train."""

    k: int = 10

    def __post_init__(self) -> None:
        if self.k <= 0:
            raise ValueError(f"k must be positive, got {self.k}")
