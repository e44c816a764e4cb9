"""Serving under wrk: a real uvicorn on loopback, 32 connections, the answer cache on and off.

Self-contained: a fresh SQLite file with MovieLens-100K, an EASE checkpoint and a rating-RBM
checkpoint (2 epochs: serving cost does not depend on how long the model trained) registered as
the active versions, then ``deeprec serve`` in a subprocess. What it measures, in ONE invocation:

1. **Mixed workload**, for each worker count (``BENCH_SERVING_WORKERS``, default ``1,2``), with
   the answer cache on (the default in-process LRU): ``/healthz`` first, then recommendations for
   users drawn Zipf-skewed from ALL users (exponent ``BENCH_SERVING_ZIPF``, default 1.0, over a
   seeded shuffle of the ids) with 5% rating writes (``POST /v1/users/{id}/ratings`` for a
   Zipf-drawn user, a random item and value) interleaved, for the default model (the RBM) and for
   EASE. The hit rate is counted from each answer's ``X-Cache`` header.
2. **Miss path alone**: one worker with the cache off (``DEEPREC_CACHE_MAX_ENTRIES=0``), the users
   rotated over all ids, no writes: the server's CPU ms per request beside the in-process
   ``Recommender.recommend`` cost of the same model (median CPU time over every user).
3. **p99 during a retrain and swap**: on the last (most workers) server, the mixed workload runs
   while ``POST /v1/admin/retrain`` retrains the same model in a worker process and swaps it in
   (then every worker loads it and precomputes), compared with that server's idle p99.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``); the benchmark installs it with apt-get when
it is missing and it runs as root, else it stops and says how. Settings (environment):
``BENCH_SERVING_SECONDS`` (per wrk run, default 8), ``BENCH_SERVING_REPEATS`` (wrk runs per row,
default 3: each row reports the median run), ``BENCH_SERVING_CONNECTIONS`` (default 32),
``BENCH_SERVING_WORKERS`` (default ``1,2``), ``BENCH_SERVING_ZIPF`` (default 1.0),
``BENCH_SERVING_RETRAIN_CHUNK_S`` and ``BENCH_SERVING_RETRAIN_MAX_S`` (the wrk runs around each
retrain: 8 s each, until one after the job ended, at most 60 s).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import markdown_table, write_result
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.fetch import load_dataset
from ml.inference import Recommender
from ml.models.rbm_config import RBMConfig, RBMTraining
from ml.training.base import TrainingOptions
from ml.training.baselines import EASETrainingConfig, train_ease
from ml.training.rbm import train_rbm_checkpoint
from tests.conftest import TEST_DATA_DIR

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.40
TARGET_P99_MS = 50.0

# Serving cost does not depend on how long the model trained: 1 epoch, and the RBM's own rating
# expectation instead of the companion item RBM (20 more epochs; recommend() ranks without it).
RBM_CONFIG = RBMConfig(rating_model="joint", training=RBMTraining(epochs=1))
RBM_RETRAIN = {"model": "rbm", "epochs": 1, "params": {"rating_model": "joint"}}
WRITE_SHARE = 0.05
WARM_UP_S = 2  # the unreported run of a workload before each measured mixed run
SEED = 42
ADMIN_TOKEN = "bench-admin-token"

# wrk Lua, one template for every run, so the client does the same work on each: "fixed" asks
# one path, "rotate" rotates the user id over all users, "mixed" draws users Zipf-skewed and
# writes a rating 5% of the time. Each response's X-Cache header is counted; done() prints a JSON
# summary (threads' counters read with thread:get), so nothing is scraped from wrk's text.
LUA_TEMPLATE = """
local mode = "{mode}"
local path = "{path}"
local ranked = {{{ranked}}}
local n = #ranked
local zipf = {zipf}
local write_share = {write_share}
local n_items = {n_items}
local cdf = {{}}
local threads = {{}}
local counter = 0
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  local total = 0
  for i = 1, n do total = total + 1 / (i ^ zipf); cdf[i] = total end
  for i = 1, n do cdf[i] = cdf[i] / total end
  math.randomseed({seed} + (id or 0) * 7919)
  counter = (id or 0) * 7919
  hits = 0; misses = 0; off = 0; other = 0
end
local function zipf_user()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return ranked[lo]
end
function request()
  if mode == "fixed" then return wrk.format("GET", path) end
  local uid
  if mode == "rotate" then
    counter = counter + 1
    uid = ranked[(counter % n) + 1]
  else
    uid = zipf_user()
    if math.random() < write_share then
      local body = string.format('{{"item_id": %d, "rating": %d}}',
        math.random(1, n_items), math.random(1, 5))
      return wrk.format("POST", "/v1/users/" .. uid .. "/ratings",
        {{["Content-Type"] = "application/json"}}, body)
    end
  end
  return wrk.format("GET", (string.gsub(path, "{{uid}}", tostring(uid))))
end
function response(status, headers, body)
  local cache = headers["x-cache"] or headers["X-Cache"]
  if cache == "hit" then hits = hits + 1
  elseif cache == "miss" then misses = misses + 1
  elseif cache == "off" then off = off + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local h, m, o, x = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits"); m = m + t:get("misses"); o = o + t:get("off"); x = x + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"hits": %d, "misses": %d, "off": %d, "other": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, h, m, o, x))
end
"""


@dataclass(frozen=True)
class Workload:
    name: str
    mode: str  # fixed | rotate | mixed
    path: str

    def script(self, users: list[int], zipf: float, n_items: int) -> str:
        return LUA_TEMPLATE.format(
            mode=self.mode,
            path=self.path,
            ranked=", ".join(map(str, users)),
            zipf=zipf,
            write_share=WRITE_SHARE,
            n_items=n_items,
            seed=SEED,
        )


HEALTHZ = Workload("healthz", "fixed", "/healthz")


def mixed(model: str | None) -> Workload:
    query = f"&model={model}" if model else ""
    label = model or "default model (rbm)"
    return Workload(f"mixed: {label}", "mixed", f"/v1/users/{{uid}}/recommendations?k=10{query}")


def rotate(model: str | None) -> Workload:
    query = f"&model={model}" if model else ""
    label = model or "default model (rbm)"
    return Workload(
        f"miss path: {label}", "rotate", f"/v1/users/{{uid}}/recommendations?k=10{query}"
    )


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


def prepare(root: Path) -> tuple[str, int, int, dict[str, str]]:
    """Database with ml-100k and two active checkpoints; returns (url, users, items, versions)."""
    from app.crud import bulk_load, register_model_version
    from app.db import migrate
    from app.db.session import create_db_engine, create_session_factory

    dataset = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    url = f"sqlite:///{root / 'deeprec.db'}"
    migrate.upgrade(url)
    trained = {
        "ease": train_ease(dataset, EASETrainingConfig(l2=800.0)),
        "rbm": train_rbm_checkpoint(
            dataset, RBM_CONFIG, TrainingOptions(device="cpu", progress=False)
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
    n_items = int(dataset.items["item_id"].max())
    return url, int(dataset.ratings["user_id"].max()), n_items, versions


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
    script: str,
    seconds: int,
    connections: int,
    root: Path,
    server_pid: int,
) -> dict[str, Any]:
    path = root / f"wrk-{abs(hash(script))}.lua"
    path.write_text(script)
    threads = min(2, connections)
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(path), base,
    ]  # fmt: skip
    cpu_before = server_cpu_seconds(server_pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu_seconds = server_cpu_seconds(server_pid) - cpu_before
    load_1m = os.getloadavg()[0]  # the machine's load over the run (other work shares it)
    line = next(x for x in output.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    lookups = raw["hits"] + raw["misses"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["status_errors"],
        "socket_errors": errors,
        "hits": raw["hits"],
        "misses": raw["misses"],
        "writes_and_other": raw["other"],
        "hit_rate": raw["hits"] / lookups if lookups else None,
        "server_cpu_ms_per_request": 1000 * cpu_seconds / max(raw["requests"], 1),
        "load_1m": load_1m,
        "command": " ".join([*command[:-3], "-s", "SCRIPT.lua", base]),
    }


MEDIAN_FIELDS = ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "server_cpu_ms_per_request")


def combine_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated wrk runs of one workload: the MEDIAN of each rate and latency
    figure (one run's p99 swings with whatever else the shared cores were doing), the counts
    (errors, hits) summed over every run, and each run's own p99 and requests/s."""
    combined = dict(runs[len(runs) // 2])
    for key in MEDIAN_FIELDS:
        combined[key] = float(np.median([r[key] for r in runs]))
    for key in ("requests", "non_2xx", "socket_errors", "hits", "misses", "writes_and_other"):
        combined[key] = sum(r[key] for r in runs)
    lookups = combined["hits"] + combined["misses"]
    combined["hit_rate"] = combined["hits"] / lookups if lookups else None
    combined["load_1m"] = max(r["load_1m"] for r in runs)
    combined["runs"] = len(runs)
    combined["p99_ms_per_run"] = [round(r["p99_ms"], 2) for r in runs]
    combined["rps_per_run"] = [round(r["rps"], 1) for r in runs]
    return combined


class Server:
    """``deeprec serve`` in a subprocess on a free port, ready (and done precomputing) on entry."""

    def __init__(self, root: Path, url: str, workers: int, **settings: str) -> None:
        self.root = root
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEEPREC_")},
            "DEEPREC_DATABASE_URL": url,
            "DEEPREC_DATA_DIR": str(root),
            "DEEPREC_CHECKPOINT_DIR": str(root / "checkpoints"),
            "DEEPREC_REQUIRED_MODELS": "ease,rbm",
            "DEEPREC_DEVICE": "cpu",
            "DEEPREC_LOG_LEVEL": "WARNING",
            "DEEPREC_ADMIN_TOKEN": ADMIN_TOKEN,
            "DEEPREC_MODEL_SYNC_S": "2",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            **{f"DEEPREC_{k.upper()}": v for k, v in settings.items()},
        }
        self.log_path = root / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [
            sys.executable, "-m", "app.cli.main", "serve", "--port", str(self.port),
            "--workers", str(self.workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT
            )
        with httpx.Client(base_url=self.base, timeout=10) as client:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not become ready: see {self.log_path}")
                time.sleep(0.3)
        self.wait_quiet()
        return self

    def precomputed(self) -> float:
        """The precompute counter as one worker (a fresh connection: any worker) reports it."""
        with httpx.Client(base_url=self.base, timeout=10) as client:
            text = client.get("/metrics").text
        found = re.findall(r"^deeprec_answer_cache_precomputed_total\{[^}]*\} (\S+)$", text, re.M)
        return sum(float(v) for v in found)

    def wait_quiet(self, timeout: float = 60.0) -> None:
        """Until the start-up precompute is over (the counter unchanged over 3 s of scrapes)."""
        if self.env.get("DEEPREC_CACHE_MAX_ENTRIES") == "0":
            return
        history = [self.precomputed()]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            history.append(self.precomputed())
            if len(history) >= 7 and len(set(history[-7:])) == 1 and history[-1] > 0:
                return
        log.warning("precompute still running after %g s; measuring anyway", timeout)

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Bench:
    wrk: str
    root: Path
    users: list[int]  # ranked by Zipf popularity (a seeded shuffle of all ids)
    n_items: int
    zipf: float
    seconds: int
    connections: int

    def measure(self, server: Server, workload: Workload, seconds: int | None = None) -> dict:
        assert server.process is not None
        script = workload.script(self.users, self.zipf, self.n_items)
        run = run_wrk(
            self.wrk,
            server.base,
            script,
            seconds or self.seconds,
            self.connections,
            self.root,
            server.process.pid,
        )
        run["workload"] = workload.name
        run["path"] = workload.path
        log.info(
            "%s workers, %s: %.0f req/s, p99 %.1f ms, hit rate %s",
            server.workers,
            workload.name,
            run["rps"],
            run["p99_ms"],
            run["hit_rate"],
        )
        return run

    def measure_rounds(
        self,
        server: Server,
        workloads: list[Workload],
        repeats: int,
        after_round: Callable[[], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``repeats`` rounds of every workload in turn (interleaved, so a busy spell of the
        machine falls on every row alike), combined per workload (:func:`combine_runs`).

        A mixed run starts after a short warm-up of ITS OWN workload (not reported): the other
        model's mixed run before it wrote ratings for hundreds of users without reading this
        model's answers, so it would start with all of those answers stale at once, a burst
        of misses no steady mix has (measured: p99 108-233 ms in the runs after an EASE run
        against 36 ms in the first, hit rate 93.6% against 95.3%)."""
        runs: dict[str, list[dict[str, Any]]] = {w.name: [] for w in workloads}
        for _ in range(repeats):
            for workload in workloads:
                if workload.mode == "mixed":
                    self.measure(server, workload, WARM_UP_S)
                runs[workload.name].append(self.measure(server, workload))
            if after_round is not None:
                after_round()
        return {name: combine_runs(r) for name, r in runs.items()}

    def retrain_under_load(
        self, server: Server, request: dict[str, Any], idle: dict[str, Any]
    ) -> dict[str, Any]:
        """The mixed workload of the retrained model, in back-to-back wrk runs of
        ``BENCH_SERVING_RETRAIN_CHUNK_S`` from 1 s before the retrain is submitted until one run
        after its job ended (the load, swap and precompute in every worker come after the job),
        at most ``BENCH_SERVING_RETRAIN_MAX_S``. The p99 reported is the WORST run's p99."""
        assert server.process is not None
        model = request["model"]
        chunk = int(os.environ.get("BENCH_SERVING_RETRAIN_CHUNK_S", "8"))
        limit = float(os.environ.get("BENCH_SERVING_RETRAIN_MAX_S", "60"))
        workload = mixed(None if model == "rbm" else model)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.measure(server, workload, WARM_UP_S)  # as before each idle run (measure_rounds)
        cpu_before = server_cpu_seconds(server.process.pid)
        started = time.monotonic()
        runs: list[dict[str, Any]] = []
        job: dict[str, Any] = {}
        done_after: float | None = None
        with (
            httpx.Client(base_url=server.base, timeout=30) as client,
            ThreadPoolExecutor(1) as pool,
        ):
            pending = pool.submit(self.measure, server, workload, chunk)
            time.sleep(1.0)
            job = client.post("/v1/admin/retrain", json=request, headers=headers).json()
            after_job = False  # whether the run in flight started after the job had ended
            while True:
                while not pending.done():
                    time.sleep(0.5)
                    if done_after is None:
                        job = client.get(f"/v1/admin/jobs/{job['id']}", headers=headers).json()
                        if job.get("status") in ("succeeded", "failed"):
                            done_after = time.monotonic() - started
                runs.append(pending.result())
                if after_job or time.monotonic() - started > limit:
                    break
                after_job = done_after is not None
                pending = pool.submit(self.measure, server, workload, chunk)
            served = client.get(
                "/v1/users/1/recommendations", params={"model": model} if model != "rbm" else {}
            ).json()
        cpu_seconds = server_cpu_seconds(server.process.pid) - cpu_before
        requests = sum(r["requests"] for r in runs)
        hits = sum(r["hits"] for r in runs)
        lookups = hits + sum(r["misses"] for r in runs)
        worst = max(runs, key=lambda r: r["p99_ms"])
        result = {
            "model": model,
            "request": request,
            "runs": len(runs),
            "chunk_s": chunk,
            "requests": requests,
            "rps": requests / sum(chunk for _ in runs),
            "p99_ms": worst["p99_ms"],
            "p99_ms_per_run": [round(r["p99_ms"], 2) for r in runs],
            "idle_p99_ms": idle["p99_ms"],
            "max_ms": max(r["max_ms"] for r in runs),
            "load_1m": max(r["load_1m"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
            "hit_rate": hits / lookups if lookups else None,
            "server_cpu_ms_per_request": 1000 * cpu_seconds / max(requests, 1),
            "job_status": job.get("status"),
            "job_error": job.get("error"),
            "job_done_after_s": None if done_after is None else round(done_after, 1),
            "served_version_after": served.get("model_version"),
            "command": worst["command"],
        }
        log.info("retrain of %s under load: %s", model, result)
        return result


class InProcess:
    """The served models loaded in THIS process, with every user's ratings: what a miss costs
    without HTTP, for the miss path's comparison. A context manager: on entry it sets the serving
    workers' torch threads (``DEEPREC_TORCH_THREADS``, default 1) and loads the active versions;
    on exit it restores the threads.

    With more torch threads the thread's CPU time would count the other threads' hand-offs and
    spinning, and the comparison with the server's CPU per request would not be like for like."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root

    def __enter__(self) -> InProcess:
        from app.core.config import Settings
        from app.crud import list_active_model_versions
        from app.crud.serving import HotReads
        from app.db.session import create_db_engine, create_session_factory
        from app.services.catalog import ItemCatalog
        from app.services.cpu_budget import apply_torch_threads
        from app.services.registry import ModelRegistry

        self._restore = apply_torch_threads(Settings().torch_threads)
        self.engine = create_db_engine(self.url)
        sessions = create_session_factory(self.engine)
        self.reads = HotReads(self.engine)
        self.catalog = ItemCatalog(sessions)
        self.registry = ModelRegistry("cpu", checkpoint_dir=self.root / "checkpoints")
        with sessions() as session:
            for row in list_active_model_versions(session=session):
                self.registry.load_and_swap(
                    model_type=row.model_type,
                    version=row.version,
                    checkpoint_path=row.checkpoint_path,
                )
        self.users = [int(u) for u in range(1, 944)]
        self.history = {u: self.reads.ratings_with_version(u)[1] for u in self.users}
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()
        self._restore()

    def recommender(self, model_type: str) -> Recommender:
        model = self.registry.get(model_type).model
        assert isinstance(model, Recommender), model_type
        return model

    def recommend_mean_ms(self, model_type: str) -> float:
        """Mean CPU ms (this thread) of ``Recommender.recommend`` (k=10, seen excluded) over
        every user: the server's CPU per request is a mean over users rotated evenly, so its
        in-process counterpart is the mean too, not the median (a few users with many ratings
        cost several times the typical one)."""
        model = self.recommender(model_type)
        clock = time.thread_time_ns
        started = clock()
        for user in self.users:
            model.recommend(self.history[user], 10)
        return (clock() - started) / len(self.users) / 1e6

    def breakdown(self) -> dict[str, dict[str, float]]:
        """Median CPU time (ms, this thread) of each step of a recommendation miss over every
        user: where the endpoint's own work goes (HTTP and framework costs are the rest)."""
        from app.services.recommendations import Recommendations, _with_metadata, render
        from ml.evaluation.evaluate import top_k

        clock = time.thread_time_ns
        result = {}
        for model_type in ("ease", "rbm"):
            model = self.recommender(model_type)
            steps: dict[str, list[int]] = {
                "db read (ratings + version)": [],
                "csr row": [],
                "model score": [],
                "top-k": [],
                "Recommender.recommend": [],
                "titles + orjson": [],
            }
            for user in self.users:
                t0 = clock()
                self.reads.ratings_with_version(user)
                t1 = clock()
                rows = model.rows_from_ratings(self.history[user])
                t2 = clock()
                scores = model.scorer.score(rows)
                t3 = clock()
                top_k(np.asarray(scores, dtype=np.float64), 10, exclude=rows)
                t4 = clock()
                ranked = model.recommend(self.history[user], 10)
                t5 = clock()
                answer = Recommendations(
                    user, model_type, "bench", "model", _with_metadata(self.catalog, ranked)
                )
                render(answer, 10, None)
                t6 = clock()
                for key, value in zip(
                    steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True
                ):
                    steps[key].append(value)
            result[model_type] = {k: float(np.median(v)) / 1e6 for k, v in steps.items()}
            result[model_type][RECOMMEND_MEAN] = float(
                np.mean(steps["Recommender.recommend"]) / 1e6
            )
        return result


def _loads(loads: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.1f}" for x in loads)


def previous_run() -> dict[str, Any] | None:
    """The last run's figures (``bench/results/serving.json``), for the comparison table."""
    from bench.common import RESULTS_DIR

    try:
        return dict(json.loads((RESULTS_DIR / "serving.json").read_text()))
    except (OSError, ValueError):
        return None


def previous_section(
    previous: dict[str, Any] | None,
    mixed_runs: dict[int, dict[str, dict[str, Any]]],
    miss_runs: dict[str, dict[str, Any]],
    retrains: list[dict[str, Any]],
    recommend_median: dict[str, float],
) -> str:
    """The headline figures of this run beside the previous run's (``previous``)."""
    if not previous:
        return ""
    rows = []
    for workers, runs in mixed_runs.items():
        before = previous.get("mixed", {}).get(f"{workers} workers", {})
        for name, run in runs.items():
            old = before.get(name)
            if name == "healthz" or old is None:
                continue
            old_health = before["healthz"]["rps"]
            rows.append(
                {
                    "figure": f"{workers} worker(s), {name}",
                    "previous": f"{old['rps']:.0f} req/s ({old['rps'] / old_health:.0%} of "
                    f"healthz), p99 {old['p99_ms']:.1f} ms, hit {_pct(old['hit_rate'])}, "
                    f"{old['server_cpu_ms_per_request']:.3f} CPU ms/req",
                    "this run": f"{run['rps']:.0f} req/s "
                    f"({run['rps'] / runs['healthz']['rps']:.0%} of healthz), p99 "
                    f"{run['p99_ms']:.1f} ms, hit {_pct(run['hit_rate'])}, "
                    f"{run['server_cpu_ms_per_request']:.3f} CPU ms/req",
                }
            )
    old_stages = previous.get("stages_ms", {})
    for name, run in miss_runs.items():
        old = previous.get("miss_path", {}).get(name)
        if name == "healthz" or old is None:
            continue
        model = "rbm" if "rbm" in name else "ease"
        recommend = recommend_median[model]
        old_recommend = previous.get("recommend_ms_median", {}).get(model) or old_stages.get(
            model, {}
        ).get(RECOMMEND_MEAN, old_stages.get(model, {}).get("Recommender.recommend"))
        rows.append(
            {
                "figure": f"cache off, {name}",
                "previous": f"{old['server_cpu_ms_per_request']:.3f} CPU ms/req"
                + (
                    f" ({old['server_cpu_ms_per_request'] / old_recommend:.1f}x recommend)"
                    if old_recommend
                    else ""
                ),
                "this run": f"{run['server_cpu_ms_per_request']:.3f} CPU ms/req "
                f"({run['server_cpu_ms_per_request'] / recommend:.1f}x recommend)",
            }
        )
    old_retrains = {r["model"]: r for r in previous.get("retrain", [])}
    for r in retrains:
        old = old_retrains.get(r["model"])
        if old is None:
            continue
        rows.append(
            {
                "figure": f"retrain of {r['model']} under load",
                "previous": f"p99 {old['p99_ms']:.1f} ms vs idle {old['idle_p99_ms']:.1f} ms, "
                f"{old['non_2xx'] + old['socket_errors']} failed",
                "this run": f"p99 {r['p99_ms']:.1f} ms vs idle {r['idle_p99_ms']:.1f} ms, "
                f"{r['non_2xx'] + r['socket_errors']} failed",
            }
        )
    loads = previous.get("load_before")
    note = f", load average before {_loads(tuple(loads))}" if loads else ""
    return f"\n## Previous run ({previous.get('created_at', '?')}{note})\n\n" + markdown_table(rows)


RECOMMEND_MEAN = "Recommender.recommend (mean)"


def _each(values: list[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def main() -> None:
    seconds = int(os.environ.get("BENCH_SERVING_SECONDS", "8"))
    connections = int(os.environ.get("BENCH_SERVING_CONNECTIONS", "32"))
    worker_counts = [int(w) for w in os.environ.get("BENCH_SERVING_WORKERS", "1,2").split(",")]
    zipf = float(os.environ.get("BENCH_SERVING_ZIPF", "1.0"))
    repeats = int(os.environ.get("BENCH_SERVING_REPEATS", "3"))
    wrk = ensure_wrk()
    previous = previous_run()
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="deeprec-bench-serving-"))
    started = time.monotonic()
    # The in-process recommend cost, measured after each round of the miss-path runs (the
    # server idle), so the ratio compares figures taken minutes apart at most.
    recommend_ms: dict[str, list[float]] = {"rbm": [], "ease": []}
    warm_loop_ms: dict[str, list[float]] = {"rbm": [], "ease": []}
    try:
        url, n_users, n_items, versions = prepare(root)
        with InProcess(url, root) as in_process:
            stages = in_process.breakdown()
            users = [
                int(u) for u in np.random.default_rng(SEED).permutation(np.arange(1, n_users + 1))
            ]
            bench = Bench(wrk, root, users, n_items, zipf, seconds, connections)
            mixed_runs: dict[int, dict[str, dict[str, Any]]] = {}
            retrains: list[dict[str, Any]] = []
            for workers in worker_counts:
                with Server(root, url, workers) as server:
                    runs = bench.measure_rounds(
                        server, [HEALTHZ, mixed(None), mixed("ease")], repeats
                    )
                    mixed_runs[workers] = runs
                    if workers == worker_counts[-1]:
                        for request in ({"model": "ease"}, RBM_RETRAIN):
                            model = request["model"]
                            idle = runs[mixed(None if model == "rbm" else model).name]
                            retrains.append(bench.retrain_under_load(server, request, idle))

            def measure_in_process() -> None:
                stages_now = in_process.breakdown()
                for model_type, values in recommend_ms.items():
                    values.append(stages_now[model_type][RECOMMEND_MEAN])
                    warm_loop_ms[model_type].append(in_process.recommend_mean_ms(model_type))

            with Server(root, url, 1, cache_max_entries="0") as server:
                bench.measure(server, rotate(None), 2)  # warm-up
                miss_runs = bench.measure_rounds(
                    server, [HEALTHZ, rotate(None), rotate("ease")], repeats, measure_in_process
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - started
    load_after = os.getloadavg()

    mixed_rows = []
    for workers, runs in mixed_runs.items():
        health = runs["healthz"]["rps"]
        for name, run in runs.items():
            ratio = run["rps"] / health
            meets = ""
            if name != "healthz":
                meets = _yes(
                    ratio >= TARGET_RATIO
                    and run["p99_ms"] <= TARGET_P99_MS
                    and run["non_2xx"] == 0
                    and run["socket_errors"] == 0
                )
            mixed_rows.append(
                {
                    "workers": workers,
                    "workload": name,
                    "requests/s": round(run["rps"], 1),
                    "p50 ms": round(run["p50_ms"], 2),
                    "p99 ms": round(run["p99_ms"], 2),
                    "p99 ms of each run": _each(run["p99_ms_per_run"]),
                    "vs healthz": f"{ratio:.0%}",
                    "hit rate": _pct(run["hit_rate"]),
                    "server CPU ms/request": round(run["server_cpu_ms_per_request"], 3),
                    "non-2xx": run["non_2xx"],
                    "socket errors": run["socket_errors"],
                    "load avg (1 min)": round(run["load_1m"], 1),
                    "target met": meets,
                }
            )
    served_name = {"default model (rbm)": "rbm", "ease": "ease"}
    recommend_median = {m: float(np.median(v)) for m, v in recommend_ms.items()}
    miss_rows = []
    for name, run in miss_runs.items():
        row: dict[str, Any] = {
            "workload (1 worker, cache off)": name,
            "requests/s": round(run["rps"], 1),
            "p99 ms": round(run["p99_ms"], 2),
            "vs healthz": f"{run['rps'] / miss_runs['healthz']['rps']:.0%}",
            "requests/s of each run": _each(run["rps_per_run"]),
            "server CPU ms/request": round(run["server_cpu_ms_per_request"], 3),
            "in-process recommend ms (mean)": "",
            "in-process recommend ms of each round": "",
            "CPU / recommend": "",
            "warm-loop recommend ms (mean)": "",
            "CPU / warm-loop recommend": "",
            "load avg (1 min)": round(run["load_1m"], 1),
            "target met (<= 2x)": "",
        }
        if name != "healthz":
            model_type = served_name[name.removeprefix("miss path: ")]
            recommend = recommend_median[model_type]
            ratio = run["server_cpu_ms_per_request"] / recommend
            row["in-process recommend ms (mean)"] = round(recommend, 3)
            row["in-process recommend ms of each round"] = _each(
                [round(v, 3) for v in recommend_ms[model_type]]
            )
            warm = float(np.median(warm_loop_ms[model_type]))
            row["warm-loop recommend ms (mean)"] = round(warm, 3)
            row["CPU / warm-loop recommend"] = f"{run['server_cpu_ms_per_request'] / warm:.1f}x"
            row["CPU / recommend"] = f"{ratio:.1f}x"
            row["target met (<= 2x)"] = _yes(ratio <= 2.0)
        miss_rows.append(row)
    retrain_rows = [
        {
            "workers": worker_counts[-1],
            "model retrained": r["model"],
            "idle p99 ms": round(r["idle_p99_ms"], 2),
            "p99 ms during retrain": round(r["p99_ms"], 2),
            "ratio": f"{r['p99_ms'] / r['idle_p99_ms']:.1f}x",
            "requests/s": round(r["rps"], 1),
            "max ms": round(r["max_ms"], 1),
            "non-2xx": r["non_2xx"],
            "socket errors": r["socket_errors"],
            "runs": r["runs"],
            "load avg (1 min, max)": round(r["load_1m"], 1),
            "job": f"{r['job_status']} after {r['job_done_after_s']} s",
            "served after": r["served_version_after"],
            "target met (<= 2x, 0 failed)": _yes(
                r["p99_ms"] <= 2 * r["idle_p99_ms"]
                and r["non_2xx"] == 0
                and r["socket_errors"] == 0
                and r["job_status"] == "succeeded"
            ),
        }
        for r in retrains
    ]
    stage_rows = [
        {"model": model, **{k: round(v, 3) for k, v in steps.items()}}
        for model, steps in stages.items()
    ]
    commands = sorted(
        {run["command"].rsplit(" ", 1)[0] for runs in mixed_runs.values() for run in runs.values()}
    )
    body = (
        f"wrk, {connections} connections, {seconds} s per run, {repeats} runs per row (rounds of "
        "every row of a server in turn, each mixed run after a "
        f"{WARM_UP_S} s unreported warm-up of its own workload; each row shows the MEDIAN run's "
        "requests/s, latency and CPU, every run's p99 beside it, and errors summed over all "
        "runs), one `deeprec serve` per row group "
        f"(SQLite, MovieLens-100K, {n_users} users, {n_items} items). The whole invocation took "
        f"{elapsed:.0f} s. wrk (2 threads) runs on the same {os.cpu_count()} cores as the server; "
        "nothing is pinned: the server's workers, wrk and whatever else runs share the cores as "
        "the scheduler decides. Load average (1, 5, 15 min) before: "
        f"{_loads(load_before)}; after: {_loads(load_after)}.\n\n"
        "## Mixed workload, answer cache on (in-process LRU, the default)\n\n"
        f"Users drawn Zipf-skewed (exponent {zipf:g}) from all {n_users} users (a seeded shuffle "
        f"of the ids gives the ranks), {WRITE_SHARE:.0%} of requests are rating writes to "
        "Zipf-drawn users (each bumps that user's ratings version, so their next answer is "
        "computed). Hit rate: the recommendation answers whose `X-Cache` header said `hit`. "
        "Requests/s, latency and server CPU per request cover every request of the mix, the "
        "writes and misses included. Well-formed requests are answered by the hot path in front "
        "of FastAPI (`app/api/hot_path.py`). "
        f"Target: recommendations >= {TARGET_RATIO:.0%} of /healthz's requests/s on the same "
        f"server, p99 <= {TARGET_P99_MS:g} ms, 0 non-2xx.\n\n"
        + markdown_table(mixed_rows)
        + "\n## The miss path alone (cache off), beside the in-process recommend cost\n\n"
        "One worker, `DEEPREC_CACHE_MAX_ENTRIES=0`: every request reads the user's ratings and "
        "folds them into the model; users rotated over all ids, no writes. `server CPU "
        "ms/request`: the server's user+system CPU during the run over the requests answered "
        "(HTTP, the event loop, the database read, the model, orjson; with SQLite a model whose "
        "misses are cheap is computed on the event loop, others in the inference thread). "
        "`in-process recommend ms (mean)`: thread CPU of `Recommender.recommend` (same k=10, "
        "seen items excluded) averaged over every user, as the server's figure is averaged over "
        "users rotated evenly; measured in the benchmark's own process after each round of these "
        "runs (the server idle), the median of the rounds, inside the per-user loop of the "
        "breakdown below (each user's read, row, score, top-k and rendering run between two "
        "recommends, as HTTP and the database do in the server). `warm-loop recommend`: the "
        "same call in a tight loop over every user and nothing else in between, warm caches, "
        "the cheapest the model gets (shown beside it, not the target's measure). Target: at "
        "most 2x.\n\n"
        + markdown_table(miss_rows)
        + "\n## p99 while the same model retrains and swaps in\n\n"
        f"On the {worker_counts[-1]}-worker server: the mixed workload of that model in "
        "back-to-back wrk runs of "
        f"{retrains[0]['chunk_s'] if retrains else 0} s from 1 s before the retrain until one "
        "run after its job ended; the p99 shown is the worst run's. `POST /v1/admin/retrain` "
        "trains it in a subprocess (thread cap and niceness: `DEEPREC_RETRAIN_THREADS`, "
        "`DEEPREC_RETRAIN_NICE`), registers and swaps it in; the other worker loads it within "
        "`DEEPREC_MODEL_SYNC_S` (2 s here) and each worker precomputes the active users' answers. "
        "Idle p99: the same server's mixed row above (the median run's).\n\n"
        + markdown_table(retrain_rows)
        + "\n## Where a recommendation's own work goes\n\n"
        "Median CPU ms per user (and the mean of the whole recommend), in-process, the same code "
        "the endpoint runs on a miss, with the serving workers' torch threads "
        "(`DEEPREC_TORCH_THREADS`, 1):\n\n"
        + markdown_table(stage_rows)
        + previous_section(previous, mixed_runs, miss_runs, retrains, recommend_median)
        + "\nCommands (each with the Lua script that draws the workload):\n\n"
        + "\n".join(f"- `{c}`" for c in commands)
        + "\n\nThis 2-core machine may be shared with other work (the load averages above say how "
        "busy it was): absolute figures vary from run to run; the ratios within the run are what "
        "compare.\n"
    )
    write_result(
        "serving",
        {"connections": connections, "seconds": seconds, "repeats": repeats, "zipf": zipf,
         "write_share": WRITE_SHARE, "stages_ms": stages,
         "recommend_ms_rounds": recommend_ms, "recommend_ms_median": recommend_median,
         "warm_loop_recommend_ms_rounds": warm_loop_ms,
         "mixed": {f"{w} workers": r for w, r in mixed_runs.items()},
         "miss_path": miss_runs, "retrain": retrains, "versions": versions,
         "target_ratio": TARGET_RATIO, "target_p99_ms": TARGET_P99_MS,
         "elapsed_s": elapsed, "load_before": load_before, "load_after": load_after},
        body,
        device="cpu",
        seed=SEED,
        title="Serving: the answer cache under wrk (mixed workload, miss path, retrain)",
    )  # fmt: skip
    log.info("%s", body)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
