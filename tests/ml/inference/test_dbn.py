"""Serving DBN and image-RBM checkpoints: the image-model protocol, round trips, seeded samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.checkpoint import Checkpoint, save_checkpoint
from ml.inference import load_model
from ml.inference.dbn import DBNImageModel, RBMImageModel, model_tensors
from ml.inference.images import ImageModel
from ml.models.dbn import DBN, DBNConfig
from ml.models.rbm import BernoulliRBM, BernoulliRBMConfig

IMAGES = np.random.default_rng(0).random((6, 64)).astype(np.float32)


def _perturbed(module: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.3)
    return module.eval()


def test_dbn_round_trip(tmp_path: Path) -> None:
    model = _perturbed(DBN(DBNConfig(layers=(64, 20, 5), gibbs_steps=15)))
    ckpt = Checkpoint("dbn", dataclasses.asdict(model.config), model_tensors(model))
    loaded = load_model(save_checkpoint(ckpt, tmp_path / "dbn"), "cpu")
    assert isinstance(loaded, DBNImageModel) and isinstance(loaded, ImageModel)
    assert loaded.model_type == "dbn" and loaded.side == 8
    expected = model.reconstruct(torch.as_tensor(IMAGES)).numpy()
    np.testing.assert_allclose(loaded.reconstruct(IMAGES), expected, rtol=1e-5)
    assert loaded.encode(IMAGES).shape == (6, 5) and loaded.up_pass(IMAGES).shape == (6, 5)
    first = loaded.sample(4, seed=2)
    np.testing.assert_array_equal(first, loaded.sample(4, seed=2))
    assert first.shape == (4, 64) and first.min() >= 0 and first.max() <= 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loaded.reconstruct(IMAGES + 2)


def test_rbm_images_round_trip(tmp_path: Path) -> None:
    rbm = _perturbed(BernoulliRBM(BernoulliRBMConfig(n_visible=64, n_hidden=16)))
    ckpt = Checkpoint(
        "rbm-images",
        dataclasses.asdict(rbm.config),
        model_tensors(rbm),
        extra={"gibbs_steps": 10},
    )
    loaded = load_model(save_checkpoint(ckpt, tmp_path / "rbm"), "cpu")
    assert isinstance(loaded, RBMImageModel) and isinstance(loaded, ImageModel)
    assert loaded.model_type == "rbm-images" and loaded.gibbs_steps == 10
    expected = rbm.reconstruct(torch.as_tensor(IMAGES)).numpy()
    np.testing.assert_allclose(
        loaded.reconstruct(IMAGES[0].reshape(1, 8, 8)), expected[:1], rtol=1e-5
    )
    np.testing.assert_array_equal(loaded.sample(3, seed=1), loaded.sample(3, seed=1))
