"""SIGTERM as an exception in a command-line process, so a stop runs its clean-up.

``docker stop``, systemd and ``kill`` send SIGTERM; Python's default is to die on the spot,
which would leave a training job ``running`` and a worker training on. With the handler, the main
thread raises :class:`Terminated` wherever it waits: ``finally`` blocks stop the worker and remove
temp files, the job is marked failed ("stopped by SIGTERM"), and the command exits 143.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_CODE = 128 + int(signal.SIGTERM)


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    # Once is enough: a second SIGTERM during clean-up must not interrupt the clean-up.
    signal.signal(signum, signal.SIG_IGN)
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: a
    no-op, only the main thread may handle signals); the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
