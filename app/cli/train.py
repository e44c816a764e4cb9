"""``deeprec train MODEL``: one command per model family, each in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train a model and write a checkpoint.", no_args_is_help=True)
