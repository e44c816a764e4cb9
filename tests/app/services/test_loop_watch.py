"""The loop watch names what held the event loop: a blocking call shows in the stack it logs."""

from __future__ import annotations

import asyncio
import time

from app.services.loop_watch import LoopWatch
from app.services.metrics import ServiceMetrics


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a blocking call, as an fsync or a long computation on the loop is


def test_a_blocked_loop_is_reported_with_its_stack() -> None:
    metrics = ServiceMetrics()
    watch = LoopWatch(stall_ms=20, metrics=metrics)

    async def scenario() -> None:
        watch.start()
        await asyncio.sleep(0.05)  # a few healthy heartbeats
        hold_the_loop(0.2)
        await asyncio.sleep(0.05)  # the heartbeat runs again: the stall ends

    try:
        asyncio.run(scenario())
    finally:
        watch.stop()
    assert watch.stalls, "the 200 ms block was not seen"
    seconds, stack = max(watch.stalls)
    assert seconds >= 0.15
    assert "hold_the_loop" in stack
    lag = metrics.registry.get_sample_value("deeprec_event_loop_lag_seconds_count")
    assert lag is not None and lag > 0
