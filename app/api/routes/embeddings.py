"""Embeddings reduced to 2 or 3 dimensions: items (from the model) or users (one page, folded in
from their ratings), as JSON points or a PNG map coloured by main genre.

A plain ``def`` route (FastAPI's threadpool): the work lives in ``app.services.embeddings``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import CatalogDep, MetricsDep, RegistryDep, SessionDep
from app.schemas.common import ERROR_RESPONSES
from app.schemas.embedding import EmbeddingPoint, EmbeddingsPublic
from app.services.embeddings import MAX_USERS, embeddings_map_png, reduced_embeddings

router = APIRouter(prefix="/v1/embeddings", tags=["embeddings"], responses=ERROR_RESPONSES)


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
    found = reduced_embeddings(
        registry=registry,
        catalog=catalog,
        session=session,
        metrics=metrics,
        kind=kind,
        model=model,
        dims=dims,
        method=method,
        limit=limit,
        offset=offset,
    )
    if format == "png":
        headers = {"X-Model-Version": found.entry.version}
        return Response(embeddings_map_png(found), media_type="image/png", headers=headers)
    info = found.items
    return EmbeddingsPublic(
        model=found.entry.model_type,
        model_version=found.entry.version,
        kind=kind,
        method=method,
        dims=dims,
        points=[
            EmbeddingPoint(
                id=int(i),
                coords=[round(float(c), 6) for c in row],
                title=info[i].title if i in info else None,
                genres=list(info[i].genres) if i in info else None,
            )
            for i, row in zip(found.ids.tolist(), found.coords, strict=True)
        ],
    )
