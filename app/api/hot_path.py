"""The recommendation endpoint's hot path: an ASGI front in front of the whole FastAPI app.

A cached answer costs microseconds (one indexed version read and a dictionary lookup), but going
through FastAPI costs about 0.25 ms of CPU more: route matching through the included routers,
dependency solving, pydantic validation of the query, an exit stack and a thread hop. At the
answer cache's hit rates that overhead is most of a recommendation's cost, so this front
answers well-formed ``GET /v1/users/{user_id}/recommendations`` requests itself, with the same
service functions, the same bytes and the same headers as the route.

It sits in front of the middleware stack too (``app.main.DeepRecAPI`` calls it first), not inside
it: the five ASGI layers around the routes (Starlette's error middleware, FastAPI's telemetry and
body limit, our metrics and body guard, each a coroutine, most with a ``send`` wrapper) cost a
cache hit about 0.06 ms: 0.145-0.155 ms of server CPU inside them, 0.077-0.094 ms in front
(``bench/results/serving_investigation.md``). What it skips, it does itself: it counts and times
what it answers in the request metrics, and it reads a rating write's body only when the declared
length is within the upload limit, so the body guard's 413 and depth limit still apply to
everything it passes on.

It only ever answers what it is sure of. Anything it does not recognise (a parameter spelled
differently, a repeated parameter, a value FastAPI would coerce or refuse) and any error (unknown
user, genre or model, a database error) goes on to the FastAPI route, which computes the answer
or the 4xx/503 exactly as before and keeps the OpenAPI schema. The route and its declaration stay
the contract; ``tests/app/api/test_hot_path.py`` checks both give the same answers. Plainly valid
rating writes (``POST /v1/users/{user_id}/ratings``) are answered here too: see
:mod:`app.api.hot_writes`.

Where the work runs:
- a hit in this worker's memory, with SQLite (``HotReads.on_event_loop``), runs on the event loop:
  the read is cheaper than the hop to a thread;
- with SQLite and no Redis tier, a miss of a model whose misses cost at most
  ``DEEPREC_INLINE_MISS_MS`` (:class:`InlineMisses`) runs on the event loop too. In a thread
  it would share the GIL with the loop, which answers hits all the time: each time the thread
  lets the GIL go (every database call, many NumPy and torch kernels) it waits for it again,
  and a 2 ms RBM fold-in queued for hundreds of ms behind the hits;
- everything else (an expensive model's miss, the Redis tier, PostgreSQL's round trip) runs in
  ONE trip to the inference threads, as the route does: a long fold-in (torch lets the GIL go)
  then leaves the loop free to answer hits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar
from urllib.parse import parse_qsl

from anyio import to_thread
from fastapi.routing import APIRoute
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import hot_writes
from app.api.deps import Serving
from app.api.routes import ratings as ratings_route
from app.api.routes import recommendations as route
from app.services.metrics import ServiceMetrics, route_template
from app.services.recommendations import CacheStatus, memory_hit, recommendation_answer

log = logging.getLogger(__name__)
_T = TypeVar("_T")

SUFFIX = "/recommendations"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_PARAMETERS = frozenset({"k", "model", "exclude_seen", "genre"})

# The route's own object: the metrics label a hot-path answer with its template, as FastAPI would.
ROUTE = next(
    r
    for r in route.router.routes
    if isinstance(r, APIRoute) and r.path == f"{hot_writes.PREFIX}{{user_id}}{SUFFIX}"
)
WRITE_ROUTE = next(
    r
    for r in ratings_route.router.routes
    if isinstance(r, APIRoute)
    and r.path == f"{hot_writes.PREFIX}{{user_id}}{hot_writes.SUFFIX}"
    and "POST" in (r.methods or ())
)


@dataclass(frozen=True, slots=True)
class HotRequest:
    user_id: int
    k: int = route.DEFAULT_K
    model: str | None = None
    exclude_seen: bool = True
    genre: str | None = None


def parse_hot_request(path: str, query_string: bytes) -> HotRequest | None:
    """The request's parameters when they are plainly valid for the route, else ``None``."""
    user_id = hot_writes.plain_user_id(path, SUFFIX)
    if user_id is None:
        return None
    values: dict[str, str] = {}
    # Decoded exactly as Starlette decodes a query string.
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in _PARAMETERS:
            if key in values:
                return None
            values[key] = value
    k = route.DEFAULT_K
    if "k" in values:
        if not hot_writes.POSITIVE.fullmatch(values["k"]) or int(values["k"]) > route.MAX_K:
            return None
        k = int(values["k"])
    exclude_seen = True
    if "exclude_seen" in values:
        flag = values["exclude_seen"]
        if flag not in _TRUE and flag not in _FALSE:
            return None
        exclude_seen = flag in _TRUE
    model = values.get("model")
    genre = values.get("genre")
    if (model is not None and not 0 < len(model) <= route.MAX_NAME) or (
        genre is not None and len(genre) > route.MAX_NAME
    ):
        return None
    return HotRequest(user_id, k, model, exclude_seen, genre)


async def hot_answer(serving: Serving, request: HotRequest) -> tuple[bytes, CacheStatus]:
    """The answer and its ``X-Cache`` value; raises what the route would answer with an error."""
    if serving.memory is not None and serving.reads.on_event_loop:
        cached = memory_hit(
            reads=serving.reads,
            registry=serving.registry,
            catalog=serving.catalog,
            metrics=serving.metrics,
            memory=serving.memory,
            user_id=request.user_id,
            k=request.k,
            model=request.model,
            exclude_seen=request.exclude_seen,
            genre=request.genre,
        )
        if cached is not None:
            return cached, "hit"
    misses = serving.inline_misses
    on_loop = (
        misses is not None
        and serving.reads.on_event_loop
        and serving.cache is serving.memory  # no Redis round trip (or its timeout) on the loop
        and misses.inline(request.model)
    )
    compute = partial(
        _timed,
        partial(
            recommendation_answer,
            reads=serving.reads,
            registry=serving.registry,
            catalog=serving.catalog,
            metrics=serving.metrics,
            cache=serving.cache,
            user_id=request.user_id,
            k=request.k,
            model=request.model,
            exclude_seen=request.exclude_seen,
            genre=request.genre,
            on_loop=on_loop,
        ),
    )
    if on_loop:
        answer, seconds = compute()
    else:
        answer, seconds = await to_thread.run_sync(compute, limiter=serving.limiter)
    if misses is not None:
        misses.record(request.model, seconds)
    return answer


def _timed(compute: Callable[[], _T]) -> tuple[_T, float]:
    started = time.thread_time()
    return compute(), time.thread_time() - started


class RecommendationHotPath:
    """Answers plainly valid recommendation requests and rating writes (``hot_writes``);
    passes everything else on unchanged to ``app`` (the application's middleware stack).

    ``state``: the application's state, whose ``serving`` (set at start-up) it answers from;
    ``metrics``: where it counts what it answers; ``max_body_bytes``: the upload limit, above
    which a body is left to the body guard unread."""

    def __init__(
        self, app: ASGIApp, *, state: State, metrics: ServiceMetrics, max_body_bytes: int
    ) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            serving: Serving | None = getattr(self.state, "serving", None)
            if serving is not None and serving.hot_path:
                started = time.perf_counter()
                if scope["method"] == "GET":
                    if await self._read(serving, scope, send):
                        self._count(scope, started)
                        return
                elif scope["method"] == "POST":
                    passed = await self._write(serving, scope, receive, send)
                    if passed is None:
                        # Not answered: the client went away (the metrics middleware's 500).
                        self._count(scope, started, 200 if scope.get("route") else 500)
                        return
                    receive = passed
        await self.app(scope, receive, send)

    def _count(self, scope: Scope, started: float, status: int = 200) -> None:
        """What the metrics middleware records for a request: method, route template, status
        and seconds."""
        self.metrics.count_request(
            scope["method"], route_template(scope), status, time.perf_counter() - started
        )

    async def _read(self, serving: Serving, scope: Scope, send: Send) -> bool:
        """Whether it answered the request (a recommendation it was sure of)."""
        request = parse_hot_request(scope["path"], scope["query_string"])
        if request is None:
            return False
        try:
            body, cache = await hot_answer(serving, request)
        except Exception:  # the route computes it again and answers the error
            log.debug("hot path passes %s on to the route", scope["path"], exc_info=True)
            return False
        scope["route"] = ROUTE
        await _respond(send, body, [(b"x-cache", cache.encode())])
        return True

    async def _write(
        self, serving: Serving, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """``None`` when it answered a rating write (or the client went away while it read
        the body), else the ``receive`` to hand the route (the body it read, replayed)."""
        user_id = hot_writes.hot_write_user(scope["path"])
        if user_id is None or serving.reads.write_sql is None:
            return receive
        declared = hot_writes.json_content(scope["headers"])
        if declared is None or declared > self.max_body_bytes:
            return receive
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replay = _replay(body, receive)
        request = hot_writes.parse_hot_write(user_id, body)
        if request is None:
            log.debug("hot path leaves %s to the route: not a plain body", scope["path"])
            return replay
        try:
            answer = await hot_writes.hot_write(serving, request)
        except Exception:  # rolled back: the route writes it again or answers the error
            log.debug("hot path passes %s on to the route", scope["path"], exc_info=True)
            return replay
        scope["route"] = WRITE_ROUTE
        await _respond(send, answer, [])
        return None


async def _respond(send: Send, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        *extra,
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` once, then waits on the client as before."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
