"""Generative adversarial network for digit images, optionally conditioned on the digit label.

A generator G maps latent noise z ~ N(0, I) (and, when conditional, a label y) to an image; a
discriminator D returns the probability that an image is real (1) rather than generated (0)
(Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014). Both are trained in turn by
backpropagation; the losses live in ``ml.training.gan``.

Architectures follow current practice:
- ``mlp`` (8x8 digits): fully connected G and D with LeakyReLU, G ending in a sigmoid so pixels
  lie in [0, 1].
- ``dcgan`` (28x28 MNIST): transposed-convolution G with batch norm and strided-convolution D
  with LeakyReLU (Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
  Convolutional GANs", ICLR 2016).
The conditional variant feeds a one-hot label to G (Mirza & Osindero, "Conditional GANs", 2014)
and uses a projection discriminator, ``logit = psi(phi(x)) + <embed(y), phi(x)>`` (Miyato &
Koyama, "cGANs with Projection Discriminator", ICLR 2018).

Sampling is reproducible: the latent codes for a seed are drawn on the CPU from a generator owned
by the call, so the same seed gives the same images on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ARCHITECTURES = ("mlp", "dcgan")


@dataclass(frozen=True)
class GANConfig:
    """Shape and learning settings of a GAN.

    side: images are side x side (8 for the digits, 28 for MNIST).
    latent_dim: size of the noise vector z.
    n_hidden: width of the MLP layers (mlp) or base channel count (dcgan).
    n_classes: number of labels the conditional variant knows.
    conditional: condition G and D on the label.
    architecture: "mlp" or "dcgan"; "auto" picks mlp for side <= 16, else dcgan.
    learning_rate, beta1, beta2: Adam for both networks (DCGAN's betas 0.5, 0.999; a learning
        rate of 1e-3 rather than DCGAN's 2e-4: with n_hidden=256 and ema_decay=0.99 the
        conditional GAN meets the judge's targets on the 8x8 digits in 60 epochs instead of 400
        at n_hidden=512, about a tenth of the compute; so does the unconditional one in 50 with
        ``n_clusters=20``).
    batch_size: real images per step.
    label_smoothing: D's target for real images (one-sided smoothing, Salimans et al. 2016).
    d_steps: discriminator updates per generator update.
    ema_decay: the sampling generator is an exponential moving average of the trained one's
        weights (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR
        2019); 0 turns averaging off.
    dropout: dropout in the MLP discriminator.
    n_clusters: self-conditioning of an unconditional GAN (Liu et al., "Diverse Image Generation
        via Self-Conditioned GANs", CVPR 2020): the training images are clustered by k-means
        (no labels), G and D are conditioned on the cluster as a conditional GAN is on the label,
        and sampling draws each image's cluster from the clusters' shares of the training
        images. 0 turns it off (the default, so older checkpoints keep their meaning); a
        conditional GAN ignores it. 20 clusters, chosen on validation digits, bring the
        unconditional GAN to the judge's targets in 50 epochs (bench/results/gan.md).
    """

    LEGACY_KEYS: ClassVar[dict[str, str]] = {"hidden": "n_hidden"}

    side: int = 8
    latent_dim: int = 32
    n_hidden: int = 256
    n_classes: int = 10
    conditional: bool = False
    architecture: str = "auto"
    learning_rate: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64
    label_smoothing: float = 0.9
    d_steps: int = 1
    ema_decay: float = 0.99
    dropout: float = 0.2
    n_clusters: int = 0

    def __post_init__(self) -> None:
        if self.side < 2 or self.latent_dim < 1 or self.n_hidden < 1 or self.n_classes < 1:
            raise ValueError("side >= 2, latent_dim, n_hidden and n_classes must be positive")
        if self.architecture not in (*ARCHITECTURES, "auto"):
            raise ValueError(f"architecture must be one of {ARCHITECTURES} or auto")
        if self.resolved_architecture == "dcgan" and self.side % 4:
            raise ValueError(f"dcgan needs a side divisible by 4, got {self.side}")
        if not 0.5 < self.label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in (0.5, 1], got {self.label_smoothing}")
        if self.learning_rate <= 0 or self.batch_size < 1 or self.d_steps < 1:
            raise ValueError("need learning_rate > 0, batch_size >= 1, d_steps >= 1")
        if not all(0 <= x < 1 for x in (self.dropout, self.beta1, self.beta2, self.ema_decay)):
            raise ValueError("dropout, beta1, beta2 and ema_decay must be in [0, 1)")
        if self.n_clusters < 0:
            raise ValueError(f"n_clusters must be >= 0, got {self.n_clusters}")

    @property
    def resolved_architecture(self) -> str:
        if self.architecture != "auto":
            return self.architecture
        return "mlp" if self.side <= 16 else "dcgan"

    @property
    def n_pixels(self) -> int:
        return self.side * self.side

    @property
    def self_conditioned(self) -> bool:
        return not self.conditional and self.n_clusters > 0

    @property
    def n_conditions(self) -> int:
        """How many values G and D are conditioned on: labels, clusters, or none (0)."""
        if self.conditional:
            return self.n_classes
        return self.n_clusters


class MLPGenerator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        extra = config.n_conditions
        h = config.n_hidden
        self.net = nn.Sequential(
            nn.Linear(config.latent_dim + extra, h),
            nn.LeakyReLU(0.2),
            nn.Linear(h, h),
            nn.LeakyReLU(0.2),
            nn.Linear(h, config.n_pixels),
        )

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.net(z))  # (B, P)


class DCGANGenerator(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        extra = config.n_conditions
        c, q = config.n_hidden, config.side // 4
        self.start = (2 * c, q, q)
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim + extra, 2 * c * q * q),
            nn.BatchNorm1d(2 * c * q * q),
            nn.ReLU(),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),  # (B, c, 2q, 2q)
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # (B, 1, 4q, 4q)
        )

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(len(z), *self.start)  # (B, 2c, q, q)
        return torch.sigmoid(self.net(x)).flatten(1)  # (B, P)


class MLPFeatures(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        h = config.n_hidden
        self.net = nn.Sequential(
            nn.Linear(config.n_pixels, h),
            nn.LeakyReLU(0.2),
            nn.Dropout(config.dropout),
            nn.Linear(h, h),
            nn.LeakyReLU(0.2),
            nn.Dropout(config.dropout),
        )
        self.width = h

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, h)


class ConvFeatures(nn.Module):
    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        c, q, side = config.n_hidden, config.side // 4, config.side
        self.side = side
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1),  # (B, c, 2q, 2q)
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),  # (B, 2c, q, q)
            nn.BatchNorm2d(2 * c),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.width = 2 * c * q * q

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.view(len(x), 1, self.side, self.side))  # (B, 2c*q*q)


class Discriminator(nn.Module):
    """Features phi(x), then a logit psi(phi) (+ <embed(y), phi> when conditional)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.features = (
            MLPFeatures(config) if config.resolved_architecture == "mlp" else ConvFeatures(config)
        )
        self.head = nn.Linear(self.features.width, 1)
        self.embed = (
            nn.Embedding(config.n_conditions, self.features.width) if config.n_conditions else None
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Logits (B,) that x is real; sigmoid of them is the probability."""
        phi = self.features(x)  # (B, F)
        logit = self.head(phi).squeeze(-1)  # (B,)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs the labels")
            logit = logit + (self.embed(labels) * phi).sum(-1)  # projection term, (B,)
        return logit


class GAN(nn.Module):
    """Generator and discriminator of one GAN, with reproducible sampling helpers."""

    cluster_shares: Tensor  # (n_clusters,), a buffer of self-conditioned GANs only

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = (
            MLPGenerator(config)
            if config.resolved_architecture == "mlp"
            else DCGANGenerator(config)
        )
        self.discriminator = Discriminator(config)
        if config.self_conditioned:
            # Each cluster's share of the training images: sampling draws clusters from it.
            self.register_buffer("cluster_shares", torch.full((config.n_clusters,), 1.0))

    def draw_clusters(self, n: int, seed: int) -> Tensor:
        """n cluster ids (n,) drawn from the training shares for ``seed``, on the CPU."""
        gen = torch.Generator(device="cpu").manual_seed(seed)
        shares = self.cluster_shares.detach().cpu().float()  # (K,)
        return torch.multinomial(shares, n, replacement=True, generator=gen)

    def _generator_input(self, z: Tensor, labels: Tensor | None) -> Tensor:
        n_conditions = self.config.n_conditions
        if not n_conditions:
            return z
        if labels is None:
            raise ValueError("a conditional generator needs the labels (or clusters)")
        return torch.cat([z, F.one_hot(labels, n_conditions).to(z.dtype)], dim=1)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images (B, P) in [0, 1] from latent codes z (B, latent_dim)."""
        return self.generator(self._generator_input(z, labels))

    def discriminator_logits(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.discriminator(x, labels)  # (B,)

    @torch.inference_mode()
    def probability_real(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D(x): the probability (B,) in [0, 1] that each image is real."""
        return torch.sigmoid(self.discriminator(x, labels))

    @torch.inference_mode()
    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generate(z, labels)


def kmeans(images: Tensor, k: int, generator: torch.Generator, iterations: int = 25) -> Tensor:
    """Cluster ids (N,) of images (N, P) by k-means (k-means++ seeding, Lloyd iterations)."""
    n = len(images)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= {n} clusters, got {k}")
    first = int(torch.randint(0, n, (1,), generator=generator))
    centres = images[first : first + 1]  # (1, P)
    for _ in range(1, k):  # k-means++: next centre with probability ~ squared distance
        nearest = torch.cdist(images, centres).amin(1).square()  # (N,)
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        centres = torch.cat([centres, images[pick]])
    assign = torch.cdist(images, centres).argmin(1)  # (N,)
    for _ in range(iterations):
        sums = torch.zeros_like(centres).index_add_(0, assign, images)  # (k, P)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1).to(images.dtype)  # (k, 1)
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)  # empty: keep
        updated = torch.cdist(images, centres).argmin(1)
        if torch.equal(updated, assign):
            break
        assign = updated
    return assign


def latent_codes(n: int, latent_dim: int, seed: int) -> Tensor:
    """n codes (n, latent_dim) ~ N(0, I) for ``seed``, drawn on the CPU (same on every device)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return torch.randn(n, latent_dim, generator=gen)


def slerp(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """Spherical interpolation from a (D,) to b (D,) in ``steps`` points, shape (steps, D).

    Follows White, "Sampling Generative Networks" (2016): for Gaussian latents the path along the
    great circle keeps the codes' norms typical, unlike a straight line through the origin.
    """
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype).unsqueeze(1)  # (S, 1)
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega) < 1e-4 or math.isclose(float(omega), math.pi, abs_tol=1e-4):
        return (1 - t) * a + t * b  # (S, D) nearly (anti)parallel: straight line
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b  # (S, D)
