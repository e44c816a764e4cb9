"""The common schemas every loader produces, whatever the source format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "year", "genres")


@dataclass(frozen=True)
class RatingsDataset:
    """Ratings plus whatever item and user metadata the source carries."""

    name: str
    ratings: pd.DataFrame  # user_id int64, item_id int64, rating float32, timestamp int64
    items: pd.DataFrame  # item_id int64, title str, year Int64 (nullable), genres list[str]
    users: pd.DataFrame | None = None  # user_id int64 plus demographic columns, when known
    source: str = "unknown"  # which route the files came from (local, cache, grouplens, wheel)

    @property
    def sha256(self) -> str:
        return ratings_sha256(self.ratings)

    def stats(self) -> dict[str, int]:
        return {
            "ratings": len(self.ratings),
            "users": int(self.ratings["user_id"].nunique()),
            "items": int(self.ratings["item_id"].nunique()),
        }


def normalise_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast to the ratings schema, sorted by (user_id, item_id); duplicates keep the latest."""
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(np.int64),
            "item_id": frame["item_id"].astype(np.int64),
            "rating": frame["rating"].astype(np.float32),
            "timestamp": (
                frame["timestamp"].astype(np.int64)
                if "timestamp" in frame
                else np.zeros(len(frame), dtype=np.int64)
            ),
        }
    )
    out = out.sort_values(["user_id", "item_id", "timestamp"], kind="stable")
    out = out.drop_duplicates(["user_id", "item_id"], keep="last")
    return out.reset_index(drop=True)


def empty_items(item_ids: np.ndarray) -> pd.DataFrame:
    """Item table for sources without metadata: the id as title, no year, no genres."""
    ids = np.unique(item_ids).astype(np.int64)
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"item {i}" for i in ids],
            "year": pd.array([pd.NA] * len(ids), dtype="Int64"),
            "genres": [[] for _ in ids],
        }
    )


def ratings_sha256(ratings: pd.DataFrame) -> str:
    """A checksum of the ratings' content, the same whichever route or format they came from."""
    canonical = ratings.sort_values(["user_id", "item_id"], kind="stable")
    digest = hashlib.sha256()
    for column, dtype in (("user_id", "<i8"), ("item_id", "<i8"), ("rating", "<f4")):
        digest.update(np.ascontiguousarray(canonical[column].to_numpy(dtype=dtype)).tobytes())
    return digest.hexdigest()
