"""The CLI as a user runs it: a real subprocess, real data, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_DATA_DIR


def deeprec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "DEEPREC_DATA_DIR": str(TEST_DATA_DIR), "DEEPREC_ONLINE": "false"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=300,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], done.stderr


def test_data_stats_of_real_ml100k(ml100k) -> None:
    done = deeprec("data", "stats", "ml-100k", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ratings": 100000, "users": 943, "items": 1682}


def test_unknown_dataset_lists_known_ones() -> None:
    assert_one_line_error(deeprec("data", "stats", "ml-7"), "known data sets: ml-100k")


def test_malformed_ratings_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,rating\n1,2,4\n1,2,oops\n")
    done = deeprec("data", "stats", "x", "--ratings", str(bad))
    assert_one_line_error(done, f"{bad}: line 3: rating must be a number")


@pytest.mark.slow
def test_baseline_evaluate_prints_protocol_figures(ml100k) -> None:
    done = deeprec("baseline", "evaluate", "popularity", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert round(figures["ndcg@10_all"], 3) == 0.246
    assert {"precision@10_liked", "map@10_all", "coverage"} <= figures.keys()
    assert_one_line_error(deeprec("baseline", "evaluate", "svd"), "unknown baseline 'svd'")
