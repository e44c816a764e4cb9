"""``python -m bench scale``: the service at MovieLens sizes, on seeded synthetic data.

For each shape (ML-1M, ML-10M, ML-25M; ``ml.data.synthetic``): write the files
(``deeprec data synth``), load them (``deeprec data load``: SQLite, and PostgreSQL for ML-1M),
then for each ratings model train (``deeprec train MODEL --fit train``), evaluate
(``deeprec evaluate``) and recommend for every user (``deeprec recommend --users all``).

Every step is a real ``deeprec`` subprocess, so the code on the tree is what is measured and the
figures are the child's own: wall time, CPU seconds (user + system, from ``wait4``) and peak RSS
(``ru_maxrss``). A step that runs past its time cap or its memory cap is killed and recorded as
"over budget" instead of holding the run up; the steps that need its output are skipped. The
shapes above ML-1M run under ``flock`` on the big-memory lock, and every timed step under the
measurement lock, when those lock files exist (``DEEPREC_BIGMEM_LOCK``, ``DEEPREC_MEASURE_LOCK``).

Choose what runs with ``python -m bench.bench_scale --shapes ml-10m --models ease,popularity``
(or ``DEEPREC_BENCH_SCALE_SHAPES`` / ``_MODELS`` / ``_DATABASES`` under ``python -m bench``).
Results are merged into bench/results/scale.json by shape (a run of ML-10M keeps the ML-1M rows)
and the whole table is written again to scale.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, command_line, machine_info, write_result

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SHAPES = ("ml-1m", "ml-10m", "ml-25m")
MODELS = ("rbm", "autoencoder", "ease", "autorec", "popularity")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GIB = 1024**3
MAX_LOCK_S = 900  # the longest a run may hold the measurement lock


@dataclass(frozen=True)
class Caps:
    """Per-step limits: seconds by step kind, and peak RSS in GiB for every step."""

    synth: float
    load: float
    train: float
    evaluate: float
    recommend: float
    memory_gib: float


# ML-1M: the targets (load 30 s, RBM / Mult-DAE 5 min, recommend-all 30 s) with room to
# record a miss; larger shapes: room for one epoch, within the memory ceilings.
CAPS = {
    "ml-1m": Caps(synth=120, load=120, train=420, evaluate=180, recommend=120, memory_gib=6),
    "ml-10m": Caps(synth=600, load=600, train=900, evaluate=600, recommend=600, memory_gib=16),
    "ml-25m": Caps(synth=900, load=900, train=900, evaluate=600, recommend=600, memory_gib=20),
}
# What the issue asks, per (shape, step, model or database): wall seconds / peak RSS GiB.
TARGETS: dict[tuple[str, str, str], dict[str, float]] = {
    ("ml-1m", "load", "sqlite"): {"wall_s": 30},
    ("ml-1m", "load", "postgresql"): {"wall_s": 30},
    ("ml-1m", "train", "rbm"): {"wall_s": 300},
    ("ml-1m", "train", "autoencoder"): {"wall_s": 300},
    **{("ml-1m", "recommend", m): {"wall_s": 30} for m in MODELS},
    ("ml-10m", "load", "sqlite"): {"wall_s": 300},
    **{("ml-10m", "train", m): {"rss_gib": 16} for m in MODELS},
    ("ml-25m", "load", "sqlite"): {"rss_gib": 20},
    **{("ml-25m", "train", m): {"rss_gib": 20} for m in MODELS},
}


@dataclass
class StepResult:
    step: str  # synth, load, train, evaluate, recommend
    subject: str  # the database or the model
    status: str  # ok, failed, over budget (time), over budget (memory), skipped
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mib: float | None = None
    load_average: float | None = None
    detail: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def deeprec_command() -> list[str]:
    """The ``deeprec`` entry point of this interpreter's environment."""
    script = Path(sys.executable).with_name("deeprec")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "app.cli.main"]


@contextlib.contextmanager
def file_lock(path: str | None) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (no-op where the file does not exist: CI, other machines)."""
    if not path or not Path(path).exists():
        yield
        return
    with open(path) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants, from /proc (Linux)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total


def run_step(
    step: str,
    subject: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    time_cap_s: float,
    memory_cap_gib: float,
    log_path: Path | None = None,
    poll_s: float = 0.2,
) -> tuple[StepResult, str]:
    """Run one command as a child process; measure it; kill it at a cap. Returns the result and
    the child's stdout."""
    out_dir = log_path.parent if log_path else Path(os.environ.get("TMPDIR", "/tmp"))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = log_path.name if log_path else f"deeprec-scale-{os.getpid()}"
    stdout_path, stderr_path = out_dir / f"{stem}.out", out_dir / f"{stem}.err"
    load_average = os.getloadavg()[0]
    verdict: list[str] = []
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: a kill takes its children too
        )
        done = threading.Event()

        def watch() -> None:
            while not done.wait(poll_s):
                over = None
                if time.perf_counter() - started > time_cap_s:
                    over = f"over budget (time > {time_cap_s:g} s)"
                elif _tree_rss(child.pid) > memory_cap_gib * GIB:
                    over = f"over budget (memory > {memory_cap_gib:g} GiB)"
                if over:
                    verdict.append(over)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    output = stdout_path.read_text(errors="replace")
    errors = [line for line in stderr_path.read_text(errors="replace").splitlines() if line]
    if verdict:
        state = verdict[0]
    elif child.returncode == 0:
        state = "ok"
    else:
        state = "failed"
    detail = ""
    if state == "failed":
        messages = [line for line in errors if line.startswith("error:")]
        detail = (messages or errors or [f"exit code {child.returncode}"])[-1][:300]
    result = StepResult(
        step=step,
        subject=subject,
        status=state,
        wall_s=round(wall, 2),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        load_average=round(load_average, 2),
        detail=detail,
    )
    log.info("%s %s: %s", step, subject, result)
    return result, output


class ShapeRun:
    """Every step for one shape, in a work folder of its own."""

    def __init__(
        self,
        shape: str,
        work: Path,
        models: Sequence[str],
        databases: Sequence[str],
        scale: float = 1.0,
    ) -> None:
        self.shape, self.models, self.databases, self.scale = shape, models, databases, scale
        self.work = work / (shape if scale == 1 else f"{shape}-x{scale:g}")
        memory = os.environ.get("DEEPREC_BENCH_SCALE_MEMORY_GIB")  # a lower ceiling, if set
        self.caps = replace(CAPS[shape], memory_gib=float(memory)) if memory else CAPS[shape]
        self.data = self.work / "data"
        self.holding = False  # the measurement lock, held for a group of steps
        self.on_step: Callable[[list[StepResult]], None] = lambda _results: None
        self.results: list[StepResult] = []
        self.env = {
            "DEEPREC_DATA_DIR": str(self.work / "home"),
            "DEEPREC_ONLINE": "false",
            "DEEPREC_LOG_LEVEL": "WARNING",
        }

    def _add(self, result: StepResult) -> None:
        self.results.append(result)
        self.on_step(self.results)  # results on disk after every step: a kill loses one

    @contextlib.contextmanager
    def measuring(self, seconds: float, *, group: bool = False) -> Iterator[None]:
        """Hold the measurement lock for a step, or for a group of steps capped at ``seconds``
        in all if that is at most 15 minutes (the machine's rule; else each step takes it).
        A smoke run is no measurement and takes no lock."""
        if self.holding or self.scale != 1 or (group and seconds > MAX_LOCK_S):
            yield
            return
        with file_lock(os.environ.get("DEEPREC_MEASURE_LOCK", "/work/issues/measure.lock")):
            self.holding = True
            try:
                yield
            finally:
                self.holding = False

    def _run(self, step: str, subject: str, args: Sequence[str], cap: float, **env: str):
        with self.measuring(cap):
            result, output = run_step(
                step,
                subject,
                [*deeprec_command(), *args],
                env={**self.env, **env},
                time_cap_s=cap,
                memory_cap_gib=self.caps.memory_gib,
                log_path=self.work / "logs" / f"{step}-{subject}",
            )
        target = TARGETS.get((self.shape, step, subject))
        if target:
            result.figures["target"] = target
            result.figures["meets_target"] = result.status == "ok" and all(
                (result.wall_s or 0) <= limit
                if key == "wall_s"
                else (result.peak_rss_mib or 0) <= limit * 1024
                for key, limit in target.items()
            )
        self._add(result)
        return result, output

    def synth(self) -> bool:
        if (self.data / ("ratings.csv" if self.shape == "ml-25m" else "ratings.dat")).is_file():
            self._add(StepResult("synth", self.shape, "ok", detail="reused files"))
            return True
        shutil.rmtree(self.data, ignore_errors=True)
        result, _ = self._run(
            "synth",
            self.shape,
            ["data", "synth", self.shape, "--out", str(self.data), "--seed", str(SEED),
             "--scale", str(self.scale), "--no-progress"],
            self.caps.synth,
        )  # fmt: skip
        return result.status == "ok"

    def load(self, database: str) -> None:
        if database == "sqlite":
            path = self.work / "deeprec.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._load(database, f"sqlite:///{path}")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        from app.db.admin import temporary_postgres_database

        admin = os.environ.get("DEEPREC_BENCH_POSTGRES_URL") or os.environ.get(
            "DEEPREC_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL
        )
        try:
            with temporary_postgres_database(admin, prefix="deeprec_scale") as url:
                self._load(database, url)
        except Exception as exc:  # no server: say so in the table
            self._add(
                StepResult("load", database, "skipped", detail=str(exc).splitlines()[0][:200])
            )

    def _load(self, database: str, url: str) -> None:
        upgrade = subprocess.run(
            [*deeprec_command(), "db", "upgrade"],
            cwd=ROOT,
            env={**os.environ, **self.env, "DEEPREC_DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        if upgrade.returncode != 0:
            self._add(StepResult("load", database, "failed", detail=upgrade.stderr.strip()[-300:]))
            return
        result, output = self._run(
            "load",
            database,
            ["data", "load", "--ratings", str(self.data), "--no-progress"],
            self.caps.load,
            DEEPREC_DATABASE_URL=url,
        )
        match = re.search(r"added \d+ users, \d+ items, (\d+) ratings in ([\d.]+) s", output)
        if match:
            result.figures.update(ratings=int(match.group(1)), load_s=float(match.group(2)))

    def model(self, model: str) -> None:
        checkpoint = self.work / "checkpoints" / model
        shutil.rmtree(checkpoint, ignore_errors=True)
        data = ["--ratings", str(self.data)]
        trained, output = self._run(
            "train",
            model,
            ["train", model, *data, "--out", str(checkpoint), "--fit", "train", "--seed", "42"],
            self.caps.train,
        )
        manifest = checkpoint / "manifest.json"
        if trained.status != "ok" or not manifest.is_file():
            for step in ("evaluate", "recommend"):
                self._add(StepResult(step, model, "skipped", detail="no checkpoint"))
            return
        trained.figures.update(training_figures(json.loads(manifest.read_text())))
        evaluated, output = self._run(
            "evaluate",
            model,
            ["evaluate", "--checkpoint", str(checkpoint), *data, "--json"],
            self.caps.evaluate,
        )
        if evaluated.status == "ok":
            with contextlib.suppress(json.JSONDecodeError, KeyError):
                metrics = json.loads(output[output.index("{") :])["metrics"]
                evaluated.figures.update(
                    {
                        key: round(float(metrics[key]), 4)
                        for key in ("ndcg@10_all", "users_evaluated", "users_sampled_from")
                        if key in metrics
                    }
                )
        recommendations = self.work / "recommendations.csv"
        self._run(
            "recommend",
            model,
            ["recommend", "--checkpoint", str(checkpoint), *data, "--out",
             str(recommendations)],
            self.caps.recommend,
        )  # fmt: skip
        recommendations.unlink(missing_ok=True)
        shutil.rmtree(checkpoint, ignore_errors=True)

    def run(self) -> list[StepResult]:
        self.work.mkdir(parents=True, exist_ok=True)
        caps = self.caps
        with self.measuring(caps.synth + caps.load * len(self.databases), group=True):
            if not self.synth():
                return self.results
            for database in self.databases:
                self.load(database)
        for model in self.models:
            # One wait for the lock per model where its three steps fit in one holding.
            with self.measuring(caps.train + caps.evaluate + caps.recommend, group=True):
                self.model(model)
        return self.results


def training_figures(manifest: dict[str, Any]) -> dict[str, Any]:
    """Epochs and seconds per epoch, from whatever the model's manifest records."""
    metrics, extra = manifest.get("metrics", {}), manifest.get("extra", {})
    epoch_seconds: list[float] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if "epoch_seconds" in value and isinstance(value["epoch_seconds"], int | float):
                epoch_seconds.append(float(value["epoch_seconds"]))
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    collect(extra)
    figures: dict[str, Any] = {}
    epochs = metrics.get("epochs") or extra.get("epochs") or (len(epoch_seconds) or None)
    if epochs:
        figures["epochs"] = int(epochs)
    train_seconds = metrics.get("train_seconds")
    if train_seconds is not None:
        figures["train_s"] = round(float(train_seconds), 2)
    if epoch_seconds:
        figures["s_per_epoch"] = round(sum(epoch_seconds) / len(epoch_seconds), 2)
    elif epochs and train_seconds:
        figures["s_per_epoch"] = round(float(train_seconds) / int(epochs), 2)
    if "ndcg@10_all" in metrics:
        figures["ndcg@10_all"] = round(float(metrics["ndcg@10_all"]), 4)
    return figures


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _markdown(shapes: dict[str, Any]) -> str:
    lines = [
        "Seeded synthetic MovieLens-shaped data (`ml.data.synthetic`, seed 0), every step a "
        "`deeprec` subprocess: wall and CPU seconds and peak RSS are the child's own. A step "
        "past its cap is killed and shown as over budget. *load avg*: the 1-minute load "
        "average when the step started (2-core machine shared with other work).",
        "",
    ]
    for shape in SHAPES:
        if shape not in shapes:
            continue
        record = shapes[shape]
        lines += [
            f"## {shape} ({record['size']})",
            "",
            f"- measured {record['created_at']} on commit `{record['commit'][:10]}`"
            + (f" ({record['note']})" if record.get("note") else "")
            + f"; command `{record['command']}`",
            "",
            "| step | subject | status | wall s | CPU s | peak RSS MiB | load avg | figures |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in record["steps"]:
            figures = ", ".join(f"{k}={v}" for k, v in row["figures"].items())
            status = row["status"]
            if row["detail"] and status != "ok":
                status += f": {row['detail']}"
            cells = [
                row["step"], row["subject"], status, row["wall_s"], row["cpu_s"],
                row["peak_rss_mib"], row["load_average"], figures,
            ]  # fmt: skip
            lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _choice(value: str | None, allowed: Sequence[str], default: Sequence[str]) -> list[str]:
    if not value:
        return list(default)
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise SystemExit(f"unknown {unknown}; choose from {list(allowed)}")
    return chosen


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=os.environ.get("DEEPREC_BENCH_SCALE_SHAPES"))
    parser.add_argument("--models", default=os.environ.get("DEEPREC_BENCH_SCALE_MODELS"))
    parser.add_argument("--databases", default=os.environ.get("DEEPREC_BENCH_SCALE_DATABASES"))
    parser.add_argument(
        "--work", default=os.environ.get("DEEPREC_BENCH_SCALE_WORK", "/tmp/deeprec-scale")
    )
    parser.add_argument("--note", default=os.environ.get("DEEPREC_BENCH_SCALE_NOTE", ""))
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Smaller data for a smoke run (not recorded)."
    )
    args = parser.parse_args([] if argv is None else argv)
    shapes = _choice(args.shapes, SHAPES, SHAPES)
    models = _choice(args.models, MODELS, MODELS)
    from ml.data.synthetic import shape_named

    previous_path = RESULTS_DIR / "scale.json"
    recorded: dict[str, Any] = {}
    if previous_path.is_file():
        recorded = json.loads(previous_path.read_text()).get("shapes", {})
    for shape in shapes:
        databases = _choice(
            args.databases, ("sqlite", "postgresql"),
            ("sqlite", "postgresql") if shape == "ml-1m" else ("sqlite",),
        )  # fmt: skip
        lock = None if shape == "ml-1m" else os.environ.get(
            "DEEPREC_BIGMEM_LOCK", "/work/issues/bigmem.lock"
        )  # fmt: skip
        size = shape_named(shape)
        run = ShapeRun(shape, Path(args.work), models, databases, args.scale)
        record = {
            "size": f"{size.users:,} users x {size.items:,} items x {size.ratings:,} ratings",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command_line(),
            "commit": _git("rev-parse", "HEAD"),
            "parents": _git("rev-parse", "HEAD^@").split(),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "note": args.note,
            "machine": machine_info(),
            "steps": [],
        }

        def save(steps: list[StepResult], shape: str = shape, record: dict = record) -> None:
            if previous_path.is_file():  # another run may have recorded another shape since
                recorded.update(json.loads(previous_path.read_text()).get("shapes", {}))
            recorded[shape] = {**record, "steps": [asdict(step) for step in steps]}
            write_result(
                "scale",
                {"shapes": recorded},
                _markdown(recorded),
                seed=SEED,
                title="Scale: MovieLens-shaped synthetic data (ML-1M, ML-10M, ML-25M)",
            )

        if args.scale == 1:  # a smoke run prints its steps and records nothing
            run.on_step = save
        with file_lock(lock if args.scale == 1 else None):
            steps = run.run()
        if args.scale != 1:
            print(json.dumps([asdict(step) for step in steps], indent=1))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main(sys.argv[1:])
