"""Embeddings reduced to 2 or 3 dimensions: items (from the model) or users (folded in from their
ratings in the database), as JSON points or a PNG map coloured by main genre.

The route is a plain ``def`` (FastAPI's threadpool): the reduction, and for ``method=autoencoder``
its small training run, never block the event loop. Item reductions are cached per model version.

Users are PAGED (``offset``, ``limit`` of at most ``MAX_USERS``), and a request reads the ratings of
its page's users only, never the whole ratings table: the work and memory of one request are
bounded by the page, whatever the size of the database, so the endpoint can stay public (the
Studio draws the map; it shows ids and 2-D points, nothing personal). Caching was the other
option; it would serve maps that miss the latest ratings, and the first request of each model
version would still read everything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from app.api.deps import CatalogDep, MetricsDep, RegistryDep, SessionDep, loaded_model
from app.crud.user_pages import rated_users_page
from app.schemas.common import ERROR_RESPONSES
from ml.inference import IMAGE_MODEL_TYPES, Recommender
from ml.inference.embeddings import embedding_map_png, main_genres, reduce

router = APIRouter(prefix="/v1/embeddings", tags=["embeddings"], responses=ERROR_RESPONSES)

MAX_USERS = 1000
_CACHE_SIZE = 16
_cache: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


class EmbeddingPoint(BaseModel):
    id: int
    coords: list[float]
    title: str | None = None
    genres: list[str] | None = None


class EmbeddingsPublic(BaseModel):
    model: str
    model_version: str
    kind: Literal["users", "items"]
    method: Literal["pca", "autoencoder"]
    dims: int
    points: list[EmbeddingPoint] = Field(description="One point per user or item.")


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _reduce_cached(key: tuple[Any, ...], vectors: np.ndarray, dims: int, method: str) -> np.ndarray:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    coords = reduce(vectors, dims, method)
    with _cache_lock:
        _cache[key] = coords
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return coords


@router.get(
    "/{kind}",
    response_model=EmbeddingsPublic,
    responses={200: {"content": {"image/png": {}}, "description": "JSON points or a PNG map."}},
)
def embeddings(
    kind: Literal["users", "items"],
    registry: RegistryDep,
    catalog: CatalogDep,
    session: SessionDep,
    metrics: MetricsDep,
    model: Annotated[str, Query(max_length=64, description="A model with embeddings.")] = (
        "autoencoder"
    ),
    dims: Annotated[int, Query(ge=2, le=3, description="2 or 3 dimensions.")] = 2,
    method: Annotated[
        Literal["pca", "autoencoder"], Query(description="pca, or an autoencoder bottleneck.")
    ] = "pca",
    format: Annotated[Literal["json", "png"], Query(description="json or png.")] = "json",
    limit: Annotated[
        int, Query(ge=1, le=MAX_USERS, description="Users: at most this many (one page).")
    ] = 500,
    offset: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Users: skip this many (by id) first.")
    ] = 0,
) -> Any:
    """Users' or items' embeddings of ``model``, reduced to ``dims`` dimensions by ``method``."""
    if model in IMAGE_MODEL_TYPES:  # the same answer whether such a model is loaded or not
        raise _unprocessable(f"model {model!r} does not serve users and items")
    entry = loaded_model(registry, model)
    recommender = entry.model
    if not isinstance(recommender, Recommender):
        raise _unprocessable(f"model {model!r} does not serve users and items")
    if kind == "items":
        if recommender.item_embeddings is None:
            raise _unprocessable(f"model {model!r} has no item embeddings")
        ids = recommender.items.ids
        vectors = np.asarray(recommender.item_embeddings(), dtype=np.float64)  # (I, d)
        key = (entry.model_type, entry.version, entry.checkpoint_path, method, dims)
        with metrics.time_inference(entry.model_type, f"embeddings-{method}"):
            try:
                coords = _reduce_cached(key, vectors, dims, method)
            except ValueError as exc:
                raise _unprocessable(str(exc)) from exc
    else:
        if recommender.user_embeddings is None:
            raise _unprocessable(f"model {model!r} has no user embeddings")
        users, maps = rated_users_page(session=session, offset=offset, limit=limit)
        if len(users) < dims + 1:
            raise _unprocessable(
                f"need at least {dims + 1} users with ratings on this page, found {len(users)}"
            )
        ids = np.asarray(users, dtype=np.int64)
        with metrics.time_inference(entry.model_type, f"embeddings-{method}"):
            vectors = recommender.user_embeddings(recommender.rows_from_ratings(maps))  # (U, d)
            try:
                coords = reduce(np.asarray(vectors, dtype=np.float64), dims, method)
            except ValueError as exc:
                raise _unprocessable(str(exc)) from exc
    info = catalog.get_many(ids.tolist()) if kind == "items" else {}
    if format == "png":
        genres = [list(info[i].genres) if i in info else [] for i in ids.tolist()]
        groups = main_genres(genres) if kind == "items" else ["users"] * len(ids)
        png = embedding_map_png(
            coords, groups, title=f"{entry.model_type} {kind}, {method} to {dims}-D"
        )
        return Response(png, media_type="image/png", headers={"X-Model-Version": entry.version})
    points = [
        EmbeddingPoint(
            id=int(i),
            coords=[round(float(c), 6) for c in row],
            title=info[i].title if i in info else None,
            genres=list(info[i].genres) if i in info else None,
        )
        for i, row in zip(ids.tolist(), coords, strict=True)
    ]
    return EmbeddingsPublic(
        model=entry.model_type,
        model_version=entry.version,
        kind=kind,
        method=method,
        dims=dims,
        points=points,
    )
