"""Small, fast checkpoints of every family the Studio shows, trained in-process on real data.

The browser tests need every capability loaded (recommendations, item map, reconstructions, GAN)
but not good models: a few epochs and narrow layers keep the whole set to seconds on a busy 2-core
machine. Each checkpoint is built exactly as its ``deeprec train`` command builds it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ml.checkpoint import Checkpoint, save_checkpoint
from ml.data.digits import load_images
from ml.data.schema import RatingsDataset
from ml.inference.dbn import model_tensors
from ml.inference.gan import gan_tensors
from ml.models.autoencoder import apply_variants, image_config, mult_dae_config
from ml.models.dbn import DBNConfig
from ml.models.gan import GANConfig
from ml.models.rbm import BernoulliRBMConfig, RBMConfig
from ml.models.rbm_config import ItemRBMSettings, RBMTraining
from ml.training import autoencoder as autoencoder_training
from ml.training.autoencoder import train_images, train_ranking
from ml.training.base import TrainingOptions
from ml.training.baselines import EASETrainingConfig, train_ease
from ml.training.dbn import train_dbn, train_rbm_images
from ml.training.gan import train_gan
from ml.training.rbm import train_rbm_checkpoint

OPTIONS = TrainingOptions(device="cpu", seed=7, epochs=1, progress=False)


def ratings_checkpoints(dataset: RatingsDataset) -> dict[str, Checkpoint]:
    """EASE, a small Mult-DAE and a small rating RBM on the ratings."""
    n_items = dataset.ratings["item_id"].nunique()
    with pytest.MonkeyPatch.context() as patch:
        # The item-side DAE of the served embedding trains a fixed 100 epochs; 5 draw a map.
        patch.setattr(autoencoder_training, "ITEM_DAE_EPOCHS", 5)
        autoencoder = train_ranking(
            dataset.ratings,
            mult_dae_config(n_items, hidden_layers=(64,)),
            replace(OPTIONS, epochs=4),
            data_sha256="studio-test",
        )
    return {
        "ease": train_ease(dataset, EASETrainingConfig(l2=300.0)),
        "autoencoder": autoencoder,
        "rbm": train_rbm_checkpoint(
            dataset,
            RBMConfig(
                n_hidden=32,
                training=RBMTraining(epochs=2),
                item_rbm=ItemRBMSettings(n_hidden=16, epochs=1),
            ),
            OPTIONS,
        ),
    }


def image_checkpoints(showcase: bool = False) -> dict[str, Checkpoint]:
    """Digit autoencoder, image RBM, DBN and a conditional GAN on the real 8x8 digits.

    ``showcase`` trains long enough for pictures worth showing (the README's screenshots: the
    GAN's digits become legible after about 150 epochs), minutes instead of seconds.
    """
    data = load_images("digits")
    images, labels = data.train_images, data.train_labels
    epochs = (
        {"ae": 60, "rbm": 20, "dbn": 10, "tune": 20, "gan": 150}
        if showcase
        else {"ae": 10, "rbm": 3, "dbn": 2, "tune": 2, "gan": 10}
    )
    autoencoder = train_images(
        data, apply_variants(image_config(64), "denoising"), replace(OPTIONS, epochs=epochs["ae"])
    )
    rbm_config = BernoulliRBMConfig(n_visible=64, n_hidden=64)
    rbm, _ = train_rbm_images(images, rbm_config, replace(OPTIONS, epochs=epochs["rbm"]))
    dbn_config = DBNConfig(
        layers=(64, 48, 16), pretrain_epochs=epochs["dbn"], finetune_epochs=epochs["tune"]
    )
    dbn, _ = train_dbn(images, dbn_config, replace(OPTIONS, epochs=epochs["dbn"]))
    gan_config = GANConfig(n_hidden=128 if showcase else 32, latent_dim=16, conditional=True)
    gan, _ = train_gan(images, labels, gan_config, replace(OPTIONS, epochs=epochs["gan"]))
    return {
        "autoencoder-images": autoencoder,
        "rbm-images": Checkpoint(
            model_type="rbm-images",
            config=dataclasses.asdict(rbm_config),
            tensors=model_tensors(rbm),
            extra={"gibbs_steps": 50},
        ),
        "dbn": Checkpoint(
            model_type="dbn", config=dataclasses.asdict(dbn_config), tensors=model_tensors(dbn)
        ),
        "gan": Checkpoint(
            model_type="gan", config=dataclasses.asdict(gan_config), tensors=gan_tensors(gan)
        ),
    }


def train_studio_models(
    dataset: RatingsDataset, root: Path, *, showcase: bool = False
) -> dict[str, Path]:
    """Every checkpoint, saved under ``root``: model type -> checkpoint folder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: a second thread only contends on a busy machine
    try:
        trained = {**ratings_checkpoints(dataset), **image_checkpoints(showcase)}
    finally:
        torch.set_num_threads(threads)
    return {name: save_checkpoint(ckpt, root / name) for name, ckpt in trained.items()}
