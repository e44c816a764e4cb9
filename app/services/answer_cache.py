"""Cached recommendation answers: the serialised response bytes, keyed so they cannot go stale.

A key names everything an answer depends on: the user, the model type and the exact model version
(its version name and checkpoint fingerprint), the user's ``ratings_version`` (bumped in the same
transaction as every write to their ratings) and the request parameters. A rating write or a model
activation therefore changes the key of the next request instead of deleting anything: an old
entry can never be served again, it just ages out. That is what makes sharing safe between
workers and replicas, and what lets an in-process tier sit in front of Redis.

Backends, behind one interface (:class:`AnswerCache`):

- :class:`LocalLRU`: per worker, bounded by ``DEEPREC_CACHE_MAX_ENTRIES``;
- :class:`RedisCache`: shared by every worker and replica (``DEEPREC_CACHE_URL``). Any Redis error
  counts in Prometheus, is logged at most once a minute, and turns the lookup into a miss (the
  answer is computed): an outage costs speed, never a 5xx. After an error Redis is left alone for
  ``DEEPREC_CACHE_RETRY_S`` so a dead server does not cost a timeout per request.
- :class:`TieredCache`: the local LRU first, then Redis (a Redis hit fills the LRU).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.services.metrics import ServiceMetrics

log = logging.getLogger(__name__)

KEY_PREFIX = "deeprec:answer:v1"
LOG_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class AnswerKey:
    user_id: int
    model_type: str
    model_version: str  # version name and checkpoint fingerprint: see model_fingerprint()
    ratings_version: int
    k: int
    exclude_seen: bool
    genre: str | None

    def redis_key(self, namespace: str = "") -> str:
        genre = "" if self.genre is None else f"g={self.genre}"
        return (
            f"{KEY_PREFIX}:{namespace}:{self.model_type}:{self.model_version}:{self.user_id}:"
            f"{self.ratings_version}:{self.k}:{int(self.exclude_seen)}:{genre}"
        )


def database_namespace(database_url: str) -> str:
    """A short name of the database: (user, ratings version) identifies ratings only within ONE
    database, so services on different databases sharing a Redis must not share keys."""
    rendered = make_url(database_url).render_as_string(hide_password=True)
    return hashlib.sha256(rendered.encode()).hexdigest()[:12]


def model_fingerprint(version: str, sha256: str | None) -> str:
    """The model part of a key: two checkpoints registered under one name still differ."""
    return f"{version}@{sha256[:16]}" if sha256 else version


class AnswerCache(Protocol):
    """What the recommendation path needs from a cache. Implementations never raise."""

    def get(self, key: AnswerKey) -> bytes | None: ...

    def put(self, key: AnswerKey, value: bytes) -> None: ...

    def close(self) -> None: ...


class LocalLRU:
    """A thread-safe LRU of at most ``max_entries`` answers, private to this process."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[AnswerKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: AnswerKey) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: AnswerKey, value: bytes) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()


class RedisCache:
    """Answers in Redis, shared by every worker and replica; errors degrade to misses."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float,
        timeout_s: float,
        retry_s: float,
        namespace: str = "",
        metrics: ServiceMetrics | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),  # a failed call is a miss, not a slower failure
                health_check_interval=0,
            )
        self.url = url
        self.namespace = namespace
        self.client = client
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.retry_s = retry_s
        self.metrics = metrics
        self._skip_until = 0.0
        self._last_log = -LOG_EVERY_S

    def available(self) -> bool:
        """False while backing off after an error."""
        return time.monotonic() >= self._skip_until

    def _failed(self, operation: str, exc: Exception) -> None:
        now = time.monotonic()
        self._skip_until = now + self.retry_s
        if self.metrics is not None:
            self.metrics.answer_cache_errors.labels(operation).inc()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.warning(
                "answer cache: Redis %s failed (%s: %s); computing answers without it, "
                "retrying in %g s (logged at most once a minute)",
                operation,
                type(exc).__name__,
                exc,
                self.retry_s,
            )

    def get(self, key: AnswerKey) -> bytes | None:
        if not self.available():
            return None
        try:
            value = self.client.get(key.redis_key(self.namespace))
        except Exception as exc:  # any client or server error: compute instead
            self._failed("get", exc)
            return None
        return bytes(value) if value is not None else None

    def put(self, key: AnswerKey, value: bytes) -> None:
        if not self.available():
            return
        try:
            self.client.set(key.redis_key(self.namespace), value, px=self.ttl_ms)
        except Exception as exc:
            self._failed("set", exc)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a broken connection must not fail a shutdown
            log.debug("answer cache: closing the Redis client failed", exc_info=True)


class TieredCache:
    """The local LRU in front of Redis. Keys never change meaning, so the tiers cannot disagree."""

    def __init__(self, local: LocalLRU, shared: RedisCache) -> None:
        self.local = local
        self.shared = shared

    def get(self, key: AnswerKey) -> bytes | None:
        value = self.local.get(key)
        if value is None:
            value = self.shared.get(key)
            if value is not None:
                self.local.put(key, value)
        return value

    def put(self, key: AnswerKey, value: bytes) -> None:
        self.local.put(key, value)
        self.shared.put(key, value)

    def close(self) -> None:
        self.local.close()
        self.shared.close()


def memory_tier(cache: AnswerCache | None) -> LocalLRU | None:
    """The in-process part of ``cache`` (no I/O to read it), if it has one."""
    if isinstance(cache, LocalLRU):
        return cache
    if isinstance(cache, TieredCache):
        return cache.local
    return None


def build_answer_cache(settings: Settings, metrics: ServiceMetrics | None) -> AnswerCache | None:
    """The cache the settings ask for; ``None`` when caching is off (no URL and no local size)."""
    local = LocalLRU(settings.cache_max_entries) if settings.cache_max_entries > 0 else None
    if not settings.cache_url:
        return local
    shared = RedisCache(
        settings.cache_url,
        ttl_s=settings.cache_ttl_s,
        timeout_s=settings.cache_timeout_s,
        retry_s=settings.cache_retry_s,
        namespace=settings.cache_namespace or database_namespace(settings.resolved_database_url),
        metrics=metrics,
    )
    return shared if local is None else TieredCache(local, shared)
