"""DBN training on a small slice of the real digits: each greedy layer and the fine-tuning learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.data.digits import load_images
from ml.models.dbn import DBNConfig
from ml.models.rbm import BernoulliRBMConfig
from ml.training.base import TrainingOptions
from ml.training.dbn import reconstruction_mse, train_dbn, train_rbm_images


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_images("digits").train_images[:400]


OPTIONS = TrainingOptions(device="cpu", seed=3, epochs=8, progress=False)


def test_greedy_training_lowers_each_layers_reconstruction_error(digits: np.ndarray) -> None:
    config = DBNConfig(layers=(64, 48, 24, 8), pretrain_epochs=8, finetune_epochs=0)
    model, history = train_dbn(digits, config, OPTIONS)
    assert len(history.layers) == 3 and history.finetune == []
    for layer in history.layers:
        errors = [epoch["recon_error"] for epoch in layer]
        assert len(errors) == 8
        assert errors[-1] < errors[0]
    # The top RBM's Gibbs chains start from the data's activity of its visible layer.
    assert model.top_visible_mean.shape == (24,)
    assert 0 < float(model.top_visible_mean.mean()) < 1


def test_finetuning_lowers_the_autoencoder_error_and_is_reproducible(digits: np.ndarray) -> None:
    config = DBNConfig(layers=(64, 32, 8), pretrain_epochs=4, finetune_epochs=6)
    model, history = train_dbn(digits, config, OPTIONS, validation=digits[:50])
    mses = [epoch["mse"] for epoch in history.finetune]
    assert mses[-1] < mses[0]
    assert "val_mse" in history.finetune[0]
    again, _ = train_dbn(digits, config, OPTIONS)
    x = torch.as_tensor(digits[:20])
    torch.testing.assert_close(model.reconstruct(x), again.reconstruct(x))
    assert reconstruction_mse(model, x) == pytest.approx(reconstruction_mse(again, x))


def test_rbm_images_training(digits: np.ndarray) -> None:
    rbm, history = train_rbm_images(
        digits, BernoulliRBMConfig(n_visible=64, n_hidden=32), OPTIONS, digits[:50]
    )
    assert rbm.weight.shape == (64, 32)
    assert len(history) == 8 and history[-1]["recon_error"] < history[0]["recon_error"]
    assert "val_recon_error" in history[-1]
    with pytest.raises(ValueError, match="expected images"):
        train_rbm_images(digits[:, :10], BernoulliRBMConfig(n_visible=64, n_hidden=8), OPTIONS)
