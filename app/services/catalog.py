"""An in-memory snapshot of the item catalogue (titles, years, genres) and item popularity.

Items change only when a data set is loaded, so the hot recommendation path reads their metadata
from this snapshot instead of querying the database each time. The snapshot is rebuilt when it is
older than its time-to-live, or at once when a lookup misses (an item loaded since), at most once
per ``min_refresh_s``. Popularity (ratings per item, for cold users) is cached the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crud import item_popularity
from app.models import Item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemInfo:
    id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    description: str | None = None  # free text, for the content models


@dataclass(frozen=True)
class _Snapshot:
    items: dict[int, ItemInfo]
    by_genre: dict[str, tuple[int, ...]]  # casefolded genre -> item ids
    genres: tuple[str, ...]
    taken_at: float


class ItemCatalog:
    """Thread-safe, lazily refreshed view of the ``item`` table and of item popularity."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        ttl_s: float = 300.0,
        min_refresh_s: float = 5.0,
        popularity_ttl_s: float = 30.0,
    ) -> None:
        self._session_factory = session_factory
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_s
        self._popularity_ttl_s = popularity_ttl_s
        self._snapshot: _Snapshot | None = None
        self._popularity: tuple[float, list[tuple[int, int]]] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ items
    def _load(self) -> _Snapshot:
        with self._session_factory() as session:
            rows = session.execute(
                select(Item.id, Item.title, Item.year, Item.genres, Item.description)
            ).all()
        items: dict[int, ItemInfo] = {}
        by_genre: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        for item_id, title, year, genres, description in rows:
            info = ItemInfo(int(item_id), str(title), year, tuple(genres or ()), description)
            items[info.id] = info
            for genre in info.genres:
                key = genre.casefold()
                names.setdefault(key, genre)
                by_genre.setdefault(key, []).append(info.id)
        log.debug("item catalogue: %d items, %d genres", len(items), len(by_genre))
        return _Snapshot(
            items=items,
            by_genre={k: tuple(sorted(v)) for k, v in by_genre.items()},
            genres=tuple(sorted(names.values())),
            taken_at=time.monotonic(),
        )

    def _current(self, *, missed: bool = False) -> _Snapshot:
        snapshot = self._snapshot
        now = time.monotonic()
        stale = snapshot is None or now - snapshot.taken_at > self._ttl_s
        retry = missed and snapshot is not None and now - snapshot.taken_at > self._min_refresh_s
        if stale or retry:
            with self._lock:
                if self._snapshot is snapshot:  # nobody refreshed it meanwhile
                    self._snapshot = self._load()
                snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None
            self._popularity = None

    def get(self, item_id: int) -> ItemInfo | None:
        info = self._current().items.get(item_id)
        if info is None:
            info = self._current(missed=True).items.get(item_id)
        return info

    def get_many(self, item_ids: Iterable[int]) -> dict[int, ItemInfo]:
        wanted = list(item_ids)
        items = self._current().items
        if any(i not in items for i in wanted):
            items = self._current(missed=True).items
        return {i: items[i] for i in wanted if i in items}

    def all_items(self) -> Mapping[int, ItemInfo]:
        """Every item of the current snapshot; a refresh returns a NEW mapping, so its identity
        tells a reader (the content models) that the catalogue may have changed."""
        return self._current().items

    def genre_item_ids(self, genre: str) -> tuple[int, ...] | None:
        """Ids of the items of ``genre`` (case-insensitive); ``None`` for an unknown genre."""
        return self._current().by_genre.get(genre.strip().casefold())

    def genres(self) -> tuple[str, ...]:
        return self._current().genres

    # ------------------------------------------------------------- popularity
    def popularity(self) -> list[tuple[int, int]]:
        """(item_id, number of ratings), most rated first; cached for ``popularity_ttl_s``."""
        cached = self._popularity
        now = time.monotonic()
        if cached is None or now - cached[0] > self._popularity_ttl_s:
            with self._session_factory() as session:
                ranked = list(item_popularity(session=session).items())
            cached = (now, ranked)
            self._popularity = cached
        return cached[1]
