"""Similar items, by ratings or by content: pick the model, ask its recommender, add metadata.

Both kinds are the same call on the recommender interface (``Recommender.similar_items``): a
collaborative model answers from its unit-norm item embeddings (computed once per loaded model),
a content model from the codes of the current catalogue, so it also knows items added since it
was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.crud.errors import UnknownItemError
from app.services.catalog import ItemCatalog, ItemInfo
from app.services.content import choose_content_model
from app.services.content_sync import follows_catalogue, sync_catalogue
from app.services.errors import InvalidRequestError
from app.services.metrics import ServiceMetrics
from app.services.recommendations import (
    ScoredItemInfo,
    _with_metadata,
    choose_embedding_model,
    served_recommender,
)
from app.services.registry import LoadedModel, ModelRegistry

SimilarBy = Literal["ratings", "content"]


@dataclass(frozen=True)
class SimilarItems:
    entry: LoadedModel  # the model that answered
    item: ItemInfo
    similar: list[ScoredItemInfo]


def similar_items(
    *,
    registry: ModelRegistry,
    catalog: ItemCatalog,
    metrics: ServiceMetrics,
    item_id: int,
    k: int,
    model: str | None,
    by: SimilarBy = "ratings",
) -> SimilarItems:
    """The k items nearest ``item_id``: cosine of a collaborative model's item embeddings
    (``by="ratings"``) or of the content model's codes of the item metadata (``by="content"``)."""
    info = catalog.get(item_id)
    if info is None:
        raise UnknownItemError([item_id])
    if by == "content":
        entry = choose_content_model(registry, model)
    else:
        entry = choose_embedding_model(registry, model)
    recommender = served_recommender(entry)
    sync_catalogue(recommender, catalog)  # content models: serve items added since training
    with metrics.time_inference(entry.model_type, "similar"):
        ranked = recommender.similar_items(item_id, k)
    if ranked is None and follows_catalogue(recommender):
        # created in another worker after this worker's catalogue snapshot: refresh, ask again
        catalog.invalidate()
        sync_catalogue(recommender, catalog)
        ranked = recommender.similar_items(item_id, k)
    if ranked is None:
        raise InvalidRequestError(
            f"item {item_id} is not in the {entry.model_type} model's vocabulary "
            "(it had no ratings when the model was trained)"
        )
    return SimilarItems(entry, info, _with_metadata(catalog, ranked))
