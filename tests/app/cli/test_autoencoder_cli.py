"""``deeprec train autoencoder|autorec``, ``deeprec plot embeddings|reconstructions`` and the
generic evaluate command on their checkpoints, through the real entry point's error handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.app.cli.test_foundation_cli import assert_one_line_error
from tests.app.cli.test_rbm_cli import deeprec
from tests.conftest import planted_frame

FAST = json.dumps({"hidden_layers": [8], "batch_size": 8, "noise_level": 0.5, "weight_decay": 0.0})


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ae_cli") / "planted.csv"
    planted_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ranking(ratings_file: Path) -> Path:
    out = ratings_file.parent / "ranking"
    done = deeprec(
        "train", "autoencoder", "--ratings", str(ratings_file), "--out", str(out),
        "--epochs", "60", "--device", "cpu", "--params-json", FAST, "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["model_type"] == "autoencoder" and "ndcg@10_all" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metrics"]["ndcg@10_all"] == printed["ndcg@10_all"]
    assert manifest["config"]["hidden_layers"] == [8] and manifest["extra"]["variant"] == "mult-dae"
    return out


def test_evaluate_a_ranking_checkpoint(ranking: Path, ratings_file: Path) -> None:
    done = deeprec(
        "evaluate", "--checkpoint", str(ranking), "--ratings", str(ratings_file), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "autoencoder"
    assert result["metrics"]["ndcg@10_all"] > result["popularity"]["ndcg@10_all"]


def test_plot_embeddings(ranking: Path, ratings_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.png"
    done = deeprec(
        "plot", "embeddings", "--checkpoint", str(ranking), "--ratings", str(ratings_file),
        "--out", str(out), "--min-ratings", "1", "--method", "autoencoder",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size[0] > 100


def test_train_autorec(ratings_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "autorec"
    done = deeprec(
        "train", "autorec", "--ratings", str(ratings_file), "--out", str(out), "--epochs", "5",
        "--params-json", '{"n_hidden": 4, "batch_size": 8}', "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["model_type"] == "autorec" and printed["rmse"] > 0


def test_train_digits_and_plot_reconstructions(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    done = deeprec(
        "train", "autoencoder", "--target", "digits", "--variant", "sparse,denoising",
        "--code-dim", "8", "--epochs", "3", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["model_type"] == "autoencoder-images" and "mse_denoised@0.3" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["hidden_layers"] == [8] and manifest["config"]["sparsity"] == "kl"
    picture = tmp_path / "grid.png"
    done = deeprec("plot", "reconstructions", "--checkpoint", str(out), "--out", str(picture))
    assert done.returncode == 0, done.stderr
    assert Image.open(picture).size == (10 * 48, 3 * 48)
    assert_one_line_error(
        deeprec("plot", "embeddings", "--checkpoint", str(out), "--out", str(picture)),
        "cannot serve recommendations",
    )


def test_clear_errors(ratings_file: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "c")
    common = ("--ratings", str(ratings_file), "--out", out)
    assert_one_line_error(
        deeprec("train", "autoencoder", *common, "--variant", "fancy"), "unknown variant"
    )
    assert_one_line_error(
        deeprec("train", "autoencoder", *common, "--target", "faces"), "unknown target"
    )
    assert_one_line_error(
        deeprec("train", "autoencoder", *common, "--params-json", '{"width": 3}'),
        "unknown parameter(s) ['width']",
    )
    assert_one_line_error(
        deeprec("train", "autoencoder", *common, "--params-json", '{"noise_level": 1.5}'),
        "drop probability must be < 1",
    )
    assert_one_line_error(
        deeprec("train", "autorec", *common, "--params-json", '{"hidden": "big"}'),
        "parameter 'n_hidden' must be a number",
    )
    assert_one_line_error(deeprec("train", "autorec", *common, "--epochs", "0"), "positive")
