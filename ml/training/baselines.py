"""Training the classical baselines into checkpoints the service can load.

Both follow the cross-team contract: fit on the protocol's TRAIN fold (``protocol_split(seed=42)``),
tune on the (train-within-train, validation) pair only, store the test-fold figures in the
manifest's ``metrics``, the vocabularies over every user and item of the ratings, and the data
set's sha256. EASE: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import torch

from ml.checkpoint import Checkpoint
from ml.data.schema import RatingsDataset
from ml.data.splits import PROTOCOL_SEED, VALIDATION_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking
from ml.models.baselines import (
    DEFAULT_TUNING_FITS,
    EASE,
    EASEConfig,
    EASETrainingConfig,
    Popularity,
    PopularityTrainingConfig,
    check_ease_fits,
)
from ml.training.fit import all_ratings, check_fit, fit_record

log = logging.getLogger(__name__)

# Values of EASE's lambda tried on the validation pair when none is given.
DEFAULT_L2_GRID: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0)


def _vocab(split_users: Any, split_items: Any) -> dict[str, list[int]]:
    return {"user": split_users.to_list(), "item": split_items.to_list()}


def _check_ratings(ratings: pd.DataFrame) -> None:
    if ratings.empty:
        raise ValueError("no ratings to train on")
    if ratings["user_id"].nunique() < 2 or ratings["item_id"].nunique() < 2:
        raise ValueError("need at least two users and two items to train")


def bounded_grid_search(
    grid: tuple[float, ...], score: Callable[[float], float], max_fits: int
) -> tuple[float, dict[float, float]]:
    """The grid value with the best score, assuming one peak, in at most ``max_fits`` calls:
    ternary search over the sorted grid, then the untried values left in the final bracket.
    Ties go to the smaller value. Returns (best, every score computed)."""
    values = sorted(grid)
    scores: dict[float, float] = {}

    def at(index: int) -> float:
        if values[index] not in scores:
            scores[values[index]] = score(values[index])
        return scores[values[index]]

    def budget_left(*indexes: int) -> bool:
        return len(scores) + sum(values[i] not in scores for i in set(indexes)) <= max_fits

    low, high = 0, len(values) - 1
    while high - low > 2 and budget_left(low + (high - low) // 3, high - (high - low) // 3):
        left, right = low + (high - low) // 3, high - (high - low) // 3
        if at(left) < at(right):
            low = left + 1
        else:
            high = right if at(left) == at(right) else right - 1
    middle = (low + high) / 2
    for index in sorted(range(low, high + 1), key=lambda i: (abs(i - middle), i)):
        if budget_left(index):
            at(index)
    best = max(scores, key=lambda value: (scores[value], -value))
    return best, scores


def tune_ease_l2(
    ratings: pd.DataFrame,
    grid: tuple[float, ...] = DEFAULT_L2_GRID,
    k: int = 10,
    *,
    max_fits: int = DEFAULT_TUNING_FITS,
    memory_budget_gib: float | None = None,
) -> tuple[float, dict[float, float]]:
    """The lambda with the best validation nDCG@k (ties: the smaller lambda), from at most
    ``max_fits`` fits."""
    validation = protocol_split(ratings, seed=PROTOCOL_SEED, validation_seed=VALIDATION_SEED)

    def validation_ndcg(l2: float) -> float:
        fitted = EASE.fit(validation.train, EASEConfig(l2), memory_budget_gib=memory_budget_gib)
        metrics = evaluate_ranking(fitted.score, validation.train, validation.test, k=k)
        del fitted  # one items x items array at a time
        log.info("ease tuning l2=%s validation ndcg@%d=%.4f", l2, k, metrics[f"ndcg@{k}_all"])
        return metrics[f"ndcg@{k}_all"]

    return bounded_grid_search(grid, validation_ndcg, max_fits)


def train_ease(
    dataset: RatingsDataset, config: EASETrainingConfig, *, fit: str = "train"
) -> Checkpoint:
    """Fit EASE on the protocol's train fold and evaluate it on the test fold; with
    ``fit="all"`` the served weights are then fitted on every rating (same lambda)."""
    check_fit(fit)
    _check_ratings(dataset.ratings)
    # Refuse a catalogue that cannot fit before any split or fit is made.
    check_ease_fits(int(dataset.ratings["item_id"].nunique()), config.memory_budget_gib)
    budget = config.memory_budget_gib
    started = time.perf_counter()
    tuning: dict[str, float] = {}
    l2 = config.l2
    if l2 is None:
        l2, scores = tune_ease_l2(
            dataset.ratings, k=config.k, max_fits=config.max_tuning_fits, memory_budget_gib=budget
        )
        tuning = {str(key): value for key, value in scores.items()}
    split = protocol_split(dataset.ratings, seed=PROTOCOL_SEED)
    fitted = EASE.fit(split.train, EASEConfig(float(l2)), memory_budget_gib=budget)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_ranking(fitted.score, split.train, split.test, k=config.k)
    metrics["train_seconds"] = train_seconds
    served, fit_all_seconds = split.train, None
    if fit == "all":
        del fitted  # one items x items array at a time
        started, served = time.perf_counter(), all_ratings(split)
        fitted = EASE.fit(served, EASEConfig(float(l2)), memory_budget_gib=budget)
        fit_all_seconds = time.perf_counter() - started
    return Checkpoint(
        model_type="ease",
        config=asdict(EASEConfig(float(l2))),
        tensors={"weights": torch.from_numpy(np.ascontiguousarray(fitted.weights))},
        vocab=_vocab(split.users, split.items),
        data_sha256=dataset.sha256,
        metrics=metrics,
        extra={
            "dataset": dataset.name,
            "validation_ndcg_by_l2": tuning,
            **fit_record(fit, served, fit_all_seconds),
        },
    )


def train_popularity(
    dataset: RatingsDataset, config: PopularityTrainingConfig, *, fit: str = "train"
) -> Checkpoint:
    """Count ratings per item on the protocol's train fold and evaluate on the test fold; with
    ``fit="all"`` the served counts are then those of every rating."""
    check_fit(fit)
    _check_ratings(dataset.ratings)
    started = time.perf_counter()
    split = protocol_split(dataset.ratings, seed=PROTOCOL_SEED)
    fitted = Popularity.fit(split.train)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_ranking(fitted.score, split.train, split.test, k=config.k)
    metrics["train_seconds"] = train_seconds
    served, fit_all_seconds = split.train, None
    if fit == "all":
        started, served = time.perf_counter(), all_ratings(split)
        fitted = Popularity.fit(served)
        fit_all_seconds = time.perf_counter() - started
    return Checkpoint(
        model_type="popularity",
        config={},
        tensors={"counts": torch.from_numpy(fitted.counts.astype(np.float64))},
        vocab=_vocab(split.users, split.items),
        data_sha256=dataset.sha256,
        metrics=metrics,
        extra={"dataset": dataset.name, **fit_record(fit, served, fit_all_seconds)},
    )
