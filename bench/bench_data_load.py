"""``deeprec data load ml-100k`` into a fresh SQLite file and a fresh PostgreSQL database.

Each run migrates a brand-new database (``deeprec db upgrade``, not timed), then times the real
command ``deeprec data load ml-100k`` as a subprocess: "command" is its whole wall time (Python
start, imports, reading the cached data set, loading), "load" the database part it reports.
Median of 3 runs per database. Target (issue 2): SQLite under 10 s.

PostgreSQL comes from ``DEEPREC_BENCH_POSTGRES_URL`` or ``DEEPREC_TEST_DATABASE_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each run creates a database with a unique
name on that server and drops it afterwards. Where no server answers, the row says so.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from app.db.admin import temporary_postgres_database
from bench.common import markdown_table, median, write_result

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DATASET = "ml-100k"
RUNS = 3
TARGET_SQLITE_SECONDS = 10.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REPORT = re.compile(
    r"added (\d+) users, (\d+) items, (\d+) ratings in ([\d.]+) s "
    r"\(now (\d+) users, (\d+) items, (\d+) ratings\)"
)


def _deeprec(url: str, *args: str) -> tuple[float, str]:
    env = {
        **os.environ,
        "DEEPREC_DATABASE_URL": url,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "app.cli.main", *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def _one_run(url: str) -> dict[str, Any]:
    _deeprec(url, "db", "upgrade")
    seconds, output = _deeprec(url, "data", "load", DATASET, "--no-progress")
    match = REPORT.search(output)
    if match is None:
        raise RuntimeError(f"unexpected output of deeprec data load: {output!r}")
    numbers = [int(g) for i, g in enumerate(match.groups()) if i != 3]
    users, items, ratings, users_total, items_total, ratings_total = numbers
    return {
        "command_seconds": seconds,
        "load_seconds": float(match.group(4)),
        "added": {"users": users, "items": items, "ratings": ratings},
        "total": {"users": users_total, "items": items_total, "ratings": ratings_total},
    }


def _postgres_reachable(admin_url: str) -> str | None:
    try:
        engine = create_engine(admin_url, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def _summary(database: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "database": database,
        "runs": len(runs),
        "command_seconds_median": median([r["command_seconds"] for r in runs]),
        "load_seconds_median": median([r["load_seconds"] for r in runs]),
        "command_seconds": [round(r["command_seconds"], 3) for r in runs],
        "load_seconds": [round(r["load_seconds"], 3) for r in runs],
        "ratings_loaded": runs[-1]["total"]["ratings"],
        "users_loaded": runs[-1]["total"]["users"],
        "items_loaded": runs[-1]["total"]["items"],
        "complete": all(r["total"]["ratings"] == r["added"]["ratings"] == 100_000 for r in runs),
    }


def main() -> None:
    results: list[dict[str, Any]] = []

    sqlite_runs = []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory(prefix="deeprec-bench-") as folder:
            sqlite_runs.append(_one_run(f"sqlite:///{Path(folder) / 'deeprec.db'}"))
        log.info("sqlite run %d: %s", run + 1, sqlite_runs[-1])
    sqlite = _summary("sqlite (WAL, fresh file)", sqlite_runs)
    sqlite["target_seconds"] = TARGET_SQLITE_SECONDS
    sqlite["meets_target"] = sqlite["command_seconds_median"] < TARGET_SQLITE_SECONDS
    results.append(sqlite)

    admin_url = (
        os.environ.get("DEEPREC_BENCH_POSTGRES_URL")
        or os.environ.get("DEEPREC_TEST_DATABASE_URL")
        or DEFAULT_POSTGRES_URL
    )
    unreachable = _postgres_reachable(admin_url)
    if unreachable is None:
        postgres_runs = []
        for run in range(RUNS):
            with temporary_postgres_database(admin_url, prefix="deeprec_bench") as url:
                postgres_runs.append(_one_run(url))
            log.info("postgres run %d: %s", run + 1, postgres_runs[-1])
        results.append(_summary("postgresql (fresh database)", postgres_runs))
    else:
        log.warning("PostgreSQL not measured: %s", unreachable)
        results.append({"database": "postgresql", "skipped": f"no server: {unreachable}"})

    columns = [
        "database",
        "runs",
        "command_seconds_median",
        "load_seconds_median",
        "ratings_loaded",
    ]
    body = (
        f"`deeprec data load {DATASET}` into a freshly migrated database, median of {RUNS} runs "
        "(a fresh database each run). *command*: the whole CLI call (Python start, imports, "
        "reading the cached data set, loading); *load*: the database part the command reports. "
        f"Target: SQLite under {TARGET_SQLITE_SECONDS:.0f} s.\n\n"
        + markdown_table([r for r in results if "skipped" not in r], columns)
        + "".join(f"\n- {r['database']}: {r['skipped']}\n" for r in results if "skipped" in r)
    )
    write_result(
        "data_load",
        {"dataset": DATASET, "results": results},
        body,
        title="Data load: deeprec data load ml-100k",
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
