"""Baselines on PROTOCOL.md: popularity and EASE (lambda chosen on the validation pair).

Writes bench/results/baselines.{md,json}: the validation sweep, then the test-fold figures of
the chosen configuration, with fit and scoring times (medians of 3).
"""

from __future__ import annotations

from bench.common import markdown_table, median, timed, write_result
from ml.data.fetch import load_dataset
from ml.data.splits import PROTOCOL_SEED, VALIDATION_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking
from ml.models.baselines import EASE, EASEConfig, Popularity
from ml.training.baselines import DEFAULT_L2_GRID
from tests.conftest import TEST_DATA_DIR

COLUMNS = [
    "model", "ndcg@10_all", "precision@10_all", "recall@10_all", "map@10_all",
    "ndcg@10_liked", "precision@10_liked", "coverage", "fit_s", "score_all_users_s",
]  # fmt: skip


def main() -> None:
    data = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    validation = protocol_split(data.ratings, validation_seed=VALIDATION_SEED)
    sweep = []
    for l2 in DEFAULT_L2_GRID:
        model = EASE.fit(validation.train, EASEConfig(l2))
        metrics = evaluate_ranking(model.score, validation.train, validation.test)
        sweep.append({"l2": f"{l2:g}", "validation ndcg@10_all": metrics["ndcg@10_all"]})
    best_l2 = float(
        max(sweep, key=lambda row: (row["validation ndcg@10_all"], -float(row["l2"])))["l2"]
    )

    split = protocol_split(data.ratings, seed=PROTOCOL_SEED)
    rows = []
    for name, fit in (
        ("popularity", lambda: Popularity.fit(split.train)),
        (f"EASE (l2={best_l2:g})", lambda: EASE.fit(split.train, EASEConfig(best_l2))),
    ):
        model, fit_times = timed(fit, repeats=3)
        metrics, score_times = timed(
            lambda m=model: evaluate_ranking(m.score, split.train, split.test), repeats=3
        )
        rows.append({"model": name, **metrics, "fit_s": median(fit_times),
                     "score_all_users_s": median(score_times)})  # fmt: skip
    body = (
        "## Validation sweep (EASE lambda; train-within-train vs validation, seed 7)\n\n"
        + markdown_table(sweep)
        + f"\nChosen: l2 = {best_l2:g}.\n\n## Test fold (PROTOCOL.md, seed 42)\n\n"
        + markdown_table(rows, COLUMNS)
        + "\nScoring time covers ranking the top 10 for every test user, metrics included.\n"
    )
    write_result(
        "baselines",
        {
            "validation_sweep": sweep,
            "chosen_l2": best_l2,
            "test": rows,
        },
        body,
        seed=PROTOCOL_SEED,
        title="Baselines on MovieLens-100K",
    )


if __name__ == "__main__":
    main()
