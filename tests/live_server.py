"""A real ``deeprec serve`` (uvicorn in its own process) on a free loopback port.

For the tests that must meet the server as its clients do (end to end, hostile input, the Studio
in a browser, answers across workers and replicas): each says what the server serves and with
which settings; how it is started, awaited and stopped is written once, here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "app.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(
    database_url: str,
    data_dir: Path,
    *,
    admin_token: str | None = None,
    required_models: str = "ease",
    **settings: str,
) -> dict[str, str]:
    """The environment of a server over ``database_url`` with its files under ``data_dir``, on
    the CPU with one thread per worker; any other setting as a keyword (``model_sync_s="1"`` is
    ``DEEPREC_MODEL_SYNC_S``). A cache URL of the caller's environment is not inherited: a test
    that wants a shared cache names it (``cache_url=...``)."""
    env = {k: v for k, v in os.environ.items() if k != "DEEPREC_CACHE_URL"}
    env.update(
        {
            "DEEPREC_DATABASE_URL": database_url,
            "DEEPREC_DATA_DIR": str(data_dir),
            "DEEPREC_CHECKPOINT_DIR": str(data_dir / "checkpoints"),
            "DEEPREC_REQUIRED_MODELS": required_models,
            "DEEPREC_DEVICE": "cpu",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
    )
    if admin_token is not None:
        env["DEEPREC_ADMIN_TOKEN"] = admin_token
    env.update({f"DEEPREC_{name.upper()}": value for name, value in settings.items()})
    return env


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""


def wait_ready(
    client: httpx.Client,
    process: subprocess.Popen[bytes],
    timeout: float,
    log: Path | None = None,
) -> None:
    """Until ``/readyz`` answers 200; an AssertionError (with the log's tail) when the server
    exits first or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with code {process.returncode}\n{_tail(log)}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"the server was not ready after {timeout} s\n{_tail(log)}")


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Terminate ``process`` (uvicorn shuts down gracefully), killing it if it does not exit."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client of this server (30 s timeout unless given)."""
        return httpx.Client(base_url=self.url, **{"timeout": 30, **kwargs})

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far (VmHWM), in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


@contextmanager
def running_server(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    workers: int = 1,
    access_log: bool = False,
    ready_timeout: float = 120,
) -> Iterator[LiveServer]:
    """``deeprec serve`` with ``env``, ready (``/readyz`` 200) when this yields, stopped after.
    Its output goes to ``log_dir/server-PORT.log``."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    command = [*CLI, "serve", "--port", str(port)]
    if workers != 1:
        command += ["--workers", str(workers)]
    if not access_log:
        command.append("--no-access-log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    try:
        with server.client() as client:
            wait_ready(client, process, ready_timeout, log)
        yield server
    finally:
        stop(process)
