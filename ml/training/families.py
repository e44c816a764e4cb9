"""One training entry point per model family, all of one shape: what ``ml.registry`` names.

``train_X(data, config, options, *, fit="all") -> Checkpoint``: ``data`` is the family's data
kind (a ``RatingsDataset``, with its items for the content families, or an ``ImageDataset``);
sizes that follow the data (items, users, pixels) are set from it here; ``fit`` says what the
served model is fitted on (``ml.training.fit``) and is ignored by families that have no second
fit. Each function calls the family's trainer: a trainer's signature changes here and nowhere
else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ml.checkpoint import Checkpoint
from ml.data.digits import ImageDataset
from ml.data.schema import RatingsDataset
from ml.models.autoencoder import AutoencoderConfig
from ml.models.autorec import AutoRecConfig
from ml.models.baselines import EASETrainingConfig, PopularityTrainingConfig
from ml.models.content import ContentConfig
from ml.models.dbn import DBNConfig
from ml.models.gan import GANConfig
from ml.models.rbm import BernoulliRBMConfig, RBMConfig
from ml.training.base import TrainingOptions


def _stamped(checkpoint: Checkpoint, **extra: Any) -> Checkpoint:
    """The checkpoint with ``extra`` recorded in its manifest (seed, device)."""
    checkpoint.extra.update(extra)
    return checkpoint


# ------------------------------------------------------------------------------------ ratings
def train_rbm(
    data: RatingsDataset, config: RBMConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.rbm import train_rbm_checkpoint

    checkpoint = train_rbm_checkpoint(data, config, options, fit=fit)
    return _stamped(checkpoint, device=str(options.torch_device))


def train_autoencoder(
    data: RatingsDataset, config: AutoencoderConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.autoencoder import train_ranking

    return train_ranking(data.ratings, config, options, data_sha256=data.sha256, fit=fit)


def train_autorec(
    data: RatingsDataset, config: AutoRecConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.autorec import train_autorec as fit_autorec

    return fit_autorec(data.ratings, config, options, data_sha256=data.sha256, fit=fit)


def train_ease(
    data: RatingsDataset, config: EASETrainingConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.baselines import train_ease as fit_ease

    return _stamped(fit_ease(data, config, fit=fit), seed=options.seed, device=options.device)


def train_popularity(
    data: RatingsDataset,
    config: PopularityTrainingConfig,
    options: TrainingOptions,
    *,
    fit: str = "all",
) -> Checkpoint:
    from ml.training.baselines import train_popularity as fit_popularity

    checkpoint = fit_popularity(data, config, fit=fit)
    return _stamped(checkpoint, seed=options.seed, device=options.device)


def train_content(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Content only (no second fit: ``fit`` does not apply)."""
    from ml.training.content import train_content as fit_content

    return _stamped(fit_content(data, config, options), device=str(options.torch_device))


def train_hybrid(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Content + EASE (no second fit: ``fit`` does not apply)."""
    from ml.training.content import train_hybrid as fit_hybrid

    return _stamped(fit_hybrid(data, config, options), device=str(options.torch_device))


# ------------------------------------------------------------------------------------- images
def train_image_autoencoder(
    data: ImageDataset, config: AutoencoderConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.autoencoder import train_images

    return train_images(data, config, options)


def train_image_rbm(
    data: ImageDataset, config: BernoulliRBMConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """One Bernoulli RBM with CD-k; reconstruction and free energy on the test images."""
    from ml.training.dbn import rbm_images_checkpoint

    config = dataclasses.replace(config, n_visible=data.n_pixels)
    return rbm_images_checkpoint(data, config, options)


def train_dbn(
    data: ImageDataset, config: DBNConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Greedy CD-k pre-training and fine-tuning; test reconstruction error in the metrics."""
    from ml.training.dbn import dbn_checkpoint

    config = dataclasses.replace(config, layers=(data.n_pixels, *config.layers[1:]))
    options = dataclasses.replace(options, epochs=config.pretrain_epochs)
    return dbn_checkpoint(data, config, options)


def train_gan(
    data: ImageDataset, config: GANConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Adversarial training; D's verdict on test and generated images in the metrics."""
    from ml.training.gan import train_gan_checkpoint

    config = dataclasses.replace(config, side=data.side)
    return train_gan_checkpoint(data, config, options)
