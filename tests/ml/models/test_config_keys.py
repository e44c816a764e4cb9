"""One naming scheme across the configs; manifests and overrides with the old names still load."""

from __future__ import annotations

import dataclasses

import pytest

from app.core.params import override_config
from ml.checkpoint import Checkpoint
from ml.inference.dbn import model_tensors, rebuild_dbn
from ml.inference.gan import rebuild as rebuild_gan
from ml.models.autoencoder import AutoencoderConfig, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.models.config_keys import rename_legacy_keys
from ml.models.content import ContentConfig
from ml.models.dbn import DBN, DBNConfig
from ml.models.gan import GAN, GANConfig


def test_old_manifest_keys_map_to_the_current_names() -> None:
    old = {**mult_dae_config(20).to_dict(), "lr": 0.01, "hidden": [16, 4]}
    del old["learning_rate"], old["hidden_layers"]
    config = AutoencoderConfig.from_dict(old)
    assert config.learning_rate == 0.01 and config.hidden_layers == (16, 4)
    assert AutoencoderConfig.from_dict(config.to_dict()) == config
    autorec = AutoRecConfig.from_dict({"n_users": 5, "hidden": 7, "lr": 0.002})
    assert autorec.n_hidden == 7 and autorec.learning_rate == 0.002
    assert ContentConfig.from_dict({"hidden": 9}).n_hidden == 9
    with pytest.raises(ValueError, match="same setting"):
        rename_legacy_keys({"lr": 1.0, "learning_rate": 2.0}, AutoRecConfig.LEGACY_KEYS)


def test_a_dbn_checkpoint_written_with_finetune_lr_loads() -> None:
    model = DBN(DBNConfig(layers=(4, 3, 2), finetune_learning_rate=0.01))
    config = dataclasses.asdict(model.config)
    config["finetune_lr"] = config.pop("finetune_learning_rate")
    loaded = rebuild_dbn(Checkpoint("dbn", config, model_tensors(model)))
    assert loaded.config == model.config


def test_a_gan_checkpoint_written_with_hidden_loads() -> None:
    model = GAN(GANConfig(n_hidden=6, latent_dim=3))
    config = dataclasses.asdict(model.config)
    config["hidden"] = config.pop("n_hidden")
    loaded = rebuild_gan(Checkpoint("gan", config, model_tensors(model)))
    assert loaded.config == model.config


def test_overrides_accept_the_old_names() -> None:
    config = override_config(AutoRecConfig(), {"hidden": 12, "lr": 0.01})
    assert config.n_hidden == 12 and config.learning_rate == 0.01
    assert override_config(mult_dae_config(9), {"hidden": [6]}).hidden_layers == (6,)
    assert override_config(GANConfig(), {"hidden": 8}).n_hidden == 8
    assert override_config(ContentConfig(), {"hidden": 8}).n_hidden == 8
