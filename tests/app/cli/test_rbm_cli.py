"""``deeprec train rbm`` and the generic evaluate/recommend commands on an RBM checkpoint.

The commands run in-process through the real entry point's error handling (``run_cli``) to keep
the suite fast; the foundation's CLI tests cover the subprocess boundary itself.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.app.cli.runner import deeprec_in_process
from tests.app.cli.test_foundation_cli import assert_one_line_error
from tests.conftest import planted_frame

deeprec = deeprec_in_process


FAST = json.dumps({"n_hidden": 8, "batch_size": 8, "learning_rate": 0.1})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("rbm_cli")
    ratings = folder / "planted.csv"
    planted_frame().to_csv(ratings, index=False)
    out = folder / "ckpt"
    done = deeprec(
        "train", "rbm", "--ratings", str(ratings), "--out", str(out), "--epochs", "30",
        "--device", "cpu", "--params-json", FAST, "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["model_type"] == "rbm" and "ndcg@10_all" in printed and "rmse" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metrics"]["ndcg@10_all"] == printed["ndcg@10_all"]
    assert manifest["config"]["training"]["epochs"] == 30 and manifest["config"]["n_hidden"] == 8
    return out, ratings


def test_recommend_exports_csv_within_the_users_group(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, ratings = trained
    out = tmp_path / "recs.csv"
    done = deeprec(
        "recommend", "--checkpoint", str(checkpoint), "--ratings", str(ratings),
        "--users", "1,2", "--k", "3", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["user_id"], r["rank"]) for r in rows] == [
        ("1", "1"), ("1", "2"), ("1", "3"), ("2", "1"), ("2", "2"), ("2", "3"),
    ]  # fmt: skip
    # planted: odd users like items 16..30, even users items 1..15
    in_group = [(int(r["item_id"]) > 15) == (int(r["user_id"]) % 2 == 1) for r in rows]
    assert sum(in_group) >= 5, rows


def test_evaluate_prints_figures_with_popularity_beside(trained: tuple[Path, Path]) -> None:
    checkpoint, ratings = trained
    done = deeprec("evaluate", "--checkpoint", str(checkpoint), "--ratings", str(ratings), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "rbm" and "rmse" in result["rating"]
    assert result["metrics"]["ndcg@10_all"] > result["popularity"]["ndcg@10_all"]


def test_clear_errors(trained: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, ratings = trained
    out = str(tmp_path / "x.csv")
    assert_one_line_error(
        deeprec("recommend", "--checkpoint", str(tmp_path / "nope"), "--out", out),
        "no checkpoint folder there",
    )
    assert_one_line_error(
        deeprec("recommend", "--checkpoint", str(checkpoint), "--ratings", str(ratings),
                "--users", "1,999", "--out", out),
        "unknown user id(s): [999]",
    )  # fmt: skip
    assert_one_line_error(
        deeprec("evaluate", "--checkpoint", str(checkpoint), "--k", "0"), "k must be positive"
    )
    assert_one_line_error(
        deeprec("train", "rbm", "--ratings", str(ratings), "--out", str(tmp_path / "c"),
                "--params-json", '{"n_hidden": "many"}'),
        "parameter 'n_hidden' must be a number",
    )  # fmt: skip
