"""Items: search and pages of the catalogue, metadata, nearest neighbours (by ratings or by
content), and creating or editing films (admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from app.api.deps import AdminDep, CatalogDep, MetricsDep, RegistryDep, SessionDep
from app.crud.errors import UnknownItemError
from app.crud.items import search_items
from app.schemas.common import BODY_ERROR_RESPONSES, ERROR_RESPONSES, ErrorPublic
from app.schemas.item import (
    ItemCreate,
    ItemDetail,
    ItemPublic,
    ItemsPage,
    ItemUpdate,
    ScoredItem,
    SimilarItemsPublic,
)
from app.services.catalog import ItemInfo
from app.services.content import add_item, edit_item
from app.services.similar import similar_items

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
    by: Annotated[
        Literal["ratings", "content"],
        Query(
            description="ratings: a collaborative model's item embeddings; content: the content "
            "model's codes of the item metadata (items added since training included)."
        ),
    ] = "ratings",
) -> SimilarItemsPublic:
    """The k items closest to this one (cosine similarity of the model's item embeddings)."""
    found = similar_items(
        registry=registry,
        catalog=catalog,
        metrics=metrics,
        item_id=item_id,
        k=k,
        model=model,
        by=by,
    )
    return SimilarItemsPublic(
        item=_public(found.item),
        model=found.entry.model_type,
        model_version=found.entry.version,
        similar=[ScoredItem.of(n.item, n.score) for n in found.similar],
    )


# ------------------------------------------------------------------ admin: create and edit films
ADMIN_RESPONSES: dict[int | str, dict[str, object]] = {
    **BODY_ERROR_RESPONSES,  # both routes take a JSON body
    401: {"model": ErrorPublic, "description": "No admin token sent."},
    403: {"model": ErrorPublic, "description": "Wrong admin token."},
    503: {"model": ErrorPublic, "description": "Admin is disabled (no token configured)."},
}


def _detail(info: ItemInfo) -> ItemDetail:
    return ItemDetail(
        id=info.id,
        title=info.title,
        year=info.year,
        genres=list(info.genres),
        description=info.description,
    )


@router.post(
    "",
    response_model=ItemDetail,
    status_code=status.HTTP_201_CREATED,
    dependencies=[AdminDep],
    responses={
        **ADMIN_RESPONSES,
        409: {"model": ErrorPublic, "description": "An item with that id exists."},
    },
)
def create(
    body: ItemCreate, session: SessionDep, registry: RegistryDep, catalog: CatalogDep
) -> ItemDetail:
    """Add a film. It is persisted, and the content models (``content``, ``hybrid``) recommend
    it and list it among similar items at once, from its metadata: no retraining."""
    fields = {"item_id": body.id, **body.model_dump(exclude={"id"})}
    info = add_item(session=session, registry=registry, catalog=catalog, fields=fields)
    return _detail(info)


@router.patch(
    "/{item_id}",
    response_model=ItemDetail,
    dependencies=[AdminDep],
    responses=ADMIN_RESPONSES,
)
def update(
    item_id: ItemId,
    body: ItemUpdate,
    session: SessionDep,
    registry: RegistryDep,
    catalog: CatalogDep,
) -> ItemDetail:
    """Change a film's title, year, genres or description; the content models re-embed it."""
    info = edit_item(
        session=session,
        registry=registry,
        catalog=catalog,
        item_id=item_id,
        changes=body.changes(),
    )
    return _detail(info)
