"""Whose job is it, and is that process still there: the rules a start uses to fail orphans,
with real processes (a finished one, a fresh one) and real temp folders."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from app.crud import get_training_job
from app.db.session import create_session_factory
from app.models import JobStatus, TrainingJob
from app.services.job_owner import (
    TEMP_PREFIX,
    orphan_reason,
    owner_host,
    process_alive,
    reap_orphaned_jobs,
    sweep_stale_temp_dirs,
)
from tests.factories import make_training_job

NOW = datetime.now(UTC)


def job(**fields: object) -> TrainingJob:
    defaults: dict[str, object] = {
        "id": 1,
        "model_type": "ease",
        "status": JobStatus.running,
        "created_at": NOW - timedelta(minutes=5),
        "heartbeat_at": NOW,
        "owner_host": owner_host(),
        "owner_pid": os.getpid(),
    }
    return TrainingJob(**{**defaults, **fields})


def finished_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_a_job_of_this_process_is_orphaned_unless_it_runs_here() -> None:
    assert orphan_reason(job(), stale_s=60, own_jobs={1}) is None
    reason = orphan_reason(job(), stale_s=60, own_jobs=())
    assert reason is not None and "restarted" in reason


def test_a_dead_owner_on_this_host() -> None:
    pid = finished_pid()
    assert not process_alive(pid)
    reason = orphan_reason(job(owner_pid=pid), stale_s=3600)
    assert reason is not None and f"process {pid}" in reason and "is gone" in reason


def test_a_live_owner_is_left_alone_but_a_reused_pid_is_not() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as live:
        try:
            # Started long before the job: the job's owner, alive.
            old_job = job(owner_pid=live.pid, created_at=NOW + timedelta(hours=1))
            assert orphan_reason(old_job, stale_s=60) is None
            # Started after the job was created: the PID was reused by another process.
            reused = orphan_reason(job(owner_pid=live.pid), stale_s=60)
            assert reused is not None and "reused" in reused
        finally:
            live.kill()


def test_another_hosts_job_is_judged_by_its_heartbeat() -> None:
    fresh = job(owner_host="elsewhere/1", owner_pid=1, heartbeat_at=NOW - timedelta(seconds=30))
    assert orphan_reason(fresh, stale_s=120, now=NOW) is None
    stale = job(owner_host="elsewhere/1", owner_pid=1, heartbeat_at=NOW - timedelta(seconds=300))
    reason = orphan_reason(stale, stale_s=120, now=NOW)
    assert reason is not None and "no heartbeat from its owner (elsewhere/1) for 300 s" in reason


def test_reap_fails_only_the_orphans_with_their_reason(sqlite_engine: Engine) -> None:
    factory = create_session_factory(sqlite_engine)
    dead = finished_pid()
    with factory() as session:
        mine = make_training_job(
            session, status=JobStatus.running, owner_host=owner_host(), owner_pid=os.getpid()
        ).id
        gone = make_training_job(
            session, status=JobStatus.queued, owner_host=owner_host(), owner_pid=dead
        ).id
        done = make_training_job(
            session, status=JobStatus.succeeded, owner_host=owner_host(), owner_pid=dead
        ).id
    assert reap_orphaned_jobs(factory, stale_s=60, own_jobs={mine}) == [gone]
    with factory() as session:
        statuses = {
            j: get_training_job(session=session, job_id=j).status  # type: ignore[union-attr]
            for j in (mine, gone, done)
        }
        assert statuses == {
            mine: JobStatus.running,
            gone: JobStatus.failed,
            done: JobStatus.succeeded,
        }
        assert "is gone" in (get_training_job(session=session, job_id=gone).error or "")  # type: ignore[union-attr]


def test_sweep_removes_only_the_temp_folders_of_dead_processes(tmp_path: Path) -> None:
    dead = tmp_path / f"{TEMP_PREFIX}{finished_pid()}-abc"
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def"
    other = tmp_path / "unrelated-1-x"
    for folder in (dead, mine, other):
        folder.mkdir()
        (folder / "ratings.csv").write_text("user_id,item_id,rating\n")
    assert sweep_stale_temp_dirs(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()
