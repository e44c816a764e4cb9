"""``deeprec data``: fetch, load into the database, and describe data sets."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import load_ratings, print_json, settings
from ml.data.fetch import fetch as fetch_dataset

app = typer.Typer(help="Fetch, load and describe data sets.", no_args_is_help=True)


@app.command()
def fetch(
    name: str = typer.Argument("ml-100k", help="ml-100k, ml-1m, ml-latest-small, ml-25m"),
) -> None:
    """Fetch a data set into the cache and say which route was used."""
    s = settings()
    result = fetch_dataset(name, data_dir=s.data_dir, local_dir=s.dataset_path, online=s.online)
    typer.echo(f"{name}: {result.path} (via {result.route})")


@app.command()
def stats(
    name: str = typer.Argument("ml-100k"),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead of NAME."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Count ratings, users and items."""
    dataset = load_ratings(name, ratings)
    counts = dataset.stats()
    if as_json:
        print_json(counts)
    else:
        typer.echo(
            f"{dataset.name} (via {dataset.source}): "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
        )


@app.command()
def load(
    name: str = typer.Argument("ml-100k", help="ml-100k, ml-1m, ml-latest-small, ml-25m"),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead of NAME."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Bulk-load users, items and ratings into the database; re-running adds no duplicates."""
    from app.cli.db_load import load_into_database

    load_into_database(load_ratings(name, ratings), progress=progress)
