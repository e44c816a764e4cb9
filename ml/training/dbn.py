"""Training a DBN: greedy layer-wise CD-k, then backpropagation fine-tuning of the autoencoder.

1. ``pretrain``: RBM 0 learns the images with CD-k (``ml.training.cd.train_bernoulli_rbm``, the
   shared trainer); RBM l then learns the hidden probabilities of RBM l-1 on the same images
   (Hinton, Osindero & Teh 2006). Each layer's per-epoch reconstruction error is kept.
2. ``finetune``: the stack is unrolled into an encoder-decoder and all weights are fine-tuned with
   Adam on the pixel-wise binary cross-entropy (Hinton & Salakhutdinov 2006 used conjugate
   gradients on the same loss).
Also here: ``train_rbm_images``, one Bernoulli RBM on images (model type ``rbm-images``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ml.models.dbn import DBN, DBNConfig
from ml.models.rbm import BernoulliRBM, BernoulliRBMConfig
from ml.training.base import TrainingOptions, log_epoch
from ml.training.cd import train_bernoulli_rbm

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


def finetune(
    model: DBN,
    images: Tensor,
    options: TrainingOptions,
    validation: Tensor | None = None,
) -> list[dict[str, float]]:
    """Backpropagation through the unrolled autoencoder; per-epoch train (and validation) MSE."""
    config = model.config
    device = options.torch_device
    model.to(device)
    x = images.float().to(device)
    params = [*model.encoder.parameters(), *model.decoder.parameters()]
    optimiser = torch.optim.Adam(params, lr=config.finetune_learning_rate)
    gen = torch.Generator().manual_seed(options.seed + 1000)
    history: list[dict[str, float]] = []
    bar = tqdm(
        range(1, config.finetune_epochs + 1),
        desc="dbn-finetune",
        unit="epoch",
        disable=not options.progress,
    )
    for epoch in bar:
        order = torch.randperm(len(x), generator=gen).to(device)
        total = 0.0
        for start in range(0, len(x), config.batch_size):
            batch = x[order[start : start + config.batch_size]]  # (B, P)
            loss = F.binary_cross_entropy_with_logits(model(batch), batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        metrics = {
            "epoch": float(epoch),
            "bce": total / len(x),
            "mse": reconstruction_mse(model, x),
        }
        if validation is not None:
            metrics["val_mse"] = reconstruction_mse(model, validation.float().to(device))
        history.append(metrics)
        log_epoch("dbn-finetune", epoch, metrics, epochs=config.finetune_epochs, options=options)
        bar.set_postfix(mse=f"{metrics['mse']:.4f}")
    return history


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
