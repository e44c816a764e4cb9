"""Prometheus metrics: requests per route template, latency, loaded model versions, inference time.

Each app owns a ``CollectorRegistry`` (no process-global state, so tests can build many apps).
Requests are measured by a pure ASGI middleware and labelled by the route TEMPLATE
(``/v1/users/{user_id}/recommendations``), never by the raw path, so label cardinality stays
bounded; unmatched paths share the label ``<unmatched>``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.services.registry import ModelRegistry

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"


class _LoadedModelsCollector(Collector):
    """Reads the model registry at scrape time: one gauge sample per loaded model version."""

    def __init__(self, models: ModelRegistry) -> None:
        self._models = models

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded = GaugeMetricFamily(
            "deeprec_model_loaded",
            "1 for each model version the service is answering with.",
            labels=["model_type", "version"],
        )
        loaded_at = GaugeMetricFamily(
            "deeprec_model_loaded_timestamp_seconds",
            "When the served version of each model type was loaded (unix time).",
            labels=["model_type", "version"],
        )
        for model_type, entry in sorted(self._models.snapshot().items()):
            loaded.add_metric([model_type, entry.version], 1.0)
            loaded_at.add_metric([model_type, entry.version], entry.loaded_at.timestamp())
        yield loaded
        yield loaded_at


class ServiceMetrics:
    """The service's instruments, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # (metric, label values) -> the labelled child (see _child)
        self._children: dict[tuple[object, ...], Any] = {}
        self.requests = Counter(
            "deeprec_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "deeprec_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "deeprec_inference_duration_seconds",
            "Model inference time by model type and operation (scoring, embedding, ...).",
            ["model_type", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answer_cache = Counter(
            "deeprec_answer_cache_lookups",
            "Answer cache lookups by result (hit, miss, bypass: the shared cache was unreachable).",
            ["result"],
            registry=self.registry,
        )
        self.answer_cache_errors = Counter(
            "deeprec_answer_cache_errors",
            "Errors of the shared answer cache (Redis) by operation; each degrades to computing.",
            ["operation"],
            registry=self.registry,
        )
        self.precomputed = Counter(
            "deeprec_answer_cache_precomputed",
            "Answers computed ahead of requests after a model version was swapped in.",
            ["model_type"],
            registry=self.registry,
        )
        self.precompute_runs = Counter(
            "deeprec_answer_cache_precompute_runs",
            "Precompute passes that went through every active user (not superseded).",
            ["model_type"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "deeprec_event_loop_lag_seconds",
            "How late the event loop's heartbeat woke (DEEPREC_LOOP_STALL_MS > 0 only): the wait "
            "any request of this worker had on top of its own work.",
            buckets=(0.0005, *LATENCY_BUCKETS),
            registry=self.registry,
        )
        self.retrain_jobs = Counter(
            "deeprec_retrain_jobs",
            "Finished retrain jobs by model type and final status.",
            ["model_type", "status"],
            registry=self.registry,
        )

    def watch_models(self, models: ModelRegistry) -> None:
        """Report ``models`` (replacing the registry watched before, e.g. on a second start)."""
        previous = getattr(self, "_models_collector", None)
        if previous is not None:
            self.registry.unregister(previous)
        self._models_collector = _LoadedModelsCollector(models)
        self.registry.register(self._models_collector)

    @contextmanager
    def time_inference(self, model_type: str, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._child(self.inference, (model_type, operation)).observe(
                time.perf_counter() - started
            )

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, looked up once: ``labels()`` validates and locks on
        every call, a measurable share of a cached answer's CPU."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, metric.labels(*labels))
        return child

    def count_lookup(self, result: str) -> None:
        """One answer cache lookup: ``hit``, ``miss`` or ``bypass``."""
        self._child(self.answer_cache, (result,)).inc()

    def count_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, (method, route, str(status))).inc()
        self._child(self.latency, (method, route)).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class PrometheusMiddleware:
    """Counts and times every HTTP request; labels come from the matched route's template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.count_request(
                scope.get("method", "GET"),
                route_template(scope),
                status,
                time.perf_counter() - started,
            )
