"""Keeping the content models' catalogue current.

The content models (``content``, ``hybrid``) embed items from their metadata, so they can serve
items that did not exist when they were trained. They read the catalogue from the service's
:class:`ItemCatalog` snapshot: whenever the snapshot is a new one (an item was created or edited
here, which invalidates it; or it expired, which is how other workers' writes arrive), the model
re-encodes the whole catalogue (milliseconds for thousands of items) before it answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.services.catalog import ItemCatalog, ItemInfo
from app.services.registry import ModelRegistry
from ml.inference.content import ContentRecommender, ItemMeta

log = logging.getLogger(__name__)


def item_metas(items: Mapping[int, ItemInfo]) -> list[ItemMeta]:
    return [
        ItemMeta(
            id=info.id,
            title=info.title,
            year=info.year,
            genres=tuple(info.genres),
            description=info.description,
        )
        for info in items.values()
    ]


def follows_catalogue(model: Any) -> bool:
    """Whether the model's answers change with the item catalogue, not only with the model
    version and the user's ratings: such answers must not be cached under those keys alone."""
    return isinstance(model, ContentRecommender)


def sync_catalogue(model: Any, catalog: ItemCatalog) -> None:
    """Bring a content model's items up to the catalogue's (no-op for other models, and for a
    content model that already saw this snapshot)."""
    if not isinstance(model, ContentRecommender):
        return
    items = catalog.all_items()
    if model.state.token is items:
        return
    model.sync_catalogue(item_metas(items), token=items)
    log.debug("%s: serving %d catalogue items", model.model_type, len(items))


def sync_all(registry: ModelRegistry, catalog: ItemCatalog) -> None:
    for entry in registry.snapshot().values():
        sync_catalogue(entry.model, catalog)
