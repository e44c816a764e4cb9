"""Keep the served models in step with the database's active versions.

With several uvicorn workers (or several replicas), a retrain or a rollback happens in ONE process;
the others learn about it here: every ``interval_s`` each process reads the active
``model_version`` rows and loads (sha256 verified) those that differ from what it serves, then
swaps them in atomically. A version that fails to load is not retried until it changes again;
the process keeps serving what it had.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.crud import list_active_model_versions
from app.services.registry import ModelRegistry, version_kwargs
from ml.registry import BY_NAME

log = logging.getLogger(__name__)


class ActiveVersionSync:
    def __init__(
        self,
        registry: ModelRegistry,
        session_factory: Callable[[], Session],
        interval_s: float,
    ) -> None:
        self.registry = registry
        self.session_factory = session_factory
        self.interval_s = interval_s
        self._failed: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync_once(self) -> list[str]:
        """Load every active version not served yet; returns the model types swapped."""
        with self.session_factory() as session:
            active = list_active_model_versions(session=session)
        swapped = []
        for row in active:
            served = self.registry.find(row.model_type)
            if row.model_type not in BY_NAME or row.id in self._failed:
                continue
            if served is not None and served.version == row.version:
                continue
            try:
                self.registry.load_and_swap(**version_kwargs(row))
            except Exception as exc:
                self._failed.add(row.id)
                log.error("cannot load %s version %s: %s", row.model_type, row.version, exc)
                continue
            swapped.append(row.model_type)
        return swapped

    def _loop(self) -> None:
        last_error: str | None = None
        while not self._stop.wait(self.interval_s):
            try:
                self.sync_once()
            except SQLAlchemyError as exc:
                # One line, once per distinct cause (not the SQL statement every interval).
                reason = database_problem(exc)
                if reason != last_error:
                    log.warning("model version sync: %s (retrying quietly)", reason)
                    last_error = reason
                continue
            except Exception:
                log.exception("model version sync failed")
                continue
            if last_error is not None:
                log.info("model version sync: the database answers again")
                last_error = None

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="model-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def database_problem(exc: SQLAlchemyError) -> str:
    """A one-line reason for a failed read: a missing schema is named as such."""
    original = getattr(exc, "orig", None) or exc
    text = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return f"the database has no schema ({text}): run `deeprec db upgrade`"
    return f"the database did not answer: {text}"
