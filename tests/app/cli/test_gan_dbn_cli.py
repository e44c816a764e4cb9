"""``deeprec train gan|dbn|rbm-images`` and ``deeprec plot samples`` on the real 8x8 digits.

In-process through the real entry point's error handling (``run_cli``), tiny settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ml.checkpoint import read_manifest
from ml.inference import load_model
from tests.app.cli.runner import deeprec_in_process
from tests.app.cli.test_foundation_cli import assert_one_line_error

deeprec = deeprec_in_process


def test_train_gan_then_plot_samples(tmp_path: Path) -> None:
    out = tmp_path / "gan"
    params = json.dumps({"hidden": 16, "latent_dim": 4})  # the old name of n_hidden still works
    done = deeprec(
        "train", "gan", "--out", str(out), "--epochs", "2", "--conditional",
        "--params-json", params, "--seed", "3", "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = read_manifest(out)
    assert manifest["model_type"] == "gan" and manifest["config"]["conditional"] is True
    assert manifest["config"]["n_hidden"] == 16
    assert {"train_seconds", "d_prob_test_real", "d_prob_generated"} <= manifest["metrics"].keys()
    assert len(manifest["extra"]["history"]["d_loss"]) == 2
    assert manifest["data_sha256"]
    picture = tmp_path / "samples.png"
    done = deeprec(
        "plot", "samples", "--checkpoint", str(out), "--out", str(picture), "--n", "12",
        "--label", "4", "--columns", "6", "--scale", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Image.open(picture) as image:
        assert image.size == (6 * 9 + 1, 2 * 9 + 1)


def test_train_dbn_and_rbm_images(tmp_path: Path) -> None:
    done = deeprec(
        "train", "dbn", "--out", str(tmp_path / "dbn"), "--layers", "64,32,4", "--epochs", "2",
        "--params-json", json.dumps({"finetune_epochs": 2, "gibbs_steps": 5}), "--no-progress",
        "--device", "cpu",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    dbn = load_model(tmp_path / "dbn")
    assert dbn.model_type == "dbn" and dbn.model.config.layers == (64, 32, 4)
    assert read_manifest(tmp_path / "dbn")["metrics"]["test_reconstruction_mse"] > 0
    images = np.full((2, 64), 0.5, dtype=np.float32)
    assert dbn.reconstruct(images).shape == (2, 64)
    done = deeprec(
        "train", "rbm-images", "--out", str(tmp_path / "rbm"), "--hidden", "16",
        "--epochs", "2", "--no-progress", "--device", "cpu",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rbm = load_model(tmp_path / "rbm")
    assert rbm.model_type == "rbm-images" and rbm.reconstruct(images).shape == (2, 64)
    picture = tmp_path / "dbn.png"
    done = deeprec("plot", "samples", "--checkpoint", str(tmp_path / "dbn"), "--out", str(picture))
    assert done.returncode == 0 and picture.stat().st_size > 0


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "x")
    cases = [
        (("train", "gan", "--out", out, "--params-json", '{"bogus": 1}'), "unknown parameter"),
        (("train", "gan", "--out", out, "--params-json", '{"latent_dim": 0}'), "invalid"),
        (("train", "gan", "--out", out, "--dataset", "mnist"), "mnist needs the path"),
        (("train", "gan", "--out", out, "--epochs", "0"), "--epochs"),
        (("train", "dbn", "--out", out, "--layers", "10,5"), "first layer must have 64"),
        (("train", "dbn", "--out", out, "--layers", "a,b"), "--layers"),
        (("train", "rbm-images", "--out", out, "--params-json", '{"cd_k": 0}'), "cd_k"),
        (("plot", "samples", "--checkpoint", str(tmp_path), "--out", out), "manifest.json"),
    ]
    for args, message in cases:
        assert_one_line_error(deeprec(*args), message)
