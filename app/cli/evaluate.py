"""``deeprec evaluate``: the protocol's figures for a trained checkpoint, popularity beside it."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import fail, load_ratings, print_json, settings
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.device import resolve_device
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating
from ml.inference import load_recommender
from ml.models.baselines import Popularity


def evaluate(
    checkpoint: Path = typer.Option(..., help="Checkpoint folder."),
    dataset: str = typer.Option("ml-100k", help="Data set name."),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead."),
    k: int = typer.Option(10, help="Cut-off of the ranking metrics."),
    seed: int = typer.Option(PROTOCOL_SEED, help="Split seed (must match training's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Evaluate a checkpoint on the protocol's test fold."""
    if k <= 0:
        fail(f"k must be positive, got {k}")
    model = load_recommender(checkpoint, resolve_device(settings().device))
    data = load_ratings(dataset, ratings)
    split = protocol_split(data.ratings, seed=seed)
    if split.items != model.items or split.users != model.users:
        fail(f"{checkpoint}: was trained on other users/items than {data.name}")
    result: dict[str, object] = {
        "model": model.model_type,
        "dataset": data.name,
        "seed": seed,
        "metrics": evaluate_ranking(model.scorer.score, split.train, split.test, k=k),
        "popularity": evaluate_ranking(
            Popularity.fit(split.train).score, split.train, split.test, k=k
        ),
    }
    if model.predict_ratings is not None:
        result["rating"] = evaluate_rating(model.predict_ratings, split.train, split.test)
    # A served checkpoint (``--fit all``) saw the test fold: its figures here are not held out.
    result["held_out"] = model.checkpoint.extra.get("fit", "train") == "train"
    if not result["held_out"]:
        typer.echo(
            "warning: this checkpoint was fitted on every rating (--fit all), test fold included; "
            "its held-out figures are the manifest's metrics (or train with --fit train)",
            err=True,
        )
    if as_json:
        print_json(result)
    else:
        for section, values in result.items():
            typer.echo(f"{section}: {values}")
