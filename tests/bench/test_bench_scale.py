"""The scale benchmark's step runner: the child's own figures, and a kill at a cap."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.bench_scale import run_step, training_figures


def test_a_step_is_measured(tmp_path: Path) -> None:
    code = "x = bytearray(200 * 1024 * 1024); print('done')"
    result, output = run_step(
        "train", "toy", [sys.executable, "-c", code], time_cap_s=60, memory_cap_gib=4,
        log_path=tmp_path / "ok",
    )  # fmt: skip
    assert result.status == "ok" and output.strip() == "done"
    assert result.peak_rss_mib is not None and result.peak_rss_mib >= 200
    assert result.wall_s is not None and result.cpu_s is not None


def test_over_budget_steps_are_killed_and_recorded(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    slow, _ = run_step("train", "slow", sleeper, time_cap_s=0.5, memory_cap_gib=4,
                       log_path=tmp_path / "slow")  # fmt: skip
    assert slow.status.startswith("over budget (time") and (slow.wall_s or 99) < 20
    hog = [sys.executable, "-c", "import time; x = bytearray(400 * 1024 * 1024); time.sleep(30)"]
    big, _ = run_step("train", "big", hog, time_cap_s=25, memory_cap_gib=0.2,
                      log_path=tmp_path / "big")  # fmt: skip
    assert big.status.startswith("over budget (memory") and (big.wall_s or 99) < 20
    failing = [sys.executable, "-c", "import sys; print('error: no data', file=sys.stderr); "
               "sys.exit(2)"]  # fmt: skip
    failed, _ = run_step("load", "x", failing, time_cap_s=20, memory_cap_gib=1,
                         log_path=tmp_path / "failed")  # fmt: skip
    assert failed.status == "failed" and failed.detail == "error: no data"


def test_training_figures_from_a_manifest() -> None:
    manifest = {
        "metrics": {"train_seconds": 12.0, "epochs": 4.0, "ndcg@10_all": 0.31234},
        "extra": {"history": [{"epoch": 1, "epoch_seconds": 2.0}, {"epoch_seconds": 4.0}]},
    }
    figures = training_figures(manifest)
    assert figures == {"epochs": 4, "train_s": 12.0, "s_per_epoch": 3.0, "ndcg@10_all": 0.3123}
