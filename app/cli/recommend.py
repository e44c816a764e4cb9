"""``deeprec recommend``: batch export of top-k recommendations as CSV, folded in from the data."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import typer
from tqdm import tqdm

from app.cli.common import fail, load_ratings, settings
from ml.data.splits import PROTOCOL_SEED, protocol_split, to_csr
from ml.data.vocab import IdVocab
from ml.device import resolve_device
from ml.inference import Recommender, best_unseen, load_recommender


def recommend(
    checkpoint: Path = typer.Option(..., help="Checkpoint folder."),
    users: str = typer.Option("all", help="'all' (every user in the data) or comma-separated ids."),
    k: int = typer.Option(10, help="Recommendations per user."),
    out: Path = typer.Option(..., help="CSV file to write: user_id,rank,item_id,score."),
    dataset: str = typer.Option("ml-100k", help="Data set whose ratings are the users' history."),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead."),
    protocol_history: bool = typer.Option(
        False,
        "--protocol-history",
        help="Only the protocol's train fold is the history (to reproduce an evaluation; items "
        "of the test fold may then be recommended). Default: every rating in the data.",
    ),
    full_history: bool = typer.Option(
        True, "--full-history", hidden=True, help="Accepted for compatibility: the default."
    ),
    batch_size: int = typer.Option(512, help="Users scored per batch."),
) -> None:
    """Write top-k recommendations for many users, folded in from their ratings in the data.

    Every user with ratings in the data is answered, known to the model or not (a new user is
    folded in as the service does); an item the user rated is never recommended.
    """
    if k <= 0:
        fail(f"k must be positive, got {k}")
    if batch_size <= 0:
        fail(f"batch size must be positive, got {batch_size}")
    model = load_recommender(checkpoint, resolve_device(settings().device))
    data = load_ratings(dataset, ratings)
    history = (
        protocol_split(data.ratings, seed=PROTOCOL_SEED).train_frame
        if protocol_history
        else data.ratings
    )
    present = IdVocab(history["user_id"].to_numpy())
    if users == "all":
        wanted = present
    else:
        try:
            raw_users = np.array([int(u) for u in users.split(",") if u.strip()], dtype=np.int64)
        except ValueError:
            fail(f"--users must be 'all' or comma-separated integer ids, got {users!r}")
        unknown = [int(u) for u in raw_users if u not in present and u not in model.users]
        if unknown:
            fail(f"unknown user id(s): {unknown[:10]} (no ratings in the data)")
        wanted = IdVocab(raw_users)
    # Items the model never saw cannot be scored: they drop out of the fold-in, as in serving.
    matrix = to_csr(
        history[history["user_id"].isin(wanted.ids) & history["item_id"].isin(model.items.ids)],
        wanted,
        model.items,
    )
    _write_csv(out, model, wanted, matrix, k, batch_size)
    typer.echo(f"wrote {len(wanted) * k} rows for {len(wanted)} users to {out}")


def _write_csv(
    out: Path,
    model: Recommender,
    users: IdVocab,
    matrix: sp.csr_matrix,
    k: int,
    batch_size: int,
) -> None:
    """Score ``matrix`` (U, I) in batches; write each user's top k unseen items atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["user_id", "rank", "item_id", "score"])
            rows = np.arange(len(users))
            for start in tqdm(range(0, len(rows), batch_size), desc="recommend", unit="batch"):
                batch = rows[start : start + batch_size]
                seen = matrix[batch]
                scores = model.scorer.score(seen)
                ranked = best_unseen(np.array(scores, copy=True), k, seen)
                for r, user_row in enumerate(batch):
                    for rank, item in enumerate(ranked[r], start=1):
                        writer.writerow(
                            [
                                int(users.ids[user_row]),
                                rank,
                                int(model.items.ids[item]),
                                f"{scores[r, item]:.6g}",
                            ]
                        )
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
