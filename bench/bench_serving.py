"""Serving cost: a real uvicorn on loopback driven by wrk at 32 concurrent connections.

Self-contained: a fresh SQLite file with MovieLens-100K, an EASE checkpoint and a rating-RBM
checkpoint (2 epochs: serving cost does not depend on how long the model trained) registered as
the active versions, then ``deeprec serve`` in a subprocess. In ONE run of that server, wrk
measures ``GET /healthz`` and ``GET /v1/users/{id}/recommendations?k=10`` with a Lua script that
rotates the user id over all 943 users (each request reads that user's ratings from the database
and folds them into the model), for each model. Writes bench/results/serving.{md,json}.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``); the benchmark installs it with apt-get when
it is missing and it runs as root, else it stops and says how. Settings (environment):
``BENCH_SERVING_SECONDS`` (per wrk run, default 15), ``BENCH_SERVING_CONFIGS`` (comma-separated
``WORKERSxTHREADS``: uvicorn workers and ``DEEPREC_INFERENCE_THREADS``, one server run each,
default ``1x1,1x40,2x1``: the service's default, the same worker with anyio's 40 threads as the
baseline, and two workers), ``BENCH_SERVING_CONNECTIONS`` (default 32).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import markdown_table, write_result
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.fetch import load_dataset
from ml.models.rbm import RBMConfig
from ml.training.base import TrainingOptions
from ml.training.baselines import EASETrainingConfig, train_ease
from ml.training.rbm import train_rbm_checkpoint
from tests.conftest import TEST_DATA_DIR

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.40
TARGET_P99_MS = 50.0

# wrk Lua: rotate the user id per request (each wrk thread starts at its own offset), and print
# a JSON summary from done() so nothing has to be scraped from wrk's text output.
LUA_TEMPLATE = """
local n_users = {n_users}
local path = "{path}"
local counter = 0
local threads = {{}}
function setup(thread)
  thread:set("offset", #threads * 7919)  -- a global in that thread's Lua state
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local uid = ((counter + (offset or 0)) % n_users) + 1
  local target = string.gsub(path, "{{uid}}", tostring(uid))
  return wrk.format("GET", target)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log.info("wrk is missing: installing it with apt-get")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("bench_serving needs wrk: run `sudo apt-get install -y wrk` (Debian/Ubuntu)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(root: Path) -> tuple[str, int, dict[str, str]]:
    """Database with ml-100k and two active checkpoints; returns (url, users, versions)."""
    from app.crud import bulk_load, register_model_version
    from app.db import migrate
    from app.db.session import create_db_engine, create_session_factory

    dataset = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    url = f"sqlite:///{root / 'deeprec.db'}"
    migrate.upgrade(url)
    trained = {
        "ease": train_ease(dataset, EASETrainingConfig(l2=800.0)),
        "rbm": train_rbm_checkpoint(
            dataset, RBMConfig(epochs=2), TrainingOptions(device="cpu", progress=False)
        ),
    }
    engine = create_db_engine(url)
    versions = {}
    with create_session_factory(engine)() as session:
        bulk_load(session=session, dataset=dataset)
        for model_type, checkpoint in trained.items():
            path = save_checkpoint(checkpoint, root / "checkpoints" / model_type)
            row = register_model_version(
                session=session,
                model_type=model_type,
                checkpoint_path=str(path),
                sha256=checkpoint_sha256(path),
                metrics=checkpoint.metrics,
                version="bench",
                activate=True,
            )
            versions[model_type] = row.version
    engine.dispose()
    return url, int(dataset.ratings["user_id"].max()), versions


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += _descendants(int(child))
    return found


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server and its worker processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in _descendants(pid):
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def run_wrk(
    wrk: str,
    base: str,
    path: str,
    n_users: int,
    seconds: int,
    connections: int,
    root: Path,
    server_pid: int,
) -> dict[str, Any]:
    script = root / f"wrk-{abs(hash(path))}.lua"
    script.write_text(LUA_TEMPLATE.format(n_users=n_users, path=path))
    threads = min(2, connections)
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(script), base,
    ]  # fmt: skip
    cpu_before = server_cpu_seconds(server_pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu_seconds = server_cpu_seconds(server_pid) - cpu_before
    line = next(x for x in output.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "path": path,
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["status_errors"],
        "socket_errors": errors,
        "server_cpu_ms_per_request": 1000 * cpu_seconds / max(raw["requests"], 1),
        "command": " ".join([*command[:-3], "-s", "rotate-users.lua", base + path]),
    }


def serve_and_measure(
    wrk: str,
    root: Path,
    url: str,
    n_users: int,
    config: tuple[int, int],
    seconds: int,
    connections: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """One server run: /healthz, then recommendations from each model, all on the same server."""
    workers, threads = config
    port = free_port()
    env = {
        **os.environ,
        "DEEPREC_DATABASE_URL": url,
        "DEEPREC_DATA_DIR": str(root),
        "DEEPREC_CHECKPOINT_DIR": str(root / "checkpoints"),
        "DEEPREC_REQUIRED_MODELS": "ease,rbm",
        "DEEPREC_DEVICE": "cpu",
        "DEEPREC_LOG_LEVEL": "WARNING",
        "DEEPREC_INFERENCE_THREADS": str(threads),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    server_cmd = [
        sys.executable, "-m", "app.cli.main", "serve", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with (root / f"server-{workers}.log").open("wb") as log_file:
        process = subprocess.Popen(
            server_cmd, env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not become ready: see {root}/server.log")
                time.sleep(0.3)
            sample = client.get("/v1/users/1/recommendations", params={"k": 10}).json()
        # Warm-up (every worker: page cache, catalogue snapshot, code paths), not measured.
        run_wrk(wrk, base, "/v1/users/{uid}/recommendations?k=10", n_users, 2, 8, root, process.pid)
        runs = {
            "healthz": run_wrk(
                wrk, base, "/healthz", n_users, seconds, connections, root, process.pid
            ),
        }
        for model in ("ease", "rbm"):
            runs[f"recommendations ({model})"] = run_wrk(
                wrk,
                base,
                f"/v1/users/{{uid}}/recommendations?k=10&model={model}",
                n_users,
                seconds,
                connections,
                root,
                process.pid,
            )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return runs, sample


def stage_breakdown(url: str, root: Path) -> dict[str, dict[str, float]]:
    """Median CPU time (ms, this thread) of each step of a recommendation, in-process, over
    every user: where the endpoint's own work goes (HTTP and framework costs are the rest)."""
    import numpy as np

    from app.crud import list_active_model_versions
    from app.db.session import create_db_engine, create_session_factory
    from app.services.recommendations import user_ratings
    from app.services.registry import ModelRegistry
    from ml.evaluation.evaluate import top_k

    engine = create_db_engine(url)
    sessions = create_session_factory(engine)
    registry = ModelRegistry("cpu")
    with sessions() as session:
        for row in list_active_model_versions(session=session):
            registry.load_and_swap(
                model_type=row.model_type, version=row.version, checkpoint_path=row.checkpoint_path
            )
    with sessions() as session:
        users = [int(u) for u in range(1, 944)]
        history = {u: user_ratings(session, u) for u in users}
    clock = time.thread_time_ns
    result = {}
    for model_type in ("ease", "rbm"):
        model = registry.get(model_type).model
        steps: dict[str, list[int]] = {
            "db read (session + query)": [],
            "csr row": [],
            "model score": [],
            "top-k": [],
            "Recommender.recommend": [],
        }
        for user in users:
            t0 = clock()
            with sessions() as session:
                user_ratings(session, user)
            t1 = clock()
            rows = model.rows_from_ratings(history[user])
            t2 = clock()
            scores = model.scorer.score(rows)
            t3 = clock()
            top_k(np.asarray(scores, dtype=np.float64), 10, exclude=rows)
            t4 = clock()
            model.recommend(history[user], 10)
            t5 = clock()
            for key, value in zip(
                steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                steps[key].append(value)
        result[model_type] = {k: float(np.median(v)) / 1e6 for k, v in steps.items()}
    engine.dispose()
    return result


def main() -> None:
    seconds = int(os.environ.get("BENCH_SERVING_SECONDS", "15"))
    configs = [
        (int(w), int(t))
        for w, t in (
            c.split("x") for c in os.environ.get("BENCH_SERVING_CONFIGS", "1x1,1x40,2x1").split(",")
        )
    ]
    connections = int(os.environ.get("BENCH_SERVING_CONNECTIONS", "32"))
    wrk = ensure_wrk()
    root = Path(tempfile.mkdtemp(prefix="deeprec-bench-serving-"))
    try:
        url, n_users, versions = prepare(root)
        stages = stage_breakdown(url, root)
        results = {}
        for config in configs:
            results[config], sample = serve_and_measure(
                wrk, root, url, n_users, config, seconds, connections
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    for (workers, threads), runs in results.items():
        health = runs["healthz"]["rps"]
        for name, run in runs.items():
            ratio = run["rps"] / health
            meets = ""
            if name != "healthz":
                met = ratio >= TARGET_RATIO and run["p99_ms"] <= TARGET_P99_MS
                meets = "yes" if met else "NO"
            rows.append(
                {
                    "workers": workers,
                    "inference threads": threads,
                    "endpoint": name,
                    "requests/s": round(run["rps"], 1),
                    "p50 ms": round(run["p50_ms"], 2),
                    "p90 ms": round(run["p90_ms"], 2),
                    "p99 ms": round(run["p99_ms"], 2),
                    "vs healthz": f"{ratio:.0%}",
                    "server CPU ms/request": round(run["server_cpu_ms_per_request"], 3),
                    "non-2xx": run["non_2xx"],
                    "socket errors": run["socket_errors"],
                    "target met": meets,
                }
            )
    stage_rows = [
        {"model": model, **{k: round(v, 3) for k, v in steps.items()}}
        for model, steps in stages.items()
    ]
    commands = [run["command"] for runs in results.values() for run in runs.values()]
    body = (
        f"wrk, {connections} connections, {seconds} s per endpoint; for each configuration "
        "(uvicorn workers, and threads per worker answering recommendations: "
        "`DEEPREC_INFERENCE_THREADS`, default 1; 40 is anyio's default threadpool), ONE server "
        "run measures /healthz then recommendations from each model. "
        f"Recommendations rotate over {n_users} users (ratings read from SQLite and folded into "
        f"the model per request). Target: recommendations >= {TARGET_RATIO:.0%} of /healthz's "
        f"throughput with p99 <= {TARGET_P99_MS:g} ms.\n\n"
        + markdown_table(rows)
        + "\n`server CPU ms/request`: the server's user+system CPU time during the run divided "
        "by the requests it answered. Unlike requests/s it hardly depends on what else the "
        "machine runs, and its ratio to /healthz's bounds the throughput ratio.\n\n"
        "Where a recommendation's own work goes (median CPU ms per user, in-process, the same "
        "code the endpoint runs; HTTP, FastAPI, pydantic and the threadpool hop are the rest):"
        "\n\n"
        + markdown_table(stage_rows)
        + "\nCommands:\n\n"
        + "\n".join(f"- `{c}`" for c in commands)
        + f"\n\nSample answer (user 1, default model): model {sample['model']}, "
        f"first title {sample['items'][0]['title']!r}.\n"
    )
    write_result(
        "serving",
        {"connections": connections, "seconds": seconds, "stages_ms": stages,
         "runs": {f"{w} workers x {t} threads": r for (w, t), r in results.items()},
         "versions": versions, "target_ratio": TARGET_RATIO, "target_p99_ms": TARGET_P99_MS},
        body,
        device="cpu",
        title="Serving: requests/s and latency under wrk",
    )  # fmt: skip
    log.info("%s", body)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
