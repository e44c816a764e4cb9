"""Who runs a training job, and whether that process is still there.

Every job records its owner (``owner_host``, ``owner_pid``: the process that runs it, the server
or ``deeprec bootstrap``) and a heartbeat the owner beats while it waits on the worker. Any start
(``deeprec bootstrap``, the server's lifespan, a retrain request) fails the jobs whose owner is
gone, with the reason in ``error``, so a killed start-up never blocks the next one:

- owner on this host: gone when its PID no longer runs, or runs a process that started after the
  job's heartbeat (the PID was reused: containers restart their PIDs from 1), or is this very
  process (which holds no such job at start);
- owner on another host: gone when its heartbeat is older than ``job_stale_s``.

The "host" is the hostname plus the PID namespace (``/proc/self/ns/pid``), because PIDs are only
comparable inside one namespace: a container on the host network shares the hostname.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from app.crud import InvalidTransitionError, active_jobs, mark_failed
from app.models import TrainingJob

log = logging.getLogger(__name__)

TEMP_PREFIX = "deeprec-retrain-"


def owner_host() -> str:
    """This process's host: the hostname, plus the PID namespace where Linux names one."""
    host = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return host[:255]
    return f"{host}/{namespace.removeprefix('pid:').strip('[]')}"[:255]


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:  # a zombie (killed, not yet reaped by its parent) runs nothing
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def process_started_at(pid: int) -> datetime | None:
    """When process ``pid`` started (Linux ``/proc``), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        hertz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return datetime.now(UTC) - timedelta(seconds=uptime - ticks / hertz)


def orphan_reason(
    job: TrainingJob, *, stale_s: float, own_jobs: Collection[int] = (), now: datetime | None = None
) -> str | None:
    """Why ``job``'s owner is gone, or None while it may still be running it."""
    now = now or datetime.now(UTC)
    beat = job.heartbeat_at or job.started_at or job.created_at
    here = owner_host()
    if job.owner_host == here and job.owner_pid is not None:
        pid = job.owner_pid
        who = f"process {pid} on {socket.gethostname()}"
        if pid == os.getpid():
            if job.id in own_jobs:
                return None
            return f"interrupted: {who} restarted and no longer runs the job"
        if not process_alive(pid):
            return f"interrupted: {who}, which ran the job, is gone"
        started = process_started_at(pid)
        # One second of slack: /proc's start time is rounded to clock ticks.
        if started is not None and started > job.created_at + timedelta(seconds=1):
            return f"interrupted: {who}, which ran the job, is gone (its PID was reused)"
        return None
    silent = (now - beat).total_seconds()
    if silent > stale_s:
        where = job.owner_host or "an unknown host"
        return f"interrupted: no heartbeat from its owner ({where}) for {silent:.0f} s"
    return None


def reap_orphaned_jobs(
    session_factory: Callable[[], Session],
    *,
    stale_s: float,
    model_type: str | None = None,
    own_jobs: Collection[int] = (),
) -> list[int]:
    """Fail every queued or running job whose owner is gone; returns their ids."""
    reaped: list[int] = []
    with session_factory() as session:
        for job in active_jobs(session=session, model_type=model_type):
            reason = orphan_reason(job, stale_s=stale_s, own_jobs=own_jobs)
            if reason is None:
                continue
            try:
                mark_failed(session=session, job_id=job.id, error=reason)
            except InvalidTransitionError:  # closed by its owner meanwhile
                continue
            log.warning("training job %d (%s) failed: %s", job.id, job.model_type, reason)
            reaped.append(job.id)
    return reaped


def temp_dir(pid: int | None = None) -> Path:
    """A new temporary folder for a job's exported ratings, named after the owning PID so a
    later start can remove the ones a killed process left behind."""
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{pid or os.getpid()}-"))


def sweep_stale_temp_dirs(root: Path | None = None, *, min_age_s: float = 0.0) -> list[Path]:
    """Remove the job temp folders whose owning process is gone (killed with SIGKILL)."""
    root = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    for path in root.glob(f"{TEMP_PREFIX}*"):
        pid_text = path.name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
        if not pid_text.isdigit() or not path.is_dir():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or process_alive(pid):
            continue
        try:
            if time.time() - path.stat().st_mtime < min_age_s:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d temp folder(s) left by stopped jobs", len(removed))
    return removed
