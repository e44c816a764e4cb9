"""Classical baselines every neural model is compared with: popularity and EASE.

EASE: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019. Closed form
B = I - P diag(1/diag(P)) with P = (X^T X + lambda I)^-1 on binary interactions X.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack


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


# Dense items x items float32 arrays alive at the peak of a fit and its checkpoint: the Gram
# matrix (factorised and inverted in place into the weights) and the copy the checkpoint writer
# serialises, plus one for the blocks and LAPACK's workspace.
EASE_LIVE_COPIES = 3
GIB = 1024**3


class EASETooLargeError(ValueError):
    """EASE is dense in items x items: the catalogue does not fit the memory budget."""


def ease_memory_bytes(n_items: int) -> int:
    """What a fit needs: items x items x 4 bytes (float32) x the live copies."""
    return n_items * n_items * 4 * EASE_LIVE_COPIES


def check_ease_fits(n_items: int, budget_gib: float) -> None:
    """Refuse, before allocating anything, a catalogue whose EASE would not fit the budget."""
    needed = ease_memory_bytes(n_items)
    if needed > budget_gib * GIB:
        raise EASETooLargeError(
            f"EASE needs about {needed / GIB:.3g} GiB for {n_items:,} items "
            f"({n_items:,}^2 x 4 bytes x {EASE_LIVE_COPIES} live copies), over its memory budget "
            f"of {budget_gib:g} GiB; raise memory_budget_gib (--memory-budget-gib, or "
            f"--params-json '{{\"memory_budget_gib\": {math.ceil(needed / GIB)}}}') on a machine "
            "with that much memory, or train a model that is not dense in items x items"
        )


def gram_matrix(train: sp.csr_matrix, block_cells: int = 1 << 25) -> np.ndarray:
    """X^T X (items x items, float32) of the binary interactions, from the sparse ratings: the
    product is formed a block of columns at a time, never a users x items array."""
    binary = sp.csc_matrix(train, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    binary.eliminate_zeros()
    transposed = binary.T.tocsr()
    n_items = train.shape[1]
    gram = np.empty((n_items, n_items), dtype=np.float32)
    step = max(1, block_cells // max(n_items, 1))
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        gram[:, start:stop] = (transposed @ binary[:, start:stop]).toarray()
    return gram


def _invert_spd_in_place(matrix: np.ndarray, block_cells: int = 1 << 24) -> np.ndarray:
    """The inverse of a symmetric positive definite float32 matrix, in its own memory
    (Cholesky factor then inverse by LAPACK, then the lower triangle mirrored by blocks)."""
    fortran = matrix.T  # the same memory in Fortran order: symmetric, so the same matrix
    factor, info = lapack.spotrf(fortran, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE's Gram matrix is not positive definite (info={info})")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE's Gram matrix could not be inverted (info={info})")
    result = inverse.T  # C order again; LAPACK filled the upper triangle of the Fortran view
    n = result.shape[0]
    step = max(1, block_cells // max(n, 1))
    for start in range(0, n, step):  # copy the filled triangle onto the other, a block at a time
        stop = min(start + step, n)
        rows = result[start:stop]
        mirror = np.tril_indices(stop - start, k=-1)
        block = rows[:, start:stop]
        block.T[mirror] = block[mirror]
        rows[:, stop:] = result[stop:, start:stop].T
    return result


class EASE:
    def __init__(self, weights: np.ndarray, config: EASEConfig) -> None:
        self.weights = weights  # (I, I) float32, zero diagonal
        self.config = config

    @classmethod
    def fit(
        cls,
        train: sp.csr_matrix,
        config: EASEConfig = EASEConfig(),
        *,
        memory_budget_gib: float | None = None,
    ) -> EASE:
        """Closed form on binary interactions, float32, in one items x items array.

        ``memory_budget_gib``: refuse (``EASETooLargeError``) a catalogue needing more."""
        if memory_budget_gib is not None:
            check_ease_fits(train.shape[1], memory_budget_gib)
        gram = gram_matrix(train)
        gram[np.diag_indices_from(gram)] += np.float32(config.l2)
        precision = _invert_spd_in_place(gram)  # P = (X^T X + lambda I)^-1
        diagonal = np.diagonal(precision).copy()
        precision /= -diagonal[None, :]  # B = -P diag(1/diag(P)), zero diagonal
        precision[np.diag_indices_from(precision)] = 0.0
        return cls(precision, config)

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        binary = (user_rows != 0).astype(np.float32)
        return np.asarray(binary @ self.weights)


# Each EASE fit inverts an items x items matrix: the search over lambda stops after this many.
DEFAULT_TUNING_FITS = 4
# EASE's items x items arrays may take this much memory (ML-10M's 10,677 items: 1.3 GiB; ML-25M's
# 59,047: 39 GiB, refused).
DEFAULT_MEMORY_BUDGET_GIB = 8.0


@dataclass(frozen=True)
class EASETrainingConfig:
    """What ``deeprec train ease`` starts from. ``l2``: EASE's lambda; ``None`` tunes it on the
    validation pair (``ml.training.baselines.DEFAULT_L2_GRID``) with at most
    ``max_tuning_fits`` fits. ``memory_budget_gib``: the most EASE's dense items x items arrays
    may take; a larger catalogue is refused before anything is allocated."""

    l2: float | None = None
    k: int = 10  # cut-off of the ranking metrics stored in the manifest
    max_tuning_fits: int = DEFAULT_TUNING_FITS
    memory_budget_gib: float = DEFAULT_MEMORY_BUDGET_GIB

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
        if self.max_tuning_fits < 1:
            raise ValueError(f"max_tuning_fits must be at least 1, got {self.max_tuning_fits}")
        if not (math.isfinite(self.memory_budget_gib) and self.memory_budget_gib > 0):
            raise ValueError(f"memory_budget_gib must be positive, got {self.memory_budget_gib}")


@dataclass(frozen=True)
class PopularityTrainingConfig:
    """No hyper-parameters: items ranked by how many users rated them in train."""

    k: int = 10

    def __post_init__(self) -> None:
        if self.k <= 0:
            raise ValueError(f"k must be positive, got {self.k}")
