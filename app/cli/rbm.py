"""``deeprec train rbm``: the rating RBM filter, as a checkpoint the service loads."""

from __future__ import annotations

import sys
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
from ml.checkpoint import save_checkpoint
from ml.data.splits import PROTOCOL_SEED
from ml.device import resolve_device
from ml.models.rbm import RBMConfig
from ml.training.base import TrainingOptions
from ml.training.distributed import (
    init_from_env,
    launched_by_torchrun,
    relaunch_with_torchrun,
    shutdown,
)
from ml.training.fit import check_fit
from ml.training.rbm import train_rbm_checkpoint


@train_app.command("rbm")
def rbm(
    dataset: str = typer.Option("ml-100k", help="Data set name (ignored when --ratings is given)."),
    ratings: Path | None = typer.Option(None, help="A ratings file or MovieLens folder instead."),
    out: Path = typer.Option(..., help="Checkpoint folder to write (must not exist)."),
    seed: int = typer.Option(PROTOCOL_SEED, help="Seed of the run's generator."),
    epochs: int | None = typer.Option(None, help="Epochs (default: the tuned configuration's)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    params_json: str | None = typer.Option(
        None,
        "--params-json",
        help='RBMConfig overrides as JSON, e.g. {"n_hidden": 200, "training.epochs": 10} '
        '(a section\'s setting as "section.name").',
    ),
    hidden: int | None = typer.Option(None, help="Hidden units (RBMConfig.n_hidden)."),
    learning_rate: float | None = typer.Option(None, help="CD learning rate."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    fit: str = fit_option(),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Data-parallel training processes (starts torchrun; gloo on CPU, NCCL on CUDA).",
    ),
) -> None:
    """Train the rating RBM (Salakhutdinov, Mnih & Hinton 2007) on the protocol's train fold.

    With no option it uses the configuration chosen on the validation pair; the test-fold
    figures are written into the checkpoint's manifest and printed. With ``--fit all`` (the
    default) the served model is then trained again, same configuration, on every rating.
    """
    flags = {"n_hidden": hidden, "training.learning_rate": learning_rate, "training.epochs": epochs}
    config: RBMConfig = apply_params(RBMConfig(), params_json, **flags)
    if out.exists():
        fail(f"{out}: already exists; choose a new --out folder")
    options = TrainingOptions(
        device=device, seed=seed, epochs=config.training.epochs, progress=progress
    )
    check_fit(fit)
    if nproc > 1 and not launched_by_torchrun():
        raise typer.Exit(relaunch_with_torchrun(nproc, sys.argv[1:]))
    ranks = init_from_env(resolve_device(device))
    try:
        data = load_ratings(dataset, ratings)
        checkpoint = train_rbm_checkpoint(data, config, options, fit=fit)
    finally:
        shutdown()
    if not ranks.is_main:
        return
    checkpoint.extra["device"] = str(options.torch_device)
    checkpoint.extra["processes"] = ranks.size
    save_checkpoint(checkpoint, out)
    print_json(
        {
            "checkpoint": str(out),
            "model_type": "rbm",
            **checkpoint.metrics,
            **fit_summary(checkpoint.extra),
        }
    )
