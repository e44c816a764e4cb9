"""The rating RBM on PROTOCOL.md, beside popularity and EASE in the same run.

Writes bench/results/rbm.{md,json}:
1. the validation pair (train-within-train vs validation, seed 7): the candidate configurations
   that led to the choice, each evaluated on validation after its last epoch;
2. the test fold (seed 42): the chosen configuration (``RBMConfig()`` defaults, what
   ``deeprec train rbm`` uses) trained on the protocol's train fold, quality beside popularity and
   EASE (lambda tuned on validation), training wall time (median of 3) and the time to score the
   top 10 for every user (median of 5).
Runs with torch's default thread count; pass ``--quick`` to skip the validation table.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from bench.common import markdown_table, median, timed, write_result
from ml.data.fetch import load_dataset
from ml.data.schema import RatingsDataset
from ml.data.splits import PROTOCOL_SEED, VALIDATION_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating, top_k
from ml.models.baselines import EASE, EASEConfig, Popularity
from ml.models.rbm import RBMConfig, predict_rows
from ml.training.base import TrainingOptions
from ml.training.baselines import tune_ease_l2
from ml.training.rbm import fit_rbm
from tests.conftest import TEST_DATA_DIR

OPTIONS = TrainingOptions(device="cpu", seed=PROTOCOL_SEED, progress=False)

# What the validation table compares: the chosen defaults and the alternatives that lost.
CANDIDATES: dict[str, dict[str, object]] = {
    "chosen (RBMConfig defaults)": {},
    "paper's conditional RBM, rank by E[r]": {
        "model_rated": False,
        "conditional": True,
        "ranking_score": "expected_rating",
    },
    "joint, rank by p(rated) x E[r]": {"ranking_score": "p_rated_x_rating"},
    "joint, CD-1 throughout": {"cd_k_max": 1},
    "joint, persistent CD": {"persistent": True},
}

COLUMNS = [
    "model", "ndcg@10_all", "precision@10_all", "recall@10_all", "map@10_all",
    "ndcg@10_liked", "precision@10_liked", "coverage", "rmse", "train_s", "score_all_users_s",
]  # fmt: skip


def _validation_table() -> list[dict[str, object]]:
    split = protocol_split(data().ratings, validation_seed=VALIDATION_SEED)
    rows: list[dict[str, object]] = []
    for name, overrides in CANDIDATES.items():
        config = dataclasses.replace(RBMConfig(), **overrides)  # type: ignore[arg-type]
        started = time.perf_counter()
        _, history = fit_rbm(split.train, config, OPTIONS, validation=split.test)
        last, best = history[-1], max(history, key=lambda h: h["val_ndcg@10"])
        rows.append(
            {
                "candidate": name,
                "overrides": overrides,
                "val ndcg@10 (last epoch)": last["val_ndcg@10"],
                "val precision@10": last["val_precision@10"],
                "val rmse": last["val_rmse"],
                "best epoch (ndcg)": int(best["epoch"]),
                "free energy train/val": f"{last['free_energy_train']:.1f}/"
                f"{last['free_energy_val']:.1f}",
                "seconds": time.perf_counter() - started,
            }
        )
    return rows


@functools.cache
def data() -> RatingsDataset:
    return load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)


def _score_all_users(
    score: Callable[[sp.csr_matrix], np.ndarray], train: sp.csr_matrix
) -> np.ndarray:
    """Fold in every user, score every item, keep the top 10 unseen: what serving all costs."""
    return top_k(score(train), 10, exclude=train)


def main() -> None:
    quick = "--quick" in sys.argv
    validation = [] if quick else _validation_table()
    split = protocol_split(data().ratings, seed=PROTOCOL_SEED)
    config = RBMConfig()
    (model, history), train_times = timed(lambda: fit_rbm(split.train, config, OPTIONS), 3)
    model.eval()
    score = lambda rows: predict_rows(model, rows)  # noqa: E731
    _, score_times = timed(lambda: _score_all_users(score, split.train), 5)
    rbm_row = {
        "model": f"RBM (H={config.n_hidden}, {config.epochs} epochs)",
        **evaluate_ranking(score, split.train, split.test),
        **evaluate_rating(
            lambda rows: predict_rows(model, rows, "rating"), split.train, split.test
        ),
        "train_s": median(train_times),
        "score_all_users_s": median(score_times),
    }
    l2, _ = tune_ease_l2(data().ratings)
    rows = [rbm_row]
    for name, fit in (
        ("popularity", lambda: Popularity.fit(split.train)),
        (f"EASE (l2={l2:g})", lambda: EASE.fit(split.train, EASEConfig(l2))),
    ):
        baseline, fit_times = timed(fit, 3)
        _, times = timed(lambda b=baseline: _score_all_users(b.score, split.train), 5)
        rows.append(
            {
                "model": name,
                **evaluate_ranking(baseline.score, split.train, split.test),
                "train_s": median(fit_times),
                "score_all_users_s": median(times),
            }
        )
    targets = {
        "ndcg@10_all >= 0.45": rbm_row["ndcg@10_all"] >= 0.45,
        "precision@10_all >= 0.39": rbm_row["precision@10_all"] >= 0.39,
        "rmse <= 0.93": rbm_row["rmse"] <= 0.93,
        "train_s <= 30": rbm_row["train_s"] <= 30,
        "score_all_users_s <= 0.5": rbm_row["score_all_users_s"] <= 0.5,
    }
    body = ""
    if validation:
        body += (
            "## Validation pair (train-within-train vs validation, seed 7)\n\n"
            "Each candidate trained for its configured epochs, evaluated after every epoch;"
            " figures of the last epoch (what training returns).\n\n"
            + markdown_table(validation)
            + "\n"
        )
    body += (
        "## Test fold (PROTOCOL.md, seed 42), chosen configuration\n\n"
        + markdown_table(rows, COLUMNS)
        + "\ntrain_s: median of 3 trainings on the protocol's train fold; score_all_users_s:"
        " median of 5 fold-in passes scoring every item and taking the top 10 for all users.\n\n"
        "## Targets\n\n"
        + "\n".join(f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in targets.items())
        + "\n\n## Chosen configuration\n\n```\n"
        + "\n".join(f"{k} = {v}" for k, v in dataclasses.asdict(config).items())
        + "\n```\n"
    )
    write_result(
        "rbm",
        {
            "config": dataclasses.asdict(config),
            "validation": validation,
            "test": rows,
            "targets": targets,
            "train_seconds_all": train_times,
            "score_seconds_all": score_times,
            "history": history,
        },
        body,
        seed=PROTOCOL_SEED,
        title="Rating RBM on MovieLens-100K",
    )


if __name__ == "__main__":
    main()
