"""One training entry point per model family, all of one shape: what ``ml.registry`` names.

``train_X(data, config, options, *, fit="all") -> Checkpoint``: ``data`` is the family's data
kind (a ``RatingsDataset``, with its items for the content families, or an ``ImageDataset``);
a config whose data-bound sizes (pixels, image side, learned featurizer) do not fit ``data`` is
refused with a ``ValueError`` (``ModelSpec.config(data)`` builds one that fits); ``fit`` says
what the served model is fitted on (``ml.training.fit``) and is ignored by families that have
no second fit. Each function calls the family's trainer: a trainer's signature changes here and
nowhere else. The first paragraph of each docstring is its ``deeprec train`` command's help.
A new family may instead point its spec at a function of this shape in its own module.
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


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# ------------------------------------------------------------------------------------ ratings
def train_rbm(
    data: RatingsDataset, config: RBMConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Train the rating RBM (Salakhutdinov, Mnih & Hinton 2007)."""
    from ml.training.rbm import train_rbm_checkpoint

    checkpoint = train_rbm_checkpoint(data, config, options, fit=fit)
    return _stamped(checkpoint, device=str(options.torch_device))


def train_autoencoder(
    data: RatingsDataset, config: AutoencoderConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Train Mult-DAE (top-k ranking)."""
    from ml.training.autoencoder import train_ranking

    return train_ranking(data.ratings, config, options, data_sha256=data.sha256, fit=fit)


def train_autorec(
    data: RatingsDataset, config: AutoRecConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Train I-AutoRec (rating prediction): measured on the protocol's test fold, served from
    every rating (``--fit all``, the default) or the train fold."""
    from ml.training.autorec import train_autorec as fit_autorec

    return fit_autorec(data.ratings, config, options, data_sha256=data.sha256, fit=fit)


def train_ease(
    data: RatingsDataset, config: EASETrainingConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Fit EASE (Steck 2019): lambda tuned on the validation pair, measured on the protocol's
    test fold, served from every rating (``--fit all``) or the train fold."""
    from ml.training.baselines import train_ease as fit_ease

    return _stamped(fit_ease(data, config, fit=fit), seed=options.seed, device=options.device)


def train_popularity(
    data: RatingsDataset,
    config: PopularityTrainingConfig,
    options: TrainingOptions,
    *,
    fit: str = "all",
) -> Checkpoint:
    """Count ratings per item (the cold-start answer): measured on the protocol's test fold,
    served from every rating (``--fit all``) or the train fold."""
    from ml.training.baselines import train_popularity as fit_popularity

    checkpoint = fit_popularity(data, config, fit=fit)
    return _stamped(checkpoint, seed=options.seed, device=options.device)


def _content_family(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, hybrid: bool
) -> Checkpoint:
    from ml.training import content

    _require(
        not (config.featurizer or config.n_features),
        "featurizer and n_features are learned from the items, not parameters",
    )
    train = content.train_hybrid if hybrid else content.train_content
    return _stamped(train(data, config, options), device=str(options.torch_device))


def train_content(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Content-only: a denoising autoencoder over item metadata; users ranked by their profile.

    No second fit: ``fit`` does not apply."""
    return _content_family(data, config, options, hybrid=False)


def train_hybrid(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Content + EASE: cold items get an EASE column predicted from their content codes.

    No second fit: ``fit`` does not apply."""
    return _content_family(data, config, options, hybrid=True)


# ------------------------------------------------------------------------------------- images
def train_image_autoencoder(
    data: ImageDataset, config: AutoencoderConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Train the autoencoder on images."""
    from ml.training.autoencoder import train_images

    return train_images(data, config, options)


def train_image_rbm(
    data: ImageDataset, config: BernoulliRBMConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Train one Bernoulli RBM on images with CD-k; an `rbm-images` checkpoint (reconstruction
    and free energy on the test images in its metrics)."""
    from ml.training.dbn import rbm_images_checkpoint

    n_pixels = data.n_pixels
    _require(
        config.n_visible == n_pixels,
        f"n_visible must be {n_pixels} (the pixels), got {config.n_visible}",
    )
    return rbm_images_checkpoint(data, config, options)


def train_dbn(
    data: ImageDataset, config: DBNConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """CD-k pre-training layer by layer, fine-tuning of the unrolled autoencoder; writes `dbn`
    (test reconstruction error in its metrics)."""
    from ml.training.dbn import dbn_checkpoint

    n_pixels = data.n_pixels
    _require(
        config.layers[0] == n_pixels,
        f"the first layer must have {n_pixels} units (the pixels), got {config.layers}",
    )
    options = dataclasses.replace(options, epochs=config.pretrain_epochs)
    return dbn_checkpoint(data, config, options)


def train_gan(
    data: ImageDataset, config: GANConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Train a GAN (an MLP for 8x8 digits, DCGAN for 28x28) and write a `gan` checkpoint (D's
    verdict on test and generated images in its metrics)."""
    from ml.training.gan import train_gan_checkpoint

    _require(
        config.side == data.side,
        f"side={config.side} does not match the {data.name} images ({data.side})",
    )
    return train_gan_checkpoint(data, config, options)
