"""Train workers die with the process that started them: a process group stopped on purpose, and
the parent-death signal when the parent is killed outright (real processes, Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from app.services import worker_process
from app.services.job_owner import process_alive

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_ends_the_worker_and_what_it_started() -> None:
    # The worker starts a grandchild of its own and prints its PID.
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = worker_process.spawn([sys.executable, "-c", code], dict(os.environ))
    assert worker.stdout is not None
    grandchild = int(worker.stdout.readline())
    assert os.getpgid(worker.pid) == worker.pid != os.getpgid(0)  # its own process group
    worker_process.stop(worker, grace_s=5)
    assert worker.returncode is not None
    assert wait_gone(grandchild)


def test_a_killed_parent_takes_its_worker_with_it() -> None:
    # A parent that spawns a worker the way the service does, prints its PID, then waits.
    code = (
        "import os, sys, time\n"
        "from app.services import worker_process\n"
        "w = worker_process.spawn([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " dict(os.environ))\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert process_alive(worker)
    parent.kill()  # SIGKILL: no clean-up runs in the parent
    parent.wait()
    assert wait_gone(worker), "the worker outlived its parent"
