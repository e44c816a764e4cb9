"""Items: search and pages of the catalogue, metadata, and nearest neighbours in a model's
item-embedding space."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import CatalogDep, MetricsDep, RegistryDep, SessionDep
from app.crud.errors import UnknownItemError
from app.crud.items import search_items
from app.schemas.common import ERROR_RESPONSES
from app.schemas.item import ItemPublic, ItemsPage, ScoredItem, SimilarItemsPublic
from app.services.catalog import ItemInfo
from app.services.recommendations import similar_items

router = APIRouter(prefix="/v1/items", tags=["items"], responses=ERROR_RESPONSES)

ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Raw item id.")]


def _public(info: ItemInfo) -> ItemPublic:
    return ItemPublic(id=info.id, title=info.title, year=info.year, genres=list(info.genres))


@router.get("", response_model=ItemsPage)
def search(
    session: SessionDep,
    catalog: CatalogDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Part of the title (any case).")
    ] = None,
    genre: Annotated[str | None, Query(max_length=64, description="Only this genre.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip.")] = 0,
) -> ItemsPage:
    """Search the catalogue by title and genre, a page at a time; titles starting with ``q``
    come first, then alphabetical order."""
    rows, total = search_items(session=session, q=q, genre=genre, limit=limit, offset=offset)
    return ItemsPage(
        items=[ItemPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
        q=q or None,
        genre=genre or None,
        genres=list(catalog.genres()),
    )


@router.get("/{item_id}", response_model=ItemPublic)
def read(catalog: CatalogDep, item_id: ItemId) -> ItemPublic:
    """Title, year and genres of an item."""
    info = catalog.get(item_id)
    if info is None:
        raise UnknownItemError([item_id])
    return _public(info)


@router.get("/{item_id}/similar", response_model=SimilarItemsPublic)
def similar(
    registry: RegistryDep,
    catalog: CatalogDep,
    metrics: MetricsDep,
    item_id: ItemId,
    k: Annotated[int, Query(ge=1, le=500)] = 10,
    model: Annotated[
        str | None,
        Query(max_length=64, description="A model with item embeddings; default: the best."),
    ] = None,
) -> SimilarItemsPublic:
    """The k items closest to this one (cosine similarity of the model's item embeddings)."""
    entry, info, neighbours = similar_items(
        registry=registry, catalog=catalog, metrics=metrics, item_id=item_id, k=k, model=model
    )
    return SimilarItemsPublic(
        item=_public(info),
        model=entry.model_type,
        model_version=entry.version,
        similar=[ScoredItem.of(n.item, n.score) for n in neighbours],
    )
