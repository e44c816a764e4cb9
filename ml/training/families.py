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


# ------------------------------------------------------------------------------------ ratings
def train_rbm(
    data: RatingsDataset, config: RBMConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.rbm import train_rbm_checkpoint

    checkpoint = train_rbm_checkpoint(data, config, options, fit=fit)
    checkpoint.extra["device"] = str(options.torch_device)
    return checkpoint


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
    data: RatingsDataset, config: Any, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.baselines import train_ease as fit_ease

    checkpoint = fit_ease(data, config, fit=fit)
    checkpoint.extra.update({"seed": options.seed, "device": options.device})
    return checkpoint


def train_popularity(
    data: RatingsDataset, config: Any, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.baselines import train_popularity as fit_popularity

    checkpoint = fit_popularity(data, config, fit=fit)
    checkpoint.extra.update({"seed": options.seed, "device": options.device})
    return checkpoint


def train_content(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.content import train_content as fit_content

    checkpoint = fit_content(data, config, options)
    checkpoint.extra["device"] = str(options.torch_device)
    return checkpoint


def train_hybrid(
    data: RatingsDataset, config: ContentConfig, options: TrainingOptions, *, fit: str = "all"
) -> Checkpoint:
    from ml.training.content import train_hybrid as fit_hybrid

    checkpoint = fit_hybrid(data, config, options)
    checkpoint.extra["device"] = str(options.torch_device)
    return checkpoint


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
    return Checkpoint(
        model_type="rbm-images",
        config=dataclasses.asdict(config),
        tensors=module_tensors(rbm),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={"dataset": data.name, "seed": options.seed, "history": history, "gibbs_steps": 500},
    )


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
    return Checkpoint(
        model_type="dbn",
        config=dataclasses.asdict(config),
        tensors=module_tensors(model),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={
            "dataset": data.name,
            "seed": options.seed,
            "device": str(options.torch_device),
            "history": history.as_dict(),
        },
    )


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
    return Checkpoint(
        model_type="gan",
        config=dataclasses.asdict(config),
        tensors=module_tensors(model),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={
            "dataset": data.name,
            "seed": options.seed,
            "epochs": options.epochs,
            "device": str(options.torch_device),
            "history": history.as_dict(),
        },
    )
