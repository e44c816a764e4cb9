"""Small factories for database rows (each commits), for the database and API tests."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from app.crud import register_model_version
from app.models import Item, ModelVersion, Rating, TrainingJob, User
from ml.checkpoint import checkpoint_sha256
from ml.data.schema import RatingsDataset, empty_items, normalise_ratings

_ids = itertools.count(10_000)

GENRES = ("Action", "Comedy", "Drama")


def make_user(session: Session, **fields: Any) -> User:
    user = User(**{"id": next(_ids), **fields})
    session.add(user)
    session.commit()
    return user


def make_item(session: Session, **fields: Any) -> Item:
    item_id = fields.pop("id", next(_ids))
    defaults = {"title": f"Movie {item_id}", "year": 1995, "genres": [GENRES[item_id % 3]]}
    item = Item(id=item_id, **{**defaults, **fields})
    session.add(item)
    session.commit()
    return item


def make_rating(session: Session, *, user: User, item: Item, rating: float = 4.0) -> Rating:
    row = Rating(
        user_id=user.id, item_id=item.id, rating=rating, rated_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    session.add(row)
    session.commit()
    return row


def make_model_version(session: Session, **fields: Any) -> ModelVersion:
    defaults: dict[str, Any] = {
        "model_type": "ease",
        "version": f"v{next(_ids)}",
        "checkpoint_path": "/tmp/checkpoints/ease",
        "sha256": "0" * 64,
        "metrics": {"ndcg@10_all": 0.47},
        "params": {"l2": 300.0},
        "is_active": False,
    }
    row = ModelVersion(**{**defaults, **fields})
    session.add(row)
    session.commit()
    return row


def make_training_job(session: Session, **fields: Any) -> TrainingJob:
    row = TrainingJob(**{"model_type": "ease", "params": {}, **fields})
    session.add(row)
    session.commit()
    return row


def ratings_dataset(frame: pd.DataFrame, name: str = "planted") -> RatingsDataset:
    """A data set from a ratings frame (items get placeholder metadata, users none)."""
    ratings = normalise_ratings(frame)
    items = empty_items(ratings["item_id"].to_numpy())
    items["genres"] = [[GENRES[int(i) % 3]] for i in items["item_id"]]
    return RatingsDataset(name=name, ratings=ratings, items=items, source="test")


def activate_checkpoints(session: Session, checkpoints: Mapping[str, Path], version: str) -> None:
    """Register each checkpoint (model type -> folder) as the active version of its type."""
    for model_type, path in checkpoints.items():
        register_model_version(
            session=session,
            model_type=model_type,
            checkpoint_path=str(path),
            sha256=checkpoint_sha256(path),
            version=version,
            activate=True,
        )
