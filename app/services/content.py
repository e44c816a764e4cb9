"""Content-based serving: items created or edited at run time, and which content model answers.

A write invalidates the item catalogue and brings every loaded content model up to it before
the request returns (``app.services.content_sync``), so the new film is recommendable at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.crud.items import create_item, update_item
from app.models import Item
from app.services.catalog import ItemCatalog, ItemInfo
from app.services.content_sync import sync_all
from app.services.errors import InvalidRequestError
from app.services.registry import LoadedModel, ModelNotLoadedError, ModelRegistry
from ml.inference.content import ContentRecommender
from ml.registry import metadata_model_types

log = logging.getLogger(__name__)

# Which loaded model answers similar?by=content when none is named.
CONTENT_MODEL_ORDER: tuple[str, ...] = tuple(metadata_model_types())


def _info(item: Item) -> ItemInfo:
    return ItemInfo(item.id, item.title, item.year, tuple(item.genres or ()), item.description)


def add_item(
    *,
    session: Session,
    registry: ModelRegistry,
    catalog: ItemCatalog,
    fields: Mapping[str, Any],
) -> ItemInfo:
    """Persist a new item and make the content models serve it before returning."""
    item = create_item(session=session, **fields)
    info = _info(item)
    catalog.invalidate()
    sync_all(registry, catalog)
    log.info("item %d created: %r", info.id, info.title)
    return info


def edit_item(
    *,
    session: Session,
    registry: ModelRegistry,
    catalog: ItemCatalog,
    item_id: int,
    changes: Mapping[str, Any],
) -> ItemInfo:
    """Persist metadata changes; the content models re-embed the item before returning."""
    item = update_item(session=session, item_id=item_id, changes=changes)
    info = _info(item)
    catalog.invalidate()
    sync_all(registry, catalog)
    return info


def choose_content_model(registry: ModelRegistry, model: str | None) -> LoadedModel:
    """The named content model, or the first loaded of :data:`CONTENT_MODEL_ORDER`."""
    if model is not None:
        if model not in CONTENT_MODEL_ORDER:
            raise InvalidRequestError(
                f"by=content needs a content model ({', '.join(CONTENT_MODEL_ORDER)}), "
                f"not {model!r}"
            )
        return registry.get(model)
    for candidate in CONTENT_MODEL_ORDER:
        entry = registry.find(candidate)
        if entry is not None and isinstance(entry.model, ContentRecommender):
            return entry
    loaded = registry.model_types()
    raise ModelNotLoadedError(
        CONTENT_MODEL_ORDER[0],
        loaded,
        f"no content model is loaded (train one: `deeprec train content`); "
        f"loaded: {', '.join(loaded) or 'none'}",
    )
