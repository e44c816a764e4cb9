"""Embeddings reduced to 2 or 3 dimensions: items (from the model) or users (folded in from their
ratings in the database), and the PNG map of them coloured by main genre.

CPU-bound and synchronous: the route calls it from FastAPI's threadpool, so the reduction, and for
``method=autoencoder`` its small training run, never block the event loop. Item reductions are
cached per model version (a few, least recently used first out).

Users are PAGED (``offset``, ``limit``), and a request reads the ratings of its page's users only,
never the whole ratings table: the work and memory of one request are bounded by the page,
whatever the size of the database, so the endpoint can stay public (the Studio draws the map; it
shows ids and 2-D points, nothing personal). Caching was the other option; it would serve maps
that miss the latest ratings, and the first request of each model version would still read
everything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session

from app.crud.user_pages import rated_users_page
from app.services.catalog import ItemCatalog, ItemInfo
from app.services.errors import InvalidRequestError
from app.services.metrics import ServiceMetrics
from app.services.registry import LoadedModel, ModelRegistry
from ml.inference import IMAGE_MODEL_TYPES, Recommender
from ml.inference.embeddings import embedding_map_png, main_genres, reduce

Kind = Literal["users", "items"]
Method = Literal["pca", "autoencoder"]

MAX_USERS = 1000  # users per page
_CACHE_SIZE = 16


@dataclass(frozen=True)
class ReducedEmbeddings:
    entry: LoadedModel  # the model they came from
    kind: Kind
    method: Method
    dims: int
    ids: np.ndarray  # (N,) raw user or item ids
    coords: np.ndarray  # (N, dims)
    items: Mapping[int, ItemInfo]  # the items' metadata (empty for users)


class _ReductionCache:
    """Item reductions by (model version, method, dims): a small thread-safe LRU."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def reduce(
        self, key: tuple[Any, ...], vectors: np.ndarray, dims: int, method: str
    ) -> np.ndarray:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        coords = reduce(vectors, dims, method)  # outside the lock: other keys need not wait
        with self._lock:
            self._entries[key] = coords
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return coords


_item_reductions = _ReductionCache(_CACHE_SIZE)


def _recommender(registry: ModelRegistry, model: str) -> tuple[LoadedModel, Recommender]:
    if model in IMAGE_MODEL_TYPES:  # the same answer whether such a model is loaded or not
        raise InvalidRequestError(f"model {model!r} does not serve users and items")
    entry = registry.get(model)
    if not isinstance(entry.model, Recommender):
        raise InvalidRequestError(f"model {model!r} does not serve users and items")
    return entry, entry.model


def reduced_embeddings(
    *,
    registry: ModelRegistry,
    catalog: ItemCatalog,
    session: Session,
    metrics: ServiceMetrics,
    kind: Kind,
    model: str,
    dims: int,
    method: Method,
    limit: int,
    offset: int,
) -> ReducedEmbeddings:
    """``model``'s embeddings of every item, or of one page of rated users, reduced to ``dims``
    dimensions by ``method``."""
    entry, recommender = _recommender(registry, model)
    if kind == "items":
        if recommender.item_embeddings is None:
            raise InvalidRequestError(f"model {model!r} has no item embeddings")
        ids = recommender.items.ids
        vectors = np.asarray(recommender.item_embeddings(), dtype=np.float64)  # (I, d)
        key = (entry.model_type, entry.version, entry.checkpoint_path, method, dims)
        with metrics.time_inference(entry.model_type, f"embeddings-{method}"):
            try:
                coords = _item_reductions.reduce(key, vectors, dims, method)
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from exc
        return ReducedEmbeddings(
            entry, kind, method, dims, ids, coords, catalog.get_many(ids.tolist())
        )
    if recommender.user_embeddings is None:
        raise InvalidRequestError(f"model {model!r} has no user embeddings")
    users, maps = rated_users_page(session=session, offset=offset, limit=limit)
    if len(users) < dims + 1:
        raise InvalidRequestError(
            f"need at least {dims + 1} users with ratings on this page, found {len(users)}"
        )
    with metrics.time_inference(entry.model_type, f"embeddings-{method}"):
        vectors = recommender.user_embeddings(recommender.rows_from_ratings(maps))  # (U, d)
        try:
            coords = reduce(np.asarray(vectors, dtype=np.float64), dims, method)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
    return ReducedEmbeddings(
        entry, kind, method, dims, np.asarray(users, dtype=np.int64), coords, {}
    )


def embeddings_map_png(found: ReducedEmbeddings) -> bytes:
    """The points as a PNG scatter: items coloured by their main genre, users in one colour."""
    ids = found.ids.tolist()
    if found.kind == "items":
        genres = [list(found.items[i].genres) if i in found.items else [] for i in ids]
        groups = main_genres(genres)
    else:
        groups = ["users"] * len(ids)
    title = f"{found.entry.model_type} {found.kind}, {found.method} to {found.dims}-D"
    return embedding_map_png(found.coords, groups, title=title)
