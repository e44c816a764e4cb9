"""Logging for the service: one line per record, to stderr, at the configured level.

``configure_logging`` is idempotent (the lifespan and ``deeprec serve`` may both call it) and
leaves uvicorn's own access log alone, only aligning its level.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send ``app`` and ``ml`` records to stderr at ``level``; safe to call more than once."""
    root = logging.getLogger()
    if not root.handlers:  # the CLI's basicConfig (or a test runner) may have set one up
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    for name in ("app", "ml"):
        logging.getLogger(name).setLevel(level)
