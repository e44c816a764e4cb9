"""What a training run fits the served model on: every rating, or the protocol's train fold.

A run always measures the model on the protocol's held-out split (train fold -> test fold; the
figures go in the manifest). With ``fit="all"`` it then fits the served model again, with the
same configuration and epochs, on every rating it was given, so no rating is held back from
production; ``fit="train"`` serves the measured model itself (what the benchmarks use, so their
figures stay those of the protocol). The manifest's ``extra`` records which (``fit``), how many
ratings the served model saw (``n_ratings_fitted``) and what the second fit cost
(``fit_all_seconds``).
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp

from ml.data.splits import SplitData

FIT_CHOICES: tuple[str, ...] = ("all", "train")


def check_fit(fit: str) -> None:
    if fit not in FIT_CHOICES:
        raise ValueError(f"fit must be one of {list(FIT_CHOICES)}, got {fit!r}")


def all_ratings(split: SplitData) -> sp.csr_matrix:
    """Every rating of the split, over its vocabularies (train and test are disjoint)."""
    everything = sp.csr_matrix(split.train + split.test)
    everything.sort_indices()
    return everything


def fit_record(fit: str, fitted: sp.csr_matrix, fit_all_seconds: float | None) -> dict[str, Any]:
    """The manifest's account of what the served model was fitted on."""
    record: dict[str, Any] = {"fit": fit, "n_ratings_fitted": int(fitted.nnz)}
    if fit_all_seconds is not None:
        record["fit_all_seconds"] = round(fit_all_seconds, 3)
    return record
