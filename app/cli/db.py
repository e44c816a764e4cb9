"""``deeprec db``: schema migrations (filled in by the database layer)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Database migrations.", no_args_is_help=True)
