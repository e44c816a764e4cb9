"""Training a DBN: greedy layer-wise CD-k, then backpropagation fine-tuning of the autoencoder.

1. ``pretrain``: RBM 0 learns the images with CD-k (``ml.training.cd.train_bernoulli_rbm``, the
   shared trainer); RBM l then learns the hidden probabilities of RBM l-1 on the same images
   (Hinton, Osindero & Teh 2006). Each layer's per-epoch reconstruction error is kept.
2. ``finetune``: the stack is unrolled into an encoder-decoder and all weights are fine-tuned with
   Adam on the pixel-wise binary cross-entropy (Hinton & Salakhutdinov 2006 used conjugate
   gradients on the same loss).
Also here: ``train_rbm_images``, one Bernoulli RBM on images (model type ``rbm-images``), and
the two checkpoints with their held-out figures (``dbn_checkpoint``, ``rbm_images_checkpoint``)
that ``deeprec train dbn|rbm-images`` write. Every stage runs in the shared fit loop
(``ml.training.loop``) for a fixed number of epochs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ml.checkpoint import Checkpoint
from ml.data.digits import ImageDataset
from ml.models.dbn import DBN, DBNConfig
from ml.models.rbm import BernoulliRBM, BernoulliRBMConfig
from ml.training.base import TrainingOptions
from ml.training.cd import train_bernoulli_rbm
from ml.training.images import image_checkpoint
from ml.training.loop import BatchTrainer, fit

log = logging.getLogger(__name__)


@dataclass
class DBNHistory:
    """layers[l]: per-epoch metrics of RBM l; finetune: per-epoch autoencoder metrics."""

    layers: list[list[dict[str, float]]] = field(default_factory=list)
    finetune: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"layers": self.layers, "finetune": self.finetune}


def _seeded_options(options: TrainingOptions, offset: int) -> TrainingOptions:
    return dataclasses.replace(options, seed=options.seed + offset)


def pretrain(
    model: DBN,
    images: Tensor,
    options: TrainingOptions,
    validation: Tensor | None = None,
) -> list[list[dict[str, float]]]:
    """Greedy layer-wise CD-k; each RBM trains on the hidden probabilities of the one below."""
    device = options.torch_device
    config = model.config
    x = images.float().to(device)  # (N, layers[0])
    val = validation.float().to(device) if validation is not None else None
    histories = []
    for index, rbm in enumerate(model.stack):
        history = train_bernoulli_rbm(
            rbm,
            x,
            config.pretrain_epochs,
            _seeded_options(options, index),
            validation=val,
            name=f"dbn-layer{index}",
        )
        histories.append(history)
        if index == config.n_rbms - 1:
            model.top_visible_mean.copy_(x.mean(0))  # where generation's Gibbs chains start
        with torch.no_grad():
            x = rbm.hidden_probs(x)  # (N, layers[index + 1]) input of the next RBM
            val = rbm.hidden_probs(val) if val is not None else None
    model.unroll()
    return histories


class FinetuneTrainer(BatchTrainer):
    """Adam on the unrolled autoencoder's pixel-wise cross-entropy (the loop's step)."""

    def __init__(
        self, model: DBN, images: Tensor, options: TrainingOptions, validation: Tensor | None
    ) -> None:
        self.device = options.torch_device
        self.model = model.to(self.device)
        self.config = model.config
        self.x = images.float().to(self.device)
        self.validation = validation.float().to(self.device) if validation is not None else None
        params = [*model.encoder.parameters(), *model.decoder.parameters()]
        self.optimiser = torch.optim.Adam(params, lr=self.config.finetune_learning_rate)
        self.generator = torch.Generator().manual_seed(options.seed + 1000)
        self.epoch, self._total = 0, 0.0

    def batches(self) -> Iterator[Tensor]:
        self._total = 0.0
        order = torch.randperm(len(self.x), generator=self.generator).to(self.device)
        size = self.config.batch_size
        return (self.x[order[start : start + size]] for start in range(0, len(self.x), size))

    def step(self, batch: Tensor) -> dict[str, float]:
        loss = F.binary_cross_entropy_with_logits(self.model(batch), batch)  # batch: (B, P)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self._total += loss.item() * len(batch)
        return {}

    def end_epoch(self, metrics: dict[str, float]) -> None:
        self.epoch += 1
        metrics["epoch"] = float(self.epoch)
        metrics["bce"] = self._total / len(self.x)
        metrics["mse"] = reconstruction_mse(self.model, self.x)
        if self.validation is not None:
            metrics["val_mse"] = reconstruction_mse(self.model, self.validation)


def finetune(
    model: DBN,
    images: Tensor,
    options: TrainingOptions,
    validation: Tensor | None = None,
) -> list[dict[str, float]]:
    """Backpropagation through the unrolled autoencoder; per-epoch train (and validation) MSE."""
    trainer = FinetuneTrainer(model, images, options, validation)
    epochs = model.config.finetune_epochs
    return fit(trainer, options, epochs=epochs, name="dbn-finetune", postfix="mse").history.records


@torch.inference_mode()
def reconstruction_mse(model: DBN, images: Tensor) -> float:
    """Mean squared error per pixel of the autoencoder's reconstruction."""
    return float(((model.reconstruct(images) - images) ** 2).mean())


def train_dbn(
    images: np.ndarray,
    config: DBNConfig,
    options: TrainingOptions,
    validation: np.ndarray | None = None,
) -> tuple[DBN, DBNHistory]:
    """Pre-train greedily, then fine-tune; the model comes back in eval mode on the device."""
    if images.ndim != 2 or images.shape[1] != config.layers[0]:
        raise ValueError(f"expected images (N, {config.layers[0]}), got {images.shape}")
    if len(images) == 0:
        raise ValueError("no training images")
    device = options.torch_device
    init_gen = torch.Generator().manual_seed(options.seed)
    model = DBN(config, init_gen).to(device)
    x = torch.as_tensor(images, dtype=torch.float32)
    val = torch.as_tensor(validation, dtype=torch.float32) if validation is not None else None
    history = DBNHistory()
    history.layers = pretrain(model, x, options, val)
    if config.finetune_epochs > 0:
        history.finetune = finetune(model, x, options, val)
    return model.eval(), history


def train_rbm_images(
    images: np.ndarray,
    config: BernoulliRBMConfig,
    options: TrainingOptions,
    validation: np.ndarray | None = None,
) -> tuple[BernoulliRBM, list[dict[str, float]]]:
    """One Bernoulli RBM on images (N, P) in [0, 1] with the shared CD trainer."""
    if images.ndim != 2 or images.shape[1] != config.n_visible:
        raise ValueError(f"expected images (N, {config.n_visible}), got {images.shape}")
    rbm = BernoulliRBM(config, torch.Generator().manual_seed(options.seed))
    val = torch.as_tensor(validation, dtype=torch.float32) if validation is not None else None
    history = train_bernoulli_rbm(
        rbm,
        torch.as_tensor(images, dtype=torch.float32),
        None,
        options,
        validation=val,
        name="rbm-images",
    )
    return rbm.eval(), history


RBM_IMAGES_GIBBS_STEPS = 500  # Gibbs steps per sample the served rbm-images model takes


def dbn_checkpoint(data: ImageDataset, config: DBNConfig, options: TrainingOptions) -> Checkpoint:
    """Train a DBN on ``data``'s training images; held-out reconstruction in the metrics."""
    started = time.perf_counter()
    model, history = train_dbn(data.train_images, config, options, data.test_images)
    train_seconds = time.perf_counter() - started
    test = torch.as_tensor(data.test_images, device=options.torch_device)
    metrics = {
        "train_seconds": train_seconds,
        "test_reconstruction_mse": reconstruction_mse(model, test),
        "layer_recon_error": [layer[-1]["recon_error"] for layer in history.layers],
    }
    return image_checkpoint(
        "dbn",
        config,
        model,
        data,
        metrics,
        seed=options.seed,
        device=str(options.torch_device),
        history=history.as_dict(),
    )


def rbm_images_checkpoint(
    data: ImageDataset, config: BernoulliRBMConfig, options: TrainingOptions
) -> Checkpoint:
    """Train one Bernoulli RBM on ``data``'s training images; held-out figures in the metrics."""
    started = time.perf_counter()
    rbm, history = train_rbm_images(data.train_images, config, options, data.test_images)
    metrics = {
        "train_seconds": time.perf_counter() - started,
        "recon_error": history[-1]["recon_error"],
        "test_reconstruction_mse": history[-1]["val_recon_error"],
        "free_energy": history[-1]["free_energy"],
        "test_free_energy": history[-1]["val_free_energy"],
    }
    return image_checkpoint(
        "rbm-images",
        config,
        rbm,
        data,
        metrics,
        seed=options.seed,
        history=history,
        gibbs_steps=RBM_IMAGES_GIBBS_STEPS,
    )
