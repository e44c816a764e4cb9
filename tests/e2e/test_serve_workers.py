"""``deeprec serve --workers 2`` comes up while both cores are busy.

uvicorn's supervisor pings every worker and kills one that does not answer within
``timeout_worker_healthcheck``. A worker importing torch on a loaded machine used to miss
uvicorn's 5 s default and was killed and restarted for ever; ``deeprec serve`` now gives it
``DEEPREC_WORKER_HEALTHCHECK_S`` (120 s). Busy-loop processes load the CPU while it starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.db import migrate
from tests.live_server import ROOT, free_port, stop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUSY = "while True:\n    pass\n"


def test_two_workers_come_up_on_a_busy_machine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deeprec.db'}"
    migrate.upgrade(url)  # no model: the workers import everything and load nothing
    env = {
        **os.environ,
        "DEEPREC_DATABASE_URL": url,
        "DEEPREC_DATA_DIR": str(tmp_path),
        "DEEPREC_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
    }
    busy = [
        subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(max(2, os.cpu_count() or 2))
    ]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        text = ""
        while time.monotonic() < deadline and server.poll() is None:
            text = log_path.read_text(errors="replace")
            if text.count("Application startup complete") >= 2:
                break
            time.sleep(1)
        assert text.count("Application startup complete") >= 2, text[-3000:]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert client.get("/healthz").status_code == 200
        time.sleep(3)  # a few more supervisor pings, still under load
        text = log_path.read_text(errors="replace")
        workers = set(re.findall(r"Started server process \[(\d+)\]", text))
        assert len(workers) == 2, text[-3000:]  # none was killed and replaced
        assert "died" not in text and "not ready in time" not in text, text[-3000:]
    finally:
        for process in busy:
            process.kill()
            process.wait()
        stop(server)
