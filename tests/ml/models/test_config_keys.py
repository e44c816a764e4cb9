"""One naming scheme across the configs; manifests and overrides with the old names still load."""

from __future__ import annotations

import dataclasses

import pytest

from app.core.params import ParamsError, override_config
from ml.checkpoint import Checkpoint
from ml.inference.dbn import model_tensors, rebuild_dbn
from ml.inference.gan import rebuild as rebuild_gan
from ml.models.autoencoder import AutoencoderConfig, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.models.config_keys import rename_legacy_keys
from ml.models.content import ContentConfig
from ml.models.dbn import DBN, DBNConfig
from ml.models.gan import GAN, GANConfig
from ml.models.rbm_config import FoldInSettings, ItemRBMSettings, RBMConfig, RBMTraining


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


def test_the_rbm_config_keeps_its_sections_apart_and_reads_the_flat_names_of_before() -> None:
    flat = {"n_hidden": 9, "epochs": 3, "item_rbm_hidden": 7, "fold_in_prior": 2.0, "gone": 1}
    config = RBMConfig.from_dict(flat)  # a manifest from before the split; unknown keys dropped
    assert config == RBMConfig(
        n_hidden=9,
        training=RBMTraining(epochs=3),
        item_rbm=ItemRBMSettings(n_hidden=7),
        fold_in=FoldInSettings(prior=2.0),
    )
    assert config.to_dict()["training"]["epochs"] == 3  # manifests now nest the sections
    assert RBMConfig.from_dict(config.to_dict()) == config
    assert RBMConfig.from_dict({"training.epochs": 3, "item_rbm": {"n_hidden": 7}}).item_rbm == (
        ItemRBMSettings(n_hidden=7)
    )
    with pytest.raises(ValueError, match="same setting"):
        RBMConfig.from_dict({"epochs": 3, "training.epochs": 4})
    with pytest.raises(ValueError, match="given twice"):
        RBMConfig.from_dict({"training": {"epochs": 3}, "training.epochs": 4})


def test_rbm_overrides_name_a_sections_setting_three_ways_and_refuse_unknown_ones() -> None:
    by_path = override_config(RBMConfig(), {"training.epochs": 4, "fold_in.steps": 9})
    nested = override_config(RBMConfig(), {"training": {"epochs": 4}, "fold_in": {"steps": 9}})
    flat = override_config(RBMConfig(), {"epochs": 4, "fold_in_steps": 9})  # the old names
    assert by_path == nested == flat
    assert (flat.training.epochs, flat.fold_in.steps, flat.n_hidden) == (4, 9, 200)
    with pytest.raises(ParamsError, match=r"training: unknown parameter\(s\) \['epoch'\]"):
        override_config(RBMConfig(), {"training.epoch": 4})
    with pytest.raises(ParamsError, match="must be an integer"):
        override_config(RBMConfig(), {"training": {"epochs": 2.5}})
    with pytest.raises(ParamsError, match="is a section"):
        override_config(RBMConfig(), {"training": 3})
    with pytest.raises(ParamsError, match=r"item_rbm\.n_hidden"):  # the message lists the names
        override_config(RBMConfig(), {"item_rbm_size": 3})
