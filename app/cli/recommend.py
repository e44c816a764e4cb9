"""``deeprec recommend``: batch export of top-k recommendations as CSV."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np
import typer
from tqdm import tqdm

from app.cli.common import fail, load_ratings, settings
from ml.data.splits import PROTOCOL_SEED, protocol_split, to_csr
from ml.device import resolve_device
from ml.evaluation.evaluate import top_k
from ml.inference import load_recommender


def recommend(
    checkpoint: Path = typer.Option(..., help="Checkpoint folder."),
    users: str = typer.Option("all", help="'all' or comma-separated user ids."),
    k: int = typer.Option(10, help="Recommendations per user."),
    out: Path = typer.Option(..., help="CSV file to write: user_id,rank,item_id,score."),
    dataset: str = typer.Option("ml-100k", help="Data set whose ratings are the users' history."),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead."),
    full_history: bool = typer.Option(
        False, help="Use all ratings as history (default: the protocol's train fold)."
    ),
    batch_size: int = typer.Option(512, help="Users scored per batch."),
) -> None:
    """Write top-k recommendations for many users; items seen in the history are excluded."""
    if k <= 0:
        fail(f"k must be positive, got {k}")
    model = load_recommender(checkpoint, resolve_device(settings().device))
    data = load_ratings(dataset, ratings)
    history = (
        data.ratings
        if full_history
        else protocol_split(data.ratings, seed=PROTOCOL_SEED).train_frame
    )
    history = history[history["item_id"].isin(model.items.ids)]
    known_users = model.users
    if users == "all":
        raw_users = known_users.ids
    else:
        try:
            raw_users = np.array([int(u) for u in users.split(",") if u.strip()], dtype=np.int64)
        except ValueError:
            fail(f"--users must be 'all' or comma-separated integer ids, got {users!r}")
        unknown = [int(u) for u in raw_users if u not in known_users]
        if unknown:
            fail(f"unknown user id(s): {unknown[:10]}")
    matrix = to_csr(history[history["user_id"].isin(known_users.ids)], known_users, model.items)
    rows = known_users.encode(raw_users)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["user_id", "rank", "item_id", "score"])
            for start in tqdm(range(0, len(rows), batch_size), desc="recommend", unit="batch"):
                batch = rows[start : start + batch_size]
                seen = matrix[batch]
                scores = model.scorer.score(seen)
                ranked = top_k(scores, k, exclude=seen)
                for r, user_row in enumerate(batch):
                    for rank, item in enumerate(ranked[r], start=1):
                        writer.writerow(
                            [
                                int(known_users.ids[user_row]),
                                rank,
                                int(model.items.ids[item]),
                                f"{scores[r, item]:.6g}",
                            ]
                        )
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    typer.echo(f"wrote {len(rows) * k} rows for {len(rows)} users to {out}")
