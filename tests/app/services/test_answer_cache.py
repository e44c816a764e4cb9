"""The answer cache's backends: a bounded LRU, Redis (real server), the tiers together, and a
Redis outage that turns lookups into misses instead of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from app.services.answer_cache import (
    AnswerKey,
    LocalLRU,
    RedisCache,
    TieredCache,
    build_answer_cache,
    database_namespace,
    model_fingerprint,
)
from app.services.metrics import ServiceMetrics
from tests.redis_server import redis_process, shared_cache_url


def key(user: int = 1, ratings_version: int = 0, **fields: object) -> AnswerKey:
    values: dict[str, object] = {
        "user_id": user,
        "model_type": "ease",
        "model_version": "v1@abcd",
        "ratings_version": ratings_version,
        "k": 10,
        "exclude_seen": True,
        "genre": None,
        **fields,
    }
    return AnswerKey(**values)  # type: ignore[arg-type]


def test_keys_differ_in_every_part() -> None:
    base = key()
    variants = [
        key(user=2),
        key(ratings_version=1),
        key(model_type="rbm"),
        key(model_version="v2@abcd"),
        key(k=11),
        key(exclude_seen=False),
        key(genre="Comedy"),
    ]
    assert len({base.redis_key(), *(v.redis_key() for v in variants)}) == len(variants) + 1
    assert model_fingerprint("v1", "f" * 64) != model_fingerprint("v1", "e" * 64)
    assert model_fingerprint("v1", None) == "v1"
    assert base.redis_key("db-a") != base.redis_key("db-b")
    one = database_namespace("postgresql+psycopg://app:secret@db/deeprec")
    assert one == database_namespace("postgresql+psycopg://app:other@db/deeprec")  # no password
    assert one != database_namespace("postgresql+psycopg://app:secret@db/other")


def test_lru_evicts_the_least_recently_used() -> None:
    cache = LocalLRU(2)
    cache.put(key(1), b"one")
    cache.put(key(2), b"two")
    assert cache.get(key(1)) == b"one"  # 1 is now the most recent
    cache.put(key(3), b"three")
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) == b"one" and cache.get(key(3)) == b"three"
    assert len(cache) == 2
    with pytest.raises(ValueError):
        LocalLRU(0)


def test_settings_choose_the_backend() -> None:
    assert build_answer_cache(Settings(cache_max_entries=0, cache_url=None), None) is None
    assert isinstance(build_answer_cache(Settings(cache_url=None), None), LocalLRU)
    url = "redis://127.0.0.1:1/0"
    tiered = build_answer_cache(Settings(cache_url=url), None)
    assert isinstance(tiered, TieredCache)
    assert isinstance(
        build_answer_cache(Settings(cache_url=url, cache_max_entries=0), None), RedisCache
    )
    tiered.close()


def _redis_round_trip(url: str) -> None:
    metrics = ServiceMetrics()
    cache = RedisCache(url, ttl_s=60, timeout_s=0.5, retry_s=0, namespace="test", metrics=metrics)
    try:
        unique = key(user=123_456, model_version=f"test-{Path(__file__).stat().st_mtime_ns}")
        cache.client.delete(unique.redis_key(cache.namespace))
        assert cache.get(unique) is None
        cache.put(unique, b'{"items": []}')
        assert cache.get(unique) == b'{"items": []}'
        assert 0 < cache.client.pttl(unique.redis_key(cache.namespace)) <= 60_000
        cache.client.delete(unique.redis_key(cache.namespace))
    finally:
        cache.close()
    assert metrics.answer_cache_errors.labels("get")._value.get() == 0


def test_redis_round_trip_on_a_private_server(tmp_path: Path) -> None:
    with redis_process(tmp_path) as server:
        _redis_round_trip(server.url)


def test_redis_round_trip_on_the_shared_server() -> None:
    url = shared_cache_url()
    if url is None:
        pytest.skip("DEEPREC_TEST_CACHE_URL is unset (CI sets it to the shared Redis)")
    _redis_round_trip(url)


def test_a_redis_outage_degrades_to_misses_and_recovers(tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    with redis_process(tmp_path) as server:
        shared = RedisCache(server.url, ttl_s=60, timeout_s=0.2, retry_s=0.3, metrics=metrics)
        tiered = TieredCache(LocalLRU(10), shared)
        tiered.put(key(1), b"one")
        server.stop()
        assert tiered.get(key(1)) == b"one"  # the local tier still answers
        assert tiered.get(key(2)) is None  # Redis is down: a miss, not an error
        tiered.put(key(2), b"two")  # skipped while backing off; still no error
        errors = metrics.answer_cache_errors.labels("get")._value.get()
        assert errors == 1 and not shared.available()
        assert shared.get(key(3)) is None  # backing off: no new attempt, no new error
        assert metrics.answer_cache_errors.labels("get")._value.get() == 1
        server.start()  # a new server on the same port: empty, but reachable again
        shared._skip_until = 0.0  # the back-off is time-based; skip waiting for it here
        shared.put(key(4), b"four")
        assert shared.get(key(4)) == b"four"
        tiered.close()
