"""``deeprec train content`` and ``deeprec train hybrid``: the content family's checkpoints.

Both read item metadata (title, year, genres, free text): the data set's own items table, or
``--items FILE`` (the CSV the service exports from its database for a retrain,
``ml.data.items``). ``content`` ranks by content alone; ``hybrid`` adds EASE and the map from
content codes to EASE's item columns, so items without ratings are scored like rated ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import typer

from app.cli.common import apply_params, fail, load_ratings, print_json
from app.cli.train import app as train_app
from ml.checkpoint import Checkpoint, save_checkpoint
from ml.data.items import read_items_csv
from ml.data.schema import RatingsDataset
from ml.data.splits import PROTOCOL_SEED
from ml.device import resolve_device
from ml.models.content import ContentConfig
from ml.training.base import TrainingOptions
from ml.training.content import train_content, train_hybrid

DATASET = typer.Option("ml-100k", help="Data set name (ignored when --ratings is given).")
RATINGS = typer.Option(None, help="A ratings file or MovieLens folder to train on instead.")
ITEMS = typer.Option(
    None, help="Item metadata CSV (item_id,title,year,genres,description); default: the data set's."
)
OUT = typer.Option(..., help="Checkpoint folder to write (must not exist).")
SEED = typer.Option(PROTOCOL_SEED, help="Seed of the run's generator.")
EPOCHS = typer.Option(None, help="Epochs of the content autoencoder (default: the chosen ones).")
DEVICE = typer.Option("auto", help="auto | cpu | cuda | cuda:N.")
PARAMS = typer.Option(
    None, "--params-json", help='ContentConfig overrides as JSON, e.g. {"code_dim": 16}.'
)


TrainContent = Callable[[RatingsDataset, ContentConfig, TrainingOptions], Checkpoint]


def _register(name: str, train: TrainContent, summary: str) -> None:
    """``deeprec train NAME``: the same options and steps for both members of the family."""

    def command(
        dataset: str = DATASET,
        ratings: Path | None = RATINGS,
        items: Path | None = ITEMS,
        out: Path = OUT,
        seed: int = SEED,
        epochs: int | None = EPOCHS,
        device: str = DEVICE,
        params_json: str | None = PARAMS,
    ) -> None:
        config = apply_params(ContentConfig(), params_json, epochs=epochs)
        if config.featurizer or config.n_features:
            fail("featurizer and n_features are learned from the items, not parameters")
        if out.exists():
            fail(f"{out}: already exists; choose a new --out folder")
        resolve_device(device)
        data = load_ratings(dataset, ratings)
        if items is not None:
            data = dataclasses.replace(data, items=read_items_csv(items))
        options = TrainingOptions(device=device, seed=seed, epochs=config.epochs, progress=False)
        checkpoint = train(data, config, options)
        checkpoint.extra["device"] = str(options.torch_device)
        save_checkpoint(checkpoint, out)
        metrics = checkpoint.metrics
        print_json({"checkpoint": str(out), "model_type": checkpoint.model_type, **metrics})

    command.__name__ = name
    command.__doc__ = summary
    train_app.command(name)(command)


_register(
    "content",
    train_content,
    "Content-only: a denoising autoencoder over item metadata; users ranked by their profile.",
)
_register(
    "hybrid",
    train_hybrid,
    "Content + EASE: cold items get an EASE column predicted from their content codes.",
)
