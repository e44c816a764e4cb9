"""Shared CLI plumbing: settings, loading the configured data set, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from app.core.config import Settings, get_settings
from ml.data.errors import DataError

if TYPE_CHECKING:
    from ml.data.schema import RatingsDataset


class CLIError(Exception):
    """An error whose message is the whole story; printed without a traceback."""


def fail(message: str) -> None:
    raise CLIError(message)


def user_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can cause and fix; anything else is a bug and keeps its traceback."""
    from ml.checkpoint import CheckpointError  # imported late: it pulls in torch

    return (CLIError, DataError, CheckpointError, FileNotFoundError, ValueError)


def run_cli(app: typer.Typer) -> None:
    from app.core.signals import EXIT_CODE, Terminated, raise_on_sigterm

    try:
        # A stop (docker stop, kill) runs the clean-up: no job left `running`, no worker left.
        with raise_on_sigterm():
            app(standalone_mode=True)
    except SystemExit:
        raise
    except Terminated as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CODE)
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


def settings() -> Settings:
    return get_settings()


def load_ratings(dataset: str | None, ratings: Path | None) -> RatingsDataset:
    """The ratings a command works on: ``--ratings PATH`` if given, else the named data set."""
    from ml.data.fetch import load_dataset
    from ml.data.movielens import load_ratings_path

    if ratings is not None:
        return load_ratings_path(ratings)
    s = settings()
    name = dataset or s.dataset
    return load_dataset(name, data_dir=s.data_dir, local_dir=s.dataset_path, online=s.online)


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def apply_params(config: Any, params_json: str | None, **flags: Any) -> Any:
    """A config dataclass with overrides: ``--params-json '{"hidden": 200}'`` then explicit flags.

    Unknown keys and values of the wrong type are refused with a message naming them, so the
    admin retrain endpoint can pass user-supplied params straight through.
    """
    import dataclasses

    overrides: dict[str, Any] = {}
    if params_json:
        try:
            parsed = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--params-json is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise CLIError("--params-json must be a JSON object")
        overrides.update(parsed)
    overrides.update({k: v for k, v in flags.items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise CLIError(f"unknown parameter(s) {unknown}; known: {sorted(fields)}")
    for name, value in overrides.items():
        current = getattr(config, name)
        if isinstance(current, bool) and not isinstance(value, bool):
            raise CLIError(f"parameter {name!r} must be true or false, got {value!r}")
        if isinstance(current, int | float) and not isinstance(current, bool):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CLIError(f"parameter {name!r} must be a number, got {value!r}")
            if (
                isinstance(current, int)
                and not isinstance(current, bool)
                and float(value) != int(value)
            ):
                raise CLIError(f"parameter {name!r} must be an integer, got {value!r}")
            overrides[name] = type(current)(value)
    try:
        return dataclasses.replace(config, **overrides)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"invalid parameters: {exc}") from exc
