"""Fill the answer cache after a model version is swapped in, so the first requests are hits.

A swap changes the model part of every answer key: until users come back, every request would be
a miss. The :class:`Precomputer` listens to the registry's swaps and, in ONE background thread,
computes the default answer (k=10, seen items excluded, no genre) of the new version for the most
recently active users (``DEEPREC_CACHE_PRECOMPUTE_USERS``), ``BATCH_USERS`` users folded in by one
call of the model (:func:`precompute_answers`: the RBM's 943 ML-100K users cost about a quarter
of the CPU of one call each). It must not starve the requests: after each batch it sleeps as long
as that batch took (at most half a core, and the GIL is free half of the time), and it drops a
run as soon as a newer version of the same model type arrives.

With SQLite and the in-process cache only (where the hot path computes misses on the event loop),
each batch of answers is computed ON the event loop, one batch per callback, the thread only
pacing them: computed in the thread it waited for the GIL each time it gave it up while the loop
answered requests (every SQLite call, most NumPy and torch kernels), which made each user cost
many times its CPU and kept handing the GIL back and forth with the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from sqlalchemy.orm import Session

from app.crud.serving import HotReads, most_active_users
from app.services.answer_cache import AnswerCache
from app.services.catalog import ItemCatalog
from app.services.metrics import ServiceMetrics
from app.services.recommendations import precompute_answers
from app.services.registry import LoadedModel
from ml.inference import Recommender

log = logging.getLogger(__name__)

DEFAULT_K = 10
# Users folded in by one call of the model: the RBM's cost per user falls from about 2 ms alone
# to about 0.5 ms in a batch of 8, while a batch holds the event loop for a few ms at most.
BATCH_USERS = 8
# Sleep this many times as long as the last user took: the thread's share of a core is at most
# 1 / (1 + PAUSE_RATIO).
PAUSE_RATIO = 1.0
MIN_PAUSE_S = 0.0005
# How long the thread waits for the event loop to run one user's callback (a stopped loop).
LOOP_WAIT_S = 30.0


class Precomputer:
    def __init__(
        self,
        *,
        cache: AnswerCache,
        reads: HotReads,
        session_factory: Callable[[], Session],
        catalog: ItemCatalog,
        metrics: ServiceMetrics,
        max_users: int,
        k: int = DEFAULT_K,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """``loop``: the event loop to compute each answer on (``reads.on_event_loop`` and the
        cache in this process only), else ``None``: computed in the precompute thread."""
        self.loop = loop
        self.cache = cache
        self.reads = reads
        self.session_factory = session_factory
        self.catalog = catalog
        self.metrics = metrics
        self.max_users = max_users
        self.k = k
        self._pending: dict[str, LoadedModel] = {}  # model type -> newest version to fill for
        self._cond = threading.Condition()
        self._stopping = False
        self._running = False
        self._thread: threading.Thread | None = None
        self.completed: list[tuple[str, str, int]] = []  # (model type, version, answers computed)

    def on_swap(self, entry: LoadedModel) -> None:
        """Registry listener: queue ``entry`` (replacing an older queued version of its type)."""
        if self.max_users <= 0 or not isinstance(entry.model, Recommender):
            return
        with self._cond:
            if self._stopping:
                return
            self._pending[entry.model_type] = entry
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="answer-precompute", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._running

    def _superseded(self, entry: LoadedModel) -> bool:
        with self._cond:
            return self._stopping or entry.model_type in self._pending

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                model_type = next(iter(self._pending))
                entry = self._pending.pop(model_type)
                self._running = True
            try:
                self.fill(entry)
            except Exception:
                log.exception("precomputing answers for %s failed", model_type)
            finally:
                with self._cond:
                    self._running = False

    @staticmethod
    def _on_loop(loop: asyncio.AbstractEventLoop, compute: Callable[[], int]) -> int:
        """``compute()`` run as one callback of ``loop``; its result or its exception."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(compute())
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)  # RuntimeError once the loop is closed: the run ends
        try:
            return future.result(timeout=LOOP_WAIT_S)
        finally:
            future.cancel()  # not run yet (a stopped loop): never run

    def fill(self, entry: LoadedModel) -> int:
        """Compute and cache the default answer of ``entry`` for the most active users."""
        started = time.perf_counter()
        with self.session_factory() as session:
            users = most_active_users(session=session, limit=self.max_users)
        computed = 0
        for start in range(0, len(users), BATCH_USERS):
            if self._superseded(entry):
                log.info("precompute for %s %s: superseded", entry.model_type, entry.version)
                return computed
            began = time.perf_counter()
            compute = partial(
                precompute_answers,
                reads=self.reads,
                entry=entry,
                catalog=self.catalog,
                metrics=self.metrics,
                cache=self.cache,
                user_ids=users[start : start + BATCH_USERS],
                k=self.k,
                on_loop=self.loop is not None,
            )
            done = compute() if self.loop is None else self._on_loop(self.loop, compute)
            if done:
                computed += done
                self.metrics.precomputed.labels(entry.model_type).inc(done)
            time.sleep(max(MIN_PAUSE_S, PAUSE_RATIO * (time.perf_counter() - began)))
        self.completed.append((entry.model_type, entry.version, computed))
        self.metrics.precompute_runs.labels(entry.model_type).inc()
        log.info(
            "precomputed %d answers of %s %s for %d active users in %.1f s",
            computed,
            entry.model_type,
            entry.version,
            len(users),
            time.perf_counter() - started,
        )
        return computed
