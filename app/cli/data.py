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
    chunk_rows: int = typer.Option(
        1_000_000, min=1, help="Ratings read and written at a time (bounds the memory)."
    ),
) -> None:
    """Stream users, items and ratings into the database in one transaction (a failed or killed
    load leaves nothing); re-running adds no duplicates."""
    from app.cli.db_load import load_into_database
    from ml.data.movielens import folder_files, ratings_files

    if ratings is not None:
        files = ratings_files(ratings)
    else:
        s = settings()
        found = fetch_dataset(name, data_dir=s.data_dir, local_dir=s.dataset_path, online=s.online)
        files = folder_files(found.path, name, source=found.route)
    load_into_database(files, progress=progress, chunk_rows=chunk_rows)


@app.command()
def synth(
    shape: str = typer.Argument(..., help="ml-1m, ml-10m or ml-25m"),
    out: Path = typer.Option(..., help="Folder to write the MovieLens-format files into."),
    seed: int = typer.Option(0, help="The same seed and shape always give the same files."),
    scale: float = typer.Option(
        1.0, help="Multiply users, items and ratings by this (0 < scale <= 1), for small runs."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Write seeded synthetic ratings with a MovieLens release's shape (Zipf items, log-normal
    users, biases + rank-8 taste + noise) in that release's file format."""
    from tqdm import tqdm

    from ml.data.synthetic import shape_named, write_dataset

    chosen = shape_named(shape).scaled(scale)
    with tqdm(
        total=chosen.ratings, desc=f"synth {chosen.name}", unit="rating", unit_scale=True,
        disable=not progress,
    ) as bar:  # fmt: skip
        path = write_dataset(chosen, out, seed=seed, progress=bar.update)
    typer.echo(
        f"{chosen.name}: {chosen.users} users, {chosen.items} items, {chosen.ratings} ratings "
        f"(seed {seed}) -> {path}"
    )
