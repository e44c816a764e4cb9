"""``deeprec plot``: pictures (embedding maps, reconstructions, samples), one command per kind."""

from __future__ import annotations

import typer

app = typer.Typer(help="Draw pictures from trained models.", no_args_is_help=True)
