"""A start-up chain killed part-way (SIGKILL, SIGTERM), with real processes: the next start is
ready, the interrupted job is ``failed`` with its reason, no worker trains on as an orphan, and
no exported ratings are left in the temp folder.

Each test loads a small planted data set into a fresh SQLite file and trains the rating RBM
with a huge epoch count, so the job is surely mid-training when the signal arrives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.crud import bulk_load, get_training_job
from app.db import migrate
from app.db.session import create_db_engine, create_session_factory
from app.models import JobStatus, TrainingJob
from app.services.job_owner import TEMP_PREFIX, process_alive
from tests.conftest import planted_frame
from tests.factories import ratings_dataset
from tests.live_server import CLI, ROOT, free_port, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "interrupt-token"
LONG = ["--models", "rbm", "--epochs", "100000", "--no-progress"]


class Site:
    """A data folder, a database with planted ratings and the environment of every command."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"sqlite:///{root / 'deeprec.db'}"
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        migrate.upgrade(self.url)
        self.engine = create_db_engine(self.url)
        self.session_factory = create_session_factory(self.engine)
        self.started: list[subprocess.Popen[bytes]] = []
        with self.session_factory() as session:
            bulk_load(session=session, dataset=ratings_dataset(planted_frame()))
        self.env = {
            **os.environ,
            "DEEPREC_DATABASE_URL": self.url,
            "DEEPREC_DATA_DIR": str(root),
            "DEEPREC_DEVICE": "cpu",
            "DEEPREC_ADMIN_TOKEN": TOKEN,
            "DEEPREC_REQUIRED_MODELS": "rbm",
            "DEEPREC_JOB_HEARTBEAT_S": "0.5",
            "TMPDIR": str(self.tmp),  # the exported ratings go here, not to the shared /tmp
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.root / log).open("wb")
        process = subprocess.Popen(
            [*CLI, *args], env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
        self.started.append(process)
        return process

    def close(self) -> None:
        """Kill what a failed test left running (its workers follow: parent-death signal)."""
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.engine.dispose()

    def find_job(self, job_id: int) -> TrainingJob | None:
        with self.session_factory() as session:
            return get_training_job(session=session, job_id=job_id)

    def job(self, job_id: int) -> TrainingJob:
        job = self.find_job(job_id)
        assert job is not None
        return job

    def temp_dirs(self) -> list[Path]:
        return sorted(self.tmp.glob(f"{TEMP_PREFIX}*"))

    def log(self, name: str) -> str:
        return (self.root / name).read_text(errors="replace")[-3000:]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    try:
        yield site
    finally:
        site.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def train_workers(pid: int) -> list[int]:
    """The children of ``pid`` that run ``deeprec train`` (Linux /proc: each thread lists the
    children it started)."""
    kids: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += (task / "children").read_text().split()
        except OSError:
            continue
    workers = []
    for child in kids:
        try:
            words = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in words:
            workers.append(int(child))
    return workers


def training(site: Site, job_id: int, owner: subprocess.Popen[bytes], log: str) -> int:
    """Wait until job ``job_id`` has finished an epoch in its worker; return the worker's PID."""

    def epoch_recorded() -> bool:
        assert owner.poll() is None, site.log(log)
        job = site.find_job(job_id)
        return job is not None and "epoch" in (job.progress or {})

    wait_for("an epoch of the job", epoch_recorded)
    job = site.job(job_id)
    assert job.status == JobStatus.running
    assert job.owner_pid == owner.pid
    workers = train_workers(owner.pid)
    assert len(workers) == 1, workers
    return workers[0]


def assert_gone(pid: int, timeout: float = 20.0) -> None:
    wait_for(f"process {pid} to end", lambda: not process_alive(pid), timeout)


def test_sigkill_of_bootstrap_then_the_server_starts_ready(site: Site) -> None:
    first = site.run("bootstrap", "--models", "rbm", "--epochs", "2", "--no-progress")
    assert first.returncode == 0, first.stderr[-2000:]
    boot = site.start("bootstrap", "--force", *LONG, log="boot.log")
    worker = training(site, 2, boot, "boot.log")
    assert site.temp_dirs(), "the job's exported ratings"
    boot.send_signal(signal.SIGKILL)
    boot.wait()
    # The parent-death signal stops the worker: nothing trains on under PID 1.
    assert_gone(worker)
    assert site.job(2).status == JobStatus.running  # nobody could close it: the next start does
    assert site.temp_dirs(), "a kill -9 leaves its temp folder; the next start sweeps it"

    port = free_port()
    server = site.start("serve", "--port", str(port), "--no-access-log", log="serve.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_ready(client, server, timeout=120)
            body = client.get("/v1/admin/jobs/2", headers={"Authorization": f"Bearer {TOKEN}"})
            assert body.status_code == 200
            job = body.json()
            assert job["status"] == "failed"
            assert f"process {boot.pid}" in job["error"] and "is gone" in job["error"]
            assert job["progress"]["epoch"] >= 1  # the last progress the worker recorded
            assert site.temp_dirs() == []
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sigterm_of_bootstrap_stops_it_within_seconds(site: Site) -> None:
    boot = site.start("bootstrap", *LONG, log="boot.log")
    worker = training(site, 1, boot, "boot.log")
    signalled = time.monotonic()
    boot.send_signal(signal.SIGTERM)
    assert boot.wait(timeout=30) == 143, site.log("boot.log")
    assert time.monotonic() - signalled < 30  # loose: "within seconds" on a busy machine
    assert_gone(worker)
    job = site.job(1)
    assert job.status == JobStatus.failed
    assert job.error == "stopped by SIGTERM"
    assert "error: stopped by SIGTERM" in site.log("boot.log")
    assert site.temp_dirs() == []
    # The next start is not blocked by the stopped job.
    again = site.run("bootstrap", "--models", "rbm", "--epochs", "2", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trained and activated" in again.stdout
    assert site.job(2).status == JobStatus.succeeded


def test_killed_server_takes_its_trainer_with_it(site: Site) -> None:
    first = site.run("bootstrap", "--models", "rbm", "--epochs", "2", "--no-progress")
    assert first.returncode == 0, first.stderr[-2000:]
    port = free_port()
    admin = {"Authorization": f"Bearer {TOKEN}"}
    server = site.start("serve", "--port", str(port), "--no-access-log", log="serve.log")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_ready(client, server, timeout=120)
        queued = client.post(
            "/v1/admin/retrain", json={"model": "rbm", "epochs": 10000}, headers=admin
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        worker = training(site, job_id, server, "serve.log")
        shown = client.get(f"/v1/admin/jobs/{job_id}", headers=admin).json()
        assert shown["progress"]["epochs"] == 10000 and shown["progress"]["epoch"] >= 1
        assert shown["owner_pid"] == server.pid and shown["heartbeat_at"]
    server.send_signal(signal.SIGKILL)
    server.wait()
    assert_gone(worker)
    assert site.temp_dirs()
    again = site.run("bootstrap", "--models", "rbm", "--no-progress")  # already active: no work
    assert again.returncode == 0, again.stderr[-2000:]
    job = site.job(job_id)
    assert job.status == JobStatus.failed and "is gone" in (job.error or "")
    assert site.temp_dirs() == []
