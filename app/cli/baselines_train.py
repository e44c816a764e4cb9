"""``deeprec train ease`` and ``deeprec train popularity``: baseline checkpoints the service loads.

They give the service a fast, real model (and the admin retrain job a fast real command) before
and beside the neural models.
"""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import (
    apply_params,
    fail,
    fit_option,
    fit_summary,
    load_ratings,
    print_json,
)
from app.cli.train import app as train_app
from ml.checkpoint import Checkpoint, save_checkpoint
from ml.data.splits import PROTOCOL_SEED
from ml.device import resolve_device
from ml.training.baselines import (
    EASETrainingConfig,
    PopularityTrainingConfig,
    train_ease,
    train_popularity,
)
from ml.training.fit import check_fit

DATASET = typer.Option("ml-100k", help="Data set name (ignored when --ratings is given).")
RATINGS = typer.Option(None, help="A ratings file or MovieLens folder to train on instead.")
OUT = typer.Option(..., help="Checkpoint folder to write (must not exist).")
SEED = typer.Option(PROTOCOL_SEED, help="Recorded; the baselines are deterministic.")
EPOCHS = typer.Option(
    None, help="Accepted for a uniform interface; the baselines fit in closed form."
)
DEVICE = typer.Option("auto", help="auto | cpu | cuda | cuda:N (the baselines fit on the CPU).")
PARAMS = typer.Option(None, "--params-json", help='Config overrides as JSON, e.g. {"l2": 300}.')


def _check_out(out: Path, device: str, fit: str) -> None:
    if out.exists():
        fail(f"{out}: already exists; choose a new --out folder")
    resolve_device(device)  # refuse a misconfigured device like every other train command
    check_fit(fit)


def _write(checkpoint: Checkpoint, out: Path, seed: int, device: str) -> None:
    checkpoint.extra.update({"seed": seed, "device": device})
    save_checkpoint(checkpoint, out)
    print_json(
        {
            "checkpoint": str(out),
            "model_type": checkpoint.model_type,
            **checkpoint.metrics,
            **fit_summary(checkpoint.extra),
        }
    )


@train_app.command("ease")
def ease(
    dataset: str = DATASET,
    ratings: Path | None = RATINGS,
    out: Path = OUT,
    seed: int = SEED,
    epochs: int | None = EPOCHS,
    device: str = DEVICE,
    params_json: str | None = PARAMS,
    l2: float | None = typer.Option(None, help="EASE's lambda (default: tuned on validation)."),
    memory_budget_gib: float | None = typer.Option(
        None,
        help="Most memory EASE's items x items arrays may take (default 8); a larger catalogue "
        "is refused before training.",
    ),
    fit: str = fit_option(),
) -> None:
    """Fit EASE (Steck 2019): lambda tuned on the validation pair, measured on the protocol's
    test fold, served from every rating (``--fit all``) or the train fold."""
    config = apply_params(
        EASETrainingConfig(), params_json, l2=l2, memory_budget_gib=memory_budget_gib
    )
    _check_out(out, device, fit)
    data = load_ratings(dataset, ratings)
    _write(train_ease(data, config, fit=fit), out, seed, device)


@train_app.command("popularity")
def popularity(
    dataset: str = DATASET,
    ratings: Path | None = RATINGS,
    out: Path = OUT,
    seed: int = SEED,
    epochs: int | None = EPOCHS,
    device: str = DEVICE,
    params_json: str | None = PARAMS,
    fit: str = fit_option(),
) -> None:
    """Count ratings per item (the cold-start answer): measured on the protocol's test fold,
    served from every rating (``--fit all``) or the train fold."""
    config = apply_params(PopularityTrainingConfig(), params_json)
    _check_out(out, device, fit)
    data = load_ratings(dataset, ratings)
    _write(train_popularity(data, config, fit=fit), out, seed, device)
