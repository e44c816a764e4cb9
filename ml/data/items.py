"""Item metadata files: the catalogue (with free text) as one CSV, for training content models.

Layout: a header ``item_id,title,year,genres,description``; genres ``|``-separated; year and
description may be empty. The service writes it from the database for a retrain
(``deeprec train content --items FILE``); the ratings travel in their own file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml.data.errors import DataError

ITEM_FILE_COLUMNS = ("item_id", "title", "year", "genres", "description")


def write_items_csv(items: pd.DataFrame, path: str | Path) -> None:
    """Write an items frame (genres as lists) in the layout above."""
    out = pd.DataFrame(
        {
            "item_id": items["item_id"].astype(np.int64),
            "title": items["title"].fillna(""),
            "year": items["year"].astype("Int64"),
            "genres": ["|".join(g) for g in items["genres"]],
            "description": (
                items["description"] if "description" in items else pd.Series([None] * len(items))
            ),
        }
    )
    out.to_csv(path, index=False)


def read_items_csv(path: str | Path) -> pd.DataFrame:
    """The items frame of ``ml.data.schema`` plus ``description``; :class:`DataError` if bad."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such items file")
    try:
        frame = pd.read_csv(path, dtype={"title": str, "genres": str, "description": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable items CSV ({exc})") from exc
    missing = [c for c in ("item_id", "title") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {list(ITEM_FILE_COLUMNS)}")
    try:
        ids = frame["item_id"].astype(np.int64)
        years = (
            pd.to_numeric(frame["year"], errors="raise").astype("Int64")
            if "year" in frame
            else pd.array([pd.NA] * len(frame), dtype="Int64")
        )
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: item_id and year must be integers ({exc})") from exc
    genres = frame["genres"] if "genres" in frame else pd.Series([""] * len(frame))
    descriptions = frame.get("description")
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": frame["title"].fillna("").astype(str),
            "year": years,
            "genres": [
                [g for g in str(v).split("|") if g] if isinstance(v, str) else [] for v in genres
            ],
            "description": (
                [v if isinstance(v, str) else None for v in descriptions]
                if descriptions is not None
                else [None] * len(frame)
            ),
        }
    )
