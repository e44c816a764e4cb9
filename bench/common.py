"""Shared benchmark plumbing: machine description, medians, result files.

Every benchmark writes ``bench/results/<name>.json`` and ``bench/results/<name>.md`` carrying the
machine, torch version, device, seed and the command that produced them.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def command_line() -> str:
    """The command as typed (``python -m bench rbm``), with the interpreter's path shortened."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    argv[0] = Path(argv[0]).name
    return " ".join(shlex.quote(a) for a in argv)


def timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[Any, list[float]]:
    """Run ``fn`` ``repeats`` times; return the last result and every wall time (seconds)."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_result(
    name: str,
    payload: dict[str, Any],
    markdown_body: str,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    title: str | None = None,
) -> Path:
    """Write ``<name>.json`` and ``<name>.md`` under bench/results with the run's context."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    context = {
        "benchmark": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command_line(),
        "seed": seed,
        "machine": machine_info(device),
    }
    (RESULTS_DIR / f"{name}.json").write_text(
        json.dumps({**context, **payload}, indent=2, default=str) + "\n"
    )
    machine = context["machine"]
    header = [
        f"# {title or name}",
        "",
        f"- command: `{context['command']}`",
        f"- created: {context['created_at']}, seed: {seed}",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), device {machine['device']}"
        + (f", GPU {machine['gpu']}" if machine["gpu"] else ""),
        "",
        "",
    ]
    (RESULTS_DIR / f"{name}.md").write_text("\n".join(header) + markdown_body)
    return RESULTS_DIR / f"{name}.md"
