"""Retrain jobs without the worker process: error lines, export, conflicts, recovery, the
not-worse rule. (The full path, subprocess included, runs in tests/app/api/test_admin.py and
tests/e2e.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.core.config import Settings
from app.crud import create_training_job, get_training_job, register_model_version
from app.db.session import create_session_factory
from app.models import JobStatus
from app.services.job_owner import owner_host
from app.services.retrain import (
    RetrainConflictError,
    RetrainError,
    RetrainManager,
    RetrainRequest,
    error_line,
    export_ratings,
    train_command,
)
from ml.data.movielens import load_ratings_path
from ml.registry import SPECS
from tests.factories import make_item, make_rating, make_user


def manager(engine: Engine, tmp_path: Path, **settings: object) -> RetrainManager:
    return RetrainManager(
        settings=Settings(
            data_dir=tmp_path,
            database_url=str(engine.url),
            **settings,  # type: ignore[arg-type]
        ),
        session_factory=create_session_factory(engine),
        registry=None,
    )


def test_error_line_takes_the_commands_own_reason() -> None:
    stderr = "2026 INFO loading\nerror: unknown parameter(s) ['x']; known: ['l2']\n"
    assert error_line(stderr, 2) == "error: unknown parameter(s) ['x']; known: ['l2']"
    boxed = "Usage: deeprec train\n╭─ Error ──╮\n│ No such command 'nope'. │\n╰──────────╯\n"
    assert error_line(boxed, 2) == "train command exited with code 2: No such command 'nope'."
    assert error_line("", -9) == "train command exited with code -9"


def test_export_writes_every_rating_in_a_loadable_file(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    factory = create_session_factory(sqlite_engine)
    with factory() as session:
        with pytest.raises(RetrainError, match="no ratings"):
            export_ratings(session, tmp_path / "empty.csv")
        users = [make_user(session) for _ in range(3)]
        items = [make_item(session) for _ in range(4)]
        for u, user in enumerate(users):
            for item in items[u:]:
                make_rating(session, user=user, item=item, rating=1.5 + u)
        assert export_ratings(session, tmp_path / "ratings.csv") == 9
    loaded = load_ratings_path(tmp_path / "ratings.csv").ratings
    assert len(loaded) == 9
    assert sorted(loaded["rating"].unique().tolist()) == [1.5, 2.5, 3.5]
    assert set(loaded["user_id"]) == {u.id for u in users}


def test_one_active_job_per_model_type(sqlite_engine: Engine, tmp_path: Path) -> None:
    jobs = manager(sqlite_engine, tmp_path)
    first = jobs.create_job(RetrainRequest("ease", {"l2": 3}))
    assert first.status == JobStatus.queued
    with pytest.raises(RetrainConflictError, match=f"job {first.id}"):
        jobs.create_job(RetrainRequest("ease", {}))
    other = jobs.create_job(RetrainRequest("popularity", {}))  # another type may run
    assert other.id != first.id
    # A live process's jobs are left alone; a dead one's are failed and free the slot.
    assert jobs.recover_interrupted() == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with jobs.session_factory() as session:
        job = get_training_job(session=session, job_id=first.id)
        assert job is not None
        assert (job.owner_host, job.owner_pid) == (owner_host(), os.getpid())
        assert job.heartbeat_at is not None
        job.owner_pid = dead.pid
        session.commit()
    assert jobs.recover_interrupted() == 1
    with jobs.session_factory() as session:
        job = get_training_job(session=session, job_id=first.id)
        assert job is not None and job.status == JobStatus.failed
        assert f"process {dead.pid} on {socket.gethostname()}" in (job.error or "")
        assert "interrupted" in (job.error or "")
    jobs.create_job(RetrainRequest("ease", {}))


def test_run_job_records_the_failure_reason(sqlite_engine: Engine, tmp_path: Path) -> None:
    jobs = manager(sqlite_engine, tmp_path)
    with jobs.session_factory() as session:
        job = create_training_job(session=session, model_type="ease", params={})
    finished = jobs.run_job(job.id, RetrainRequest("ease", {}))
    assert finished.status == JobStatus.failed
    assert "no ratings to train on" in (finished.error or "")


def test_not_worse_rule_blocks_a_worse_model(sqlite_engine: Engine, tmp_path: Path) -> None:
    jobs = manager(sqlite_engine, tmp_path, retrain_require_not_worse=True)
    with jobs.session_factory() as session:
        register_model_version(
            session=session,
            model_type="ease",
            checkpoint_path="/nowhere",
            metrics={"ndcg@10_all": 0.4},
            version="v1",
            activate=True,
        )
        jobs._check_not_worse(session, "ease", {"ndcg@10_all": 0.45})
        with pytest.raises(RetrainError, match=r"0\.3000 is below the active version v1's 0\.4000"):
            jobs._check_not_worse(session, "ease", {"ndcg@10_all": 0.3})


def test_every_model_type_has_its_train_command_line() -> None:
    """The worker's command line names the family's `deeprec train` words, with the database's
    ratings only for the models that train on ratings. (The CLI refuses to start when a declared
    family has no command: tests/app/cli/test_train_commands.py.)"""
    out = Path("/ckpt/v1")
    for spec in SPECS:
        ratings = Path("/tmp/r.csv") if spec.uses_ratings else None
        line = train_command("py", RetrainRequest(spec.name, {"a": 1}, epochs=2), ratings, out)
        assert line[: 4 + len(spec.train_words)] == [
            "py",
            "-m",
            "app.cli.main",
            "train",
            *spec.train_words,
        ]
        assert ("--ratings" in line) == spec.uses_ratings
        assert line[-6:] == ["--out", "/ckpt/v1", "--params-json", '{"a": 1}', "--epochs", "2"]
