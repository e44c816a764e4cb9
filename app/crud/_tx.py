"""One transaction per write: commit on success, roll back everything on any failure.

SQLite has one writer at a time. Threads of one process that collide on its write lock would
each poll for it with SQLite's busy handler, sleeping 1, 2, 5, 10, ... ms between tries, so under
concurrent writes a write could wait far longer than the writes before it took. Writers of one
SQLite database in this process queue on a lock instead and go the moment it is free (other
processes still meet SQLite's own lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy.orm import Session

_SQLITE_WRITERS: dict[str, threading.RLock] = {}
_REGISTRY_LOCK = threading.Lock()


def _writer_lock(session: Session) -> AbstractContextManager[object]:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return nullcontext()
    key = bind.engine.url.render_as_string(hide_password=False)
    lock = _SQLITE_WRITERS.get(key)
    if lock is None:
        with _REGISTRY_LOCK:
            lock = _SQLITE_WRITERS.setdefault(key, threading.RLock())
    return lock


@contextmanager
def write(session: Session) -> Iterator[Session]:
    with _writer_lock(session):
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
