"""``deeprec baseline evaluate``: the protocol's figures for popularity and EASE."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from app.cli.common import fail, load_ratings, print_json
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking
from ml.models.baselines import EASE, EASEConfig, Popularity

app = typer.Typer(help="Classical baselines.", no_args_is_help=True)


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="popularity or ease"),
    dataset: str = typer.Option("ml-100k", help="Data set name."),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead."),
    l2: float = typer.Option(EASEConfig().l2, help="EASE's lambda."),
    k: int = typer.Option(10, help="Cut-off of the ranking metrics."),
    seed: int = typer.Option(PROTOCOL_SEED, help="Split seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fit a baseline on the protocol's train fold and report its test figures."""
    if model not in ("popularity", "ease"):
        fail(f"unknown baseline {model!r}; choose popularity or ease")
    if k <= 0:
        fail(f"k must be positive, got {k}")
    data = load_ratings(dataset, ratings)
    split = protocol_split(data.ratings, seed=seed)
    started = time.perf_counter()
    fitted = (
        Popularity.fit(split.train)
        if model == "popularity"
        else EASE.fit(split.train, EASEConfig(l2))
    )
    fit_seconds = time.perf_counter() - started
    metrics = evaluate_ranking(fitted.score, split.train, split.test, k=k)
    result = {
        "model": model,
        "dataset": data.name,
        "seed": seed,
        "fit_seconds": fit_seconds,
        **metrics,
    }
    if model == "ease":
        result["l2"] = l2
    if as_json:
        print_json(result)
    else:
        for key, value in result.items():
            typer.echo(f"{key:>22}: {value}")
