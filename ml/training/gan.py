"""Adversarial training of ``ml.models.gan.GAN``: discriminator and generator updated in turn.

Per step (Goodfellow et al. 2014, with the usual fixes):
- discriminator: binary cross-entropy on real images (target ``label_smoothing``, one-sided label
  smoothing of Salimans et al., "Improved Techniques for Training GANs", 2016) and on generated
  images (target 0);
- generator: the non-saturating loss ``-log D(G(z))`` (Goodfellow et al. 2014, section 3), which
  keeps gradients alive while D still wins easily.
Conditional runs give the generated images the labels of the real batch, so the fake labels follow
the data's class frequencies. Both networks use Adam (DCGAN's lr 2e-4, beta1 0.5). The generator
that is kept for sampling is an exponential moving average of the trained generator's weights
(Yazici et al. 2019), which removes most of the step-to-step jitter of adversarial training.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ml.checkpoint import Checkpoint
from ml.data.digits import ImageDataset
from ml.inference.gan import GANSampler
from ml.models.gan import GAN, GANConfig, kmeans
from ml.training.base import TrainingOptions
from ml.training.images import image_checkpoint
from ml.training.loop import fit

log = logging.getLogger(__name__)


@dataclass
class GANHistory:
    """Per-epoch means of the losses and of D's outputs, for loss curves and the manifest."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)
    d_fake: list[float] = field(default_factory=list)

    def append(self, metrics: dict[str, float]) -> None:
        for name in ("d_loss", "g_loss", "d_real", "d_fake"):
            getattr(self, name).append(float(metrics[name]))

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "d_loss": self.d_loss,
            "g_loss": self.g_loss,
            "d_real": self.d_real,
            "d_fake": self.d_fake,
        }


class GANTrainer:
    """``train_epoch()`` runs one pass over the images; ``finalize()`` returns the GAN. A
    ``Trainer`` of the shared fit loop (``ml.training.loop``)."""

    def __init__(
        self,
        config: GANConfig,
        options: TrainingOptions,
        images: np.ndarray,
        labels: np.ndarray | None = None,
    ) -> None:
        if images.ndim != 2 or images.shape[1] != config.n_pixels:
            raise ValueError(f"expected images (N, {config.n_pixels}), got {images.shape}")
        if len(images) < config.batch_size:
            raise ValueError(f"need at least batch_size={config.batch_size} images")
        if config.conditional:
            if labels is None or len(labels) != len(images):
                raise ValueError("a conditional GAN needs one label per image")
            if labels.min() < 0 or labels.max() >= config.n_classes:
                raise ValueError(f"labels must lie in [0, {config.n_classes})")
        self.config = config
        self.options = options
        self.device = options.torch_device
        self.images = torch.as_tensor(images, dtype=torch.float32, device=self.device)  # (N, P)
        self.labels = (  # (N,) only a conditional GAN sees the labels
            torch.as_tensor(labels, dtype=torch.long, device=self.device)
            if config.conditional and labels is not None
            else None
        )
        # Parameters are initialised from the run's seed on the CPU, then moved.
        cpu_gen = torch.Generator().manual_seed(options.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=cpu_gen)))
            self.model = GAN(config)
        if config.self_conditioned:  # the clusters stand in for the labels it never sees
            clusters = kmeans(
                torch.as_tensor(images, dtype=torch.float32), config.n_clusters, cpu_gen
            )
            shares = torch.bincount(clusters, minlength=config.n_clusters) / len(clusters)
            self.model.cluster_shares.copy_(shares)
            self.labels = clusters.to(self.device)
        self.model.to(self.device)
        self.shuffle_gen = cpu_gen
        self.noise_gen = options.generator(self.device)
        betas = (config.beta1, config.beta2)
        self.opt_d = torch.optim.Adam(
            self.model.discriminator.parameters(), lr=config.learning_rate, betas=betas
        )
        self.opt_g = torch.optim.Adam(
            self.model.generator.parameters(), lr=config.learning_rate, betas=betas
        )
        self.ema = copy.deepcopy(self.model.generator).eval().requires_grad_(False)
        self._ema_params: list[Tensor] = list(self.ema.parameters())
        self._live_params: list[Tensor] = list(self.model.generator.parameters())
        self.history = GANHistory()
        self.epoch = 0

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.ema_decay
        # One fused call over every parameter (per-tensor Python loops cost more than the maths
        # on 8x8 images).
        torch._foreach_lerp_(self._ema_params, self._live_params, 1.0 - decay)
        for avg_buf, cur_buf in zip(
            self.ema.buffers(), self.model.generator.buffers(), strict=True
        ):
            avg_buf.copy_(cur_buf)  # batch-norm statistics: the latest

    def _noise(self, n: int) -> Tensor:
        return torch.randn(
            n, self.config.latent_dim, generator=self.noise_gen, device=self.device
        )  # (n, Z)

    def _d_logits(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        """D's logits for a real and a generated batch: one pass over both when D has no batch
        norm (the MLP), so each step pays for one forward instead of two."""
        model = self.model
        if self.config.resolved_architecture != "mlp":
            return model.discriminator_logits(real, labels), model.discriminator_logits(
                fake, labels
            )
        both_labels = None if labels is None else torch.cat([labels, labels])
        logits = model.discriminator_logits(torch.cat([real, fake]), both_labels)  # (2n,)
        return logits[: len(real)], logits[len(real) :]

    def _step(self, real: Tensor, labels: Tensor | None) -> Tensor:
        """One discriminator and one generator update; returns the step's
        (d_loss, g_loss, d_real, d_fake) as one tensor (no per-step sync with Python)."""
        model, n = self.model, len(real)
        fake = model.generate(self._noise(n), labels)  # (n, P), kept for G's update
        # Discriminator: real -> smoothed 1, fake -> 0.
        for step in range(self.config.d_steps):
            if step > 0:  # extra D steps see new fakes
                with torch.no_grad():
                    fake = model.generate(self._noise(n), labels)
            logit_real, logit_fake = self._d_logits(real, fake.detach(), labels)  # (n,), (n,)
            d_loss = F.binary_cross_entropy_with_logits(
                logit_real, torch.full_like(logit_real, self.config.label_smoothing)
            ) + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        if self.config.d_steps > 1:
            fake = model.generate(self._noise(n), labels)
        # Generator: non-saturating loss -log D(G(z)), through the updated D (the DCGAN recipe:
        # the same fakes D just saw, so G's forward pass is not paid twice).
        logit_gen = model.discriminator_logits(fake, labels)  # (n,)
        g_loss = F.binary_cross_entropy_with_logits(logit_gen, torch.ones_like(logit_gen))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self._update_ema()
        with torch.no_grad():
            return torch.stack(
                [
                    d_loss.detach(),
                    g_loss.detach(),
                    torch.sigmoid(logit_real.detach()).mean(),
                    torch.sigmoid(logit_fake.detach()).mean(),
                ]
            )

    def train_epoch(self) -> dict[str, float]:
        self.model.train()
        bs = self.config.batch_size
        order = torch.randperm(len(self.images), generator=self.shuffle_gen).to(self.device)
        n_batches = len(order) // bs  # drop the last partial batch (batch norm likes full ones)
        sums = torch.zeros(4, device=self.device)
        # Dropout draws from torch's global generator: seed it from this run's generator inside
        # a forked RNG state, so the run is reproducible and the caller's state is untouched.
        dropout_seed = int(torch.randint(0, 2**62, (1,), generator=self.shuffle_gen))
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(dropout_seed)
            for b in range(n_batches):
                idx = order[b * bs : (b + 1) * bs]
                labels = self.labels[idx] if self.labels is not None else None
                sums += self._step(self.images[idx], labels)
        self.epoch += 1
        means = (sums / n_batches).tolist()
        metrics = dict(zip(("d_loss", "g_loss", "d_real", "d_fake"), means, strict=True))
        self.history.append(metrics)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """Both networks and the averaged generator (what the fit loop snapshots)."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])

    def finalize(self) -> GAN:
        """The GAN with the averaged generator in place (when averaging is on), in eval mode."""
        if self.config.ema_decay > 0:
            self.model.generator.load_state_dict(self.ema.state_dict())
        self.model.eval()
        return self.model


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` for the block, then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_gan(
    images: np.ndarray,
    labels: np.ndarray | None,
    config: GANConfig,
    options: TrainingOptions,
) -> tuple[GAN, GANHistory]:
    """Train for ``options.epochs`` epochs with a progress bar; return the GAN and its history.

    The MLP's matrices (a batch of 64 by a few hundred units) are too small for torch's
    intra-op threads to pay, and on a busy machine the threads wait for each other: on the CPU
    it trains on one thread (two were 25x slower per epoch on the loaded 2-core machine,
    bench/results/gan.md).
    """
    single = config.resolved_architecture == "mlp" and options.torch_device.type == "cpu"
    with intra_op_threads(1) if single else nullcontext():
        trainer = GANTrainer(config, options, images, labels)
        # The shared loop: progress bar, per-epoch log and the job's progress hook. No
        # validation figure: adversarial losses say little about sample quality, and the EMA
        # generator of the last epoch is what the benchmark's validation runs chose
        # (bench/tune_gan.py).
        fit(trainer, options, name="gan", postfix="g_loss")
        return trainer.finalize(), trainer.history


def evaluate_gan(model: GAN, data: ImageDataset, device: torch.device) -> dict[str, float]:
    """D's mean probability "real" on the held-out images and on as many generated ones (seed 0;
    a conditional GAN's fakes carry labels 0..9 in turn, its real images their own labels)."""
    sampler = GANSampler(model, device)
    conditional = model.config.conditional
    fake = sampler.sample(len(data.test_images), seed=0)
    fake_labels = np.arange(len(fake)) % model.config.n_classes if conditional else None
    test_labels = data.test_labels if conditional else None
    return {
        "d_prob_test_real": float(sampler.discriminate(data.test_images, test_labels).mean()),
        "d_prob_generated": float(sampler.discriminate(fake, fake_labels).mean()),
    }


def train_gan_checkpoint(
    data: ImageDataset, config: GANConfig, options: TrainingOptions
) -> Checkpoint:
    """Train a GAN on ``data``'s training images, evaluate it, and return its checkpoint."""
    started = time.perf_counter()
    model, history = train_gan(data.train_images, data.train_labels, config, options)
    metrics = {
        "train_seconds": time.perf_counter() - started,
        "final_d_loss": history.d_loss[-1],
        "final_g_loss": history.g_loss[-1],
        **evaluate_gan(model, data, options.torch_device),
    }
    return image_checkpoint(
        "gan",
        config,
        model,
        data,
        metrics,
        seed=options.seed,
        epochs=options.epochs,
        device=str(options.torch_device),
        history=history.as_dict(),
    )
