"""Recommendation logic behind the routes: pick a model, fold the user in, fall back to popularity.

The user's ratings are read from the database at request time and handed to the model's
``recommend`` (fold-in), so a rating written a moment ago counts in the very next answer. A user
whose ratings the model cannot use (none at all, or only items it never saw) gets the most rated
items instead, marked ``strategy="popularity"``. Everything here is synchronous and CPU-bound: the
routes call it from FastAPI's threadpool, never on the event loop.

The endpoint serves :func:`recommendation_answer`: the answer's JSON bytes, cached under (user,
model version, the user's ratings version, parameters), so a rating write, which bumps the ratings
version in its own transaction, changes the key of the very next request (never a stale answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson

from app.crud.errors import UnknownUserError
from app.crud.serving import HotReads
from app.services.answer_cache import AnswerCache, AnswerKey, LocalLRU, model_fingerprint
from app.services.catalog import ItemCatalog, ItemInfo
from app.services.content_sync import follows_catalogue, sync_catalogue
from app.services.errors import InvalidRequestError
from app.services.metrics import ServiceMetrics
from app.services.registry import LoadedModel, ModelNotLoadedError, ModelRegistry
from ml.inference import IMAGE_MODEL_TYPES, LOADERS, Recommender
from ml.registry import recommendation_order

# Which loaded model answers when the client names none: the first loaded of these.
DEFAULT_MODEL_ORDER: tuple[str, ...] = recommendation_order()


@dataclass(frozen=True)
class ScoredItemInfo:
    item: ItemInfo
    score: float


@dataclass(frozen=True)
class Recommendations:
    user_id: int
    model: str
    model_version: str | None
    strategy: Literal["model", "popularity"]
    items: list[ScoredItemInfo]


def served_recommender(entry: LoadedModel) -> Recommender:
    """``entry``'s model as a recommender; 422 for a model of another kind."""
    if not isinstance(entry.model, Recommender):
        raise InvalidRequestError(f"model {entry.model_type!r} does not serve recommendations")
    return entry.model


def recommender_types(registry: ModelRegistry) -> list[str]:
    return [t for t, e in registry.snapshot().items() if isinstance(e.model, Recommender)]


def choose_recommender(registry: ModelRegistry, model: str | None) -> LoadedModel:
    """The named model, or the best loaded one; raises for a model that cannot recommend."""
    if model is None:
        for candidate in DEFAULT_MODEL_ORDER:
            entry = registry.find(candidate)
            if entry is not None and isinstance(entry.model, Recommender):
                return entry
        raise ModelNotLoadedError(DEFAULT_MODEL_ORDER[0], registry.model_types())
    if model not in LOADERS:
        raise InvalidRequestError(
            f"unknown model {model!r}; choose one of {sorted(recommender_types(registry))}"
        )
    entry = None if model in IMAGE_MODEL_TYPES else registry.get(model)
    if entry is None or not isinstance(entry.model, Recommender):
        raise InvalidRequestError(
            f"model {model!r} does not serve recommendations; "
            f"choose one of {sorted(recommender_types(registry))}"
        )
    return entry


def _candidates(catalog: ItemCatalog, genre: str | None) -> tuple[int, ...] | None:
    if genre is None or not genre.strip():
        return None
    ids = catalog.genre_item_ids(genre)
    if ids is None:
        raise InvalidRequestError(f"unknown genre {genre!r}; known: {list(catalog.genres())}")
    return ids


def _knows_any(recommender: Recommender, ratings: dict[int, float]) -> bool:
    """Whether any rated item is in the model's vocabulary (one vectorised lookup)."""
    if not ratings:
        return False
    raw = np.fromiter(ratings.keys(), dtype=np.int64, count=len(ratings))
    return bool((recommender.items.encode(raw, strict=False) >= 0).any())


def _popular(
    catalog: ItemCatalog,
    k: int,
    seen: dict[int, float],
    exclude_seen: bool,
    candidates: tuple[int, ...] | None,
) -> list[tuple[int, float]]:
    allowed = set(candidates) if candidates is not None else None
    answer: list[tuple[int, float]] = []
    for item_id, count in catalog.popularity():
        if exclude_seen and item_id in seen:
            continue
        if allowed is not None and item_id not in allowed:
            continue
        answer.append((item_id, float(count)))
        if len(answer) == k:
            break
    return answer


def _with_metadata(
    catalog: ItemCatalog, ranked: Sequence[tuple[int, float]]
) -> list[ScoredItemInfo]:
    infos = catalog.get_many(item_id for item_id, _ in ranked)
    return [
        ScoredItemInfo(infos.get(i) or ItemInfo(i, f"item {i}", None, ()), score)
        for i, score in ranked
    ]


def _resolve(registry: ModelRegistry, model: str | None) -> LoadedModel | None:
    """The model that answers; ``None`` when the client named none and nothing is loaded."""
    # Resolved before deciding on popularity, so a bad model name is always a 4xx.
    try:
        return choose_recommender(registry, model)
    except ModelNotLoadedError:
        if model is not None:
            raise
        return None  # nothing loaded at all: popularity from the database still answers


def _answer(
    *,
    entry: LoadedModel | None,
    catalog: ItemCatalog,
    metrics: ServiceMetrics,
    user_id: int,
    seen: dict[int, float],
    k: int,
    exclude_seen: bool,
    candidates: tuple[int, ...] | None,
) -> Recommendations:
    rows = None
    if entry is not None:
        recommender = served_recommender(entry)
        if follows_catalogue(recommender):  # serves the items created since training too
            sync_catalogue(recommender, catalog)
            known = _knows_any(recommender, seen)
        else:  # the row the model folds in, built once: no rated item known, no row entries
            rows = recommender.rows_from_ratings(seen)
            known = rows.nnz > 0
    if entry is None or not known:
        ranked = _popular(catalog, k, seen, exclude_seen, candidates)
        return Recommendations(
            user_id, "popularity", None, "popularity", _with_metadata(catalog, ranked)
        )
    allowed = np.asarray(candidates, dtype=np.int64) if candidates is not None else None
    with metrics.time_inference(entry.model_type, "recommend"):
        if rows is None:
            ranked = recommender.recommend(seen, k, exclude_seen=exclude_seen, candidates=allowed)
        else:
            ranked = recommender.recommend_rows(
                rows, k, exclude_seen=exclude_seen, candidates=allowed
            )
    return Recommendations(
        user_id, entry.model_type, entry.version, "model", _with_metadata(catalog, ranked)
    )


# ------------------------------------------------------------------ the cached answer (bytes)
def render(result: Recommendations, k: int, genre: str | None) -> bytes:
    """The response body, byte for byte what ``RecommendationsPublic`` would serialise, built
    with orjson from the dataclasses (no pydantic model is built or validated on this path)."""
    return orjson.dumps(
        {
            "user_id": result.user_id,
            "model": result.model,
            "model_version": result.model_version,
            "strategy": result.strategy,
            "k": k,
            "genre": genre or None,
            "items": [
                {
                    "id": s.item.id,
                    "title": s.item.title,
                    "year": s.item.year,
                    "genres": s.item.genres,
                    "score": float(s.score),
                }
                for s in result.items
            ],
        }
    )


CacheStatus = Literal["hit", "miss", "off"]


def answer_key(
    entry: LoadedModel,
    user_id: int,
    ratings_version: int,
    k: int,
    exclude_seen: bool,
    genre: str | None,
) -> AnswerKey:
    return AnswerKey(
        user_id=user_id,
        model_type=entry.model_type,
        model_version=model_fingerprint(entry.version, entry.sha256),
        ratings_version=ratings_version,
        k=k,
        exclude_seen=exclude_seen,
        genre=genre or None,
    )


def recommendation_answer(
    *,
    reads: HotReads,
    registry: ModelRegistry,
    catalog: ItemCatalog,
    metrics: ServiceMetrics,
    cache: AnswerCache | None,
    user_id: int,
    k: int,
    model: str | None,
    exclude_seen: bool,
    genre: str | None,
    on_loop: bool = False,
) -> tuple[bytes, CacheStatus]:
    """The serialised answer and whether the cache gave it (``on_loop``: called on the event
    loop, whose reads use its own connection: see :class:`HotReads`).

    Hit: one indexed read of the user's ratings version, one cache lookup. Miss: the ratings and
    their version in one statement, the model's fold-in, and the answer filed under THAT version
    (a popularity answer is not cached: it follows global counts, not the user's ratings).
    """
    candidates = _candidates(catalog, genre)
    entry = _resolve(registry, model)
    if entry is not None and follows_catalogue(entry.model):
        # A content model's answer also follows items added or edited since it loaded, which
        # the key does not carry: computed every time rather than ever served stale.
        cache = None
    if cache is not None and entry is not None:
        version = reads.ratings_version(user_id, on_loop=on_loop)
        cached = cache.get(answer_key(entry, user_id, version, k, exclude_seen, genre))
        if cached is not None:
            metrics.count_lookup("hit")
            return cached, "hit"
    version, seen = reads.ratings_with_version(user_id, on_loop=on_loop)
    result = _answer(
        entry=entry,
        catalog=catalog,
        metrics=metrics,
        user_id=user_id,
        seen=seen,
        k=k,
        exclude_seen=exclude_seen,
        candidates=candidates,
    )
    body = render(result, k, genre)
    if cache is None:
        return body, "off"
    metrics.count_lookup("miss")
    if entry is not None and result.strategy == "model":
        cache.put(answer_key(entry, user_id, version, k, exclude_seen, genre), body)
    return body, "miss"


def memory_hit(
    *,
    reads: HotReads,
    registry: ModelRegistry,
    catalog: ItemCatalog,
    metrics: ServiceMetrics,
    memory: LocalLRU,
    user_id: int,
    k: int,
    model: str | None,
    exclude_seen: bool,
    genre: str | None,
) -> bytes | None:
    """The answer when this worker's memory holds it under the user's CURRENT ratings version
    (one indexed read), else ``None``: the hot path's hit, run on the event loop, so only where
    ``reads.on_event_loop``. Raises what :func:`recommendation_answer` would for a bad request
    or an unknown user."""
    _candidates(catalog, genre)  # an unknown genre is refused here as it is there
    entry = _resolve(registry, model)
    if entry is None or follows_catalogue(entry.model):
        return None  # popularity and content answers are never cached
    version = reads.ratings_version(user_id, on_loop=True)
    cached = memory.get(answer_key(entry, user_id, version, k, exclude_seen, genre))
    if cached is not None:
        metrics.count_lookup("hit")
    return cached


def precompute_answer(
    *,
    reads: HotReads,
    entry: LoadedModel,
    catalog: ItemCatalog,
    metrics: ServiceMetrics,
    cache: AnswerCache,
    user_id: int,
    k: int,
    on_loop: bool = False,
) -> bool:
    """Fill the cache with the default answer (k, seen excluded, no genre) of ``entry`` for one
    user; ``True`` when one was computed (not cached yet, and the model knows the user).
    ``on_loop``: called on the event loop (see :class:`HotReads`)."""
    version, seen = reads.ratings_with_version(user_id, on_loop=on_loop)
    key = answer_key(entry, user_id, version, k, True, None)
    if cache.get(key) is not None or not _knows_any(served_recommender(entry), seen):
        return False
    result = _answer(
        entry=entry,
        catalog=catalog,
        metrics=metrics,
        user_id=user_id,
        seen=seen,
        k=k,
        exclude_seen=True,
        candidates=None,
    )
    cache.put(key, render(result, k, None))
    return True


def precompute_answers(
    *,
    reads: HotReads,
    entry: LoadedModel,
    catalog: ItemCatalog,
    metrics: ServiceMetrics,
    cache: AnswerCache,
    user_ids: Sequence[int],
    k: int,
    on_loop: bool = False,
) -> int:
    """:func:`precompute_answer` for each of ``user_ids``, the users folded in together: one
    scorer call for the batch, a fraction of the CPU of one call per user (the RBM: about a
    quarter at 8 users). The answers are the ones :func:`recommendation_answer` computes, the
    scores up to float32 rounding (a batch's products round differently from one row's). Users
    deleted since they were listed are skipped. Returns how many answers were computed."""
    recommender = served_recommender(entry)
    if follows_catalogue(recommender):  # a content model's answers follow the catalogue
        computed = 0
        for user_id in user_ids:
            try:
                computed += precompute_answer(
                    reads=reads,
                    entry=entry,
                    catalog=catalog,
                    metrics=metrics,
                    cache=cache,
                    user_id=user_id,
                    k=k,
                    on_loop=on_loop,
                )
            except UnknownUserError:
                continue
        return computed
    keys: list[AnswerKey] = []
    histories: list[Mapping[int, float]] = []
    for user_id in user_ids:
        try:
            version, seen = reads.ratings_with_version(user_id, on_loop=on_loop)
        except UnknownUserError:
            continue
        key = answer_key(entry, user_id, version, k, True, None)
        if seen and cache.get(key) is None:
            keys.append(key)
            histories.append(seen)
    if not keys:
        return 0
    rows = recommender.rows_from_ratings(histories)  # (B, I)
    known = np.flatnonzero(np.diff(rows.indptr) > 0)  # users with a rated item the model knows
    if len(known) == 0:
        return 0
    ranked = recommender.recommend_batch(rows[known], k, exclude_seen=True)
    for index, answer in zip(known, ranked, strict=True):
        key = keys[index]
        result = Recommendations(
            key.user_id, entry.model_type, entry.version, "model", _with_metadata(catalog, answer)
        )
        cache.put(key, render(result, k, None))
    return len(known)


# ------------------------------------------------------------------------- similar items
def item_embedding_types(registry: ModelRegistry) -> list[str]:
    return sorted(
        t
        for t, e in registry.snapshot().items()
        if isinstance(e.model, Recommender) and e.model.item_embeddings is not None
    )


def choose_embedding_model(registry: ModelRegistry, model: str | None) -> LoadedModel:
    if model is None:
        for candidate in DEFAULT_MODEL_ORDER:
            entry = registry.find(candidate)
            if (
                entry is not None
                and isinstance(entry.model, Recommender)
                and entry.model.item_embeddings is not None
            ):
                return entry
        for candidate in item_embedding_types(registry):
            return registry.get(candidate)
        loaded = registry.model_types()
        raise ModelNotLoadedError(
            "rbm",
            loaded,
            f"no loaded model has item embeddings (loaded: {', '.join(loaded) or 'none'})",
        )
    entry = choose_recommender(registry, model)
    if served_recommender(entry).item_embeddings is None:
        raise InvalidRequestError(
            f"model {model!r} has no item embeddings; "
            f"choose one of {item_embedding_types(registry)}"
        )
    return entry
