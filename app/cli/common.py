"""Shared CLI plumbing: settings, loading the configured data set, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from app.core.config import Settings, get_settings
from app.core.params import ParamsError, override_config
from ml.data.errors import DataError

if TYPE_CHECKING:
    from ml.checkpoint import Checkpoint
    from ml.data.digits import ImageDataset
    from ml.data.schema import RatingsDataset


class CLIError(Exception):
    """An error whose message is the whole story; printed without a traceback."""


def fail(message: str) -> None:
    raise CLIError(message)


def user_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can cause and fix; anything else is a bug and keeps its traceback."""
    from ml.checkpoint import CheckpointError  # imported late: it pulls in torch

    return (CLIError, DataError, CheckpointError, FileNotFoundError, ValueError)


def out_of_memory(exc: BaseException) -> bool:
    """Resource exhaustion: ``MemoryError``, torch's ``OutOfMemoryError`` (a device ran out),
    or torch's CPU allocator refusing a tensor (a ``RuntimeError`` saying so)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")  # only if the command loaded it: never import it here
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if isinstance(oom, type) and isinstance(exc, oom):
        return True
    message = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in message or "out of memory" in message.lower()
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


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
    except BaseException as exc:
        if out_of_memory(exc):  # one line, not a traceback: it is the machine, not a bug
            typer.echo(
                f"error: out of memory ({_first_line(exc)}); use a smaller model or batch "
                "(--params-json), fewer ratings, or a machine with more memory",
                err=True,
            )
            sys.exit(3)
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


def load_image_data(dataset: str, images_path: Path | None) -> ImageDataset:
    """The images an image command works on: the built-in digits or MNIST."""
    from ml.data.digits import load_images

    if dataset not in ("digits", "mnist"):
        fail(f"unknown image data set {dataset!r}; choose digits or mnist")
    return load_images(dataset, images_path)


FIT_HELP = (
    "all: measure on the protocol's held-out split, then fit the served model on every rating "
    "(costs a second training); train: serve the model fitted on the train fold only."
)


def fit_option() -> Any:
    """``--fit all|train``, shared by every ratings model's train command (``ml.training.fit``)."""
    return typer.Option("all", "--fit", help=FIT_HELP)


def fit_summary(extra: dict[str, Any]) -> dict[str, Any]:
    """What a train command prints about the served fit, from the manifest's ``extra``."""
    keys = ("fit", "n_ratings_fitted", "fit_all_seconds")
    return {key: extra[key] for key in keys if key in extra}


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def save_and_report(checkpoint: Checkpoint, out: Path, *, overwrite: bool = False) -> None:
    """Write the checkpoint and print what a train command prints: where, what, its figures."""
    from ml.checkpoint import save_checkpoint

    path = save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json(
        {
            "checkpoint": str(path),
            "model_type": checkpoint.model_type,
            **checkpoint.metrics,
            **fit_summary(checkpoint.extra),
        }
    )


def apply_params(config: Any, params_json: str | None, **flags: Any) -> Any:
    """A config dataclass with overrides: ``--params-json '{"hidden": 200}'`` then explicit flags.

    Unknown keys and values of the wrong type are refused with a message naming them, so the
    admin retrain endpoint can pass user-supplied params straight through.
    """
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
    try:
        return override_config(config, overrides)
    except ParamsError as exc:
        raise CLIError(str(exc)) from exc
