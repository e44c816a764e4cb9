"""Shared CLI plumbing: settings, loading the configured data set, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from app.core.config import Settings, get_settings
from ml.checkpoint import CheckpointError
from ml.data.errors import DataError
from ml.data.fetch import load_dataset
from ml.data.movielens import load_ratings_path
from ml.data.schema import RatingsDataset

# Failures a user can cause and fix; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (DataError, CheckpointError, FileNotFoundError)


class CLIError(Exception):
    """An error whose message is the whole story; printed without a traceback."""


def fail(message: str) -> None:
    raise CLIError(message)


def run_cli(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except (CLIError, *USER_ERRORS, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


def settings() -> Settings:
    return get_settings()


def load_ratings(dataset: str | None, ratings: Path | None) -> RatingsDataset:
    """The ratings a command works on: ``--ratings PATH`` if given, else the named data set."""
    if ratings is not None:
        return load_ratings_path(ratings)
    s = settings()
    name = dataset or s.dataset
    return load_dataset(name, data_dir=s.data_dir, local_dir=s.dataset_path, online=s.online)


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))
