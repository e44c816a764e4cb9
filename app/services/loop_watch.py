"""Event-loop stall watch: what held a serving worker's event loop when a request waited.

Every request of a worker shares ONE event loop (the hot path answers cache hits, misses of
cheap models and SQLite writes on it), so anything that holds the loop for tens of ms (a long
computation, a blocking system call, a garbage collection) is in the p99 of every connection
waiting behind it. A p99 figure alone does not say which; this does:

- a heartbeat task on the loop sleeps ``interval`` and records how late it woke (the loop's lag)
  in the ``deeprec_event_loop_lag_seconds`` histogram;
- a watcher thread checks the heartbeat; when the loop has not ticked for ``stall_ms`` it logs,
  once per stall, the loop thread's Python stack at that moment (a warning), and the stall's
  length when it ends. Garbage collections over ``stall_ms`` are logged with their generation.

Off by default (``DEEPREC_LOOP_STALL_MS`` 0): the watcher wakes every few ms and takes the GIL.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback
from typing import Any

from app.services.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class LoopWatch:
    def __init__(self, stall_ms: float, metrics: ServiceMetrics | None = None) -> None:
        self.stall_s = stall_ms / 1000
        self.interval_s = max(0.001, self.stall_s / 4)
        self.metrics = metrics
        self._beat = time.perf_counter()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._gc_started = 0.0
        self.stalls: list[tuple[float, str]] = []  # (seconds, the stack seen), for tests

    async def _heartbeat(self) -> None:
        while True:
            planned = time.perf_counter() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = time.perf_counter()
            self._beat = now
            if self.metrics is not None:
                self.metrics.loop_lag.observe(max(0.0, now - planned))

    def _watch(self) -> None:
        stalled_at: float | None = None
        stack = ""
        while not self._stop.wait(self.interval_s):
            now = time.perf_counter()
            late = now - self._beat
            if late > self.stall_s and stalled_at is None:
                stalled_at = self._beat
                frame = sys._current_frames().get(self._loop_thread)
                stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
                log.warning("event loop stalled %.0f ms so far, at:\n%s", 1000 * late, stack)
            elif stalled_at is not None and self._beat > stalled_at:
                seconds = self._beat - stalled_at
                self.stalls.append((seconds, stack))
                log.warning("event loop stall ended after %.0f ms", 1000 * seconds)
                stalled_at = None

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        seconds = time.perf_counter() - self._gc_started
        if seconds > self.stall_s:
            log.warning(
                "garbage collection of generation %s took %.0f ms (%s collected)",
                info.get("generation"),
                1000 * seconds,
                info.get("collected"),
            )

    def start(self) -> None:
        """Call on the running loop's thread."""
        self._loop_thread = threading.get_ident()
        self._beat = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._thread.start()
        gc.callbacks.append(self._gc_callback)

    def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._gc_callback in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)
