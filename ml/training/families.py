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
import hashlib
import time
from typing import Any

import numpy as np
import torch

from ml.checkpoint import Checkpoint, module_tensors
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


def images_sha256(data: ImageDataset) -> str:
    """A fingerprint of an image data set: sha256 over its train/test pixels and labels."""
    digest = hashlib.sha256()
    for part in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


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


def _image_checkpoint(
    model_type: str,
    config: Any,
    model: torch.nn.Module,
    data: ImageDataset,
    metrics: dict[str, Any],
    **extra: Any,
) -> Checkpoint:
    return Checkpoint(
        model_type=model_type,
        config=dataclasses.asdict(config),
        tensors=module_tensors(model),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={"dataset": data.name, **extra},
    )


def train_image_rbm(
    data: ImageDataset, config: BernoulliRBMConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """One Bernoulli RBM with CD-k; reconstruction and free energy on the test images."""
    from ml.training.dbn import train_rbm_images

    config = dataclasses.replace(config, n_visible=data.n_pixels)
    started = time.perf_counter()
    rbm, history = train_rbm_images(data.train_images, config, options, data.test_images)
    last = history[-1]
    metrics = {
        "train_seconds": time.perf_counter() - started,
        "recon_error": last["recon_error"],
        "test_reconstruction_mse": last["val_recon_error"],
        "free_energy": last["free_energy"],
        "test_free_energy": last["val_free_energy"],
    }
    extra = {"seed": options.seed, "history": history, "gibbs_steps": 500}
    return _image_checkpoint("rbm-images", config, rbm, data, metrics, **extra)


def train_dbn(
    data: ImageDataset, config: DBNConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Greedy CD-k pre-training and fine-tuning; test reconstruction error in the metrics."""
    from ml.training.dbn import reconstruction_mse
    from ml.training.dbn import train_dbn as fit_dbn

    config = dataclasses.replace(config, layers=(data.n_pixels, *config.layers[1:]))
    options = dataclasses.replace(options, epochs=config.pretrain_epochs)
    started = time.perf_counter()
    model, history = fit_dbn(data.train_images, config, options, data.test_images)
    train_seconds = time.perf_counter() - started
    test = torch.as_tensor(data.test_images, device=options.torch_device)
    metrics = {
        "train_seconds": train_seconds,
        "test_reconstruction_mse": reconstruction_mse(model, test),
        "layer_recon_error": [layer[-1]["recon_error"] for layer in history.layers],
    }
    extra = {"seed": options.seed, "device": str(options.torch_device)}
    extra["history"] = history.as_dict()
    return _image_checkpoint("dbn", config, model, data, metrics, **extra)


def train_gan(
    data: ImageDataset, config: GANConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    """Adversarial training; D's verdict on test and generated images in the metrics."""
    from ml.inference.gan import GANSampler
    from ml.training.gan import train_gan as fit_gan

    config = dataclasses.replace(config, side=data.side)
    started = time.perf_counter()
    model, history = fit_gan(data.train_images, data.train_labels, config, options)
    train_seconds = time.perf_counter() - started
    sampler = GANSampler(model, options.torch_device)
    test_labels = data.test_labels if config.conditional else None
    fake = sampler.sample(len(data.test_images), seed=0)
    fake_labels = np.arange(len(fake)) % config.n_classes if config.conditional else None
    metrics = {
        "train_seconds": train_seconds,
        "final_d_loss": history.d_loss[-1],
        "final_g_loss": history.g_loss[-1],
        "d_prob_test_real": float(sampler.discriminate(data.test_images, test_labels).mean()),
        "d_prob_generated": float(sampler.discriminate(fake, fake_labels).mean()),
    }
    extra = {"seed": options.seed, "epochs": options.epochs, "device": str(options.torch_device)}
    extra["history"] = history.as_dict()
    return _image_checkpoint("gan", config, model, data, metrics, **extra)
