"""Serving a GAN checkpoint: seeded samples, discrimination, latent interpolation.

``load(checkpoint, device)`` rebuilds the GAN and returns a ``GANSampler``. Everything it returns
is plain numpy on the CPU; the networks run on the device given to ``load``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ml.checkpoint import Checkpoint, module_tensors, rebuild_module
from ml.models.gan import GAN, GANConfig, latent_codes, slerp

MAX_SAMPLES = 1024


gan_tensors = module_tensors  # the checkpoint tensors of a GAN: generator.*, discriminator.*


def rebuild(checkpoint: Checkpoint) -> GAN:
    """The GAN of a checkpoint on the CPU, in eval mode; refuses mismatched tensors."""
    return rebuild_module(checkpoint, GANConfig, GAN, "GAN")


@dataclass
class GANSampler:
    """A trained GAN behind plain-numpy calls (the ``gan`` serving contract)."""

    model: GAN
    device: torch.device
    checkpoint: Checkpoint | None = None
    model_type: str = "gan"

    def __post_init__(self) -> None:
        self.model = self.model.to(self.device).eval()

    @property
    def config(self) -> GANConfig:
        return self.model.config

    @property
    def side(self) -> int:
        return self.config.side

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def _labels(self, n: int, label: int | None, seed: int = 0) -> torch.Tensor | None:
        if not self.conditional:
            if label is not None:
                raise ValueError("this GAN is unconditional: it takes no label")
            if self.config.self_conditioned:  # its own clusters, drawn for the seed
                return self.model.draw_clusters(n, seed).to(self.device)
            return None
        n_classes = self.config.n_classes
        if label is None:
            return torch.arange(n, device=self.device) % n_classes  # 0, 1, ..., 9, 0, ...
        if not 0 <= int(label) < n_classes:
            raise ValueError(f"label must lie in [0, {n_classes}), got {label}")
        return torch.full((n,), int(label), dtype=torch.long, device=self.device)

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
        images = self.model.sample(z.to(self.device), labels)  # (n, P)
        return images.float().cpu().numpy()

    def sample(self, n: int, seed: int, label: int | None = None) -> np.ndarray:
        """n images (n, side*side) in [0, 1]; the same (n, seed, label) gives the same images.

        A conditional GAN draws every image with ``label``, or labels 0, 1, ..., 9, 0, ... in
        turn when no label is given.
        """
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n must lie in [1, {MAX_SAMPLES}], got {n}")
        z = latent_codes(n, self.config.latent_dim, seed)  # (n, Z)
        return self._generate(z, self._labels(n, label, seed))

    def interpolate(
        self, seed_a: int, seed_b: int, steps: int = 10, label: int | None = None
    ) -> np.ndarray:
        """``steps`` images (steps, side*side) along the spherical path between two seeds' codes."""
        if not 2 <= steps <= MAX_SAMPLES:
            raise ValueError(f"steps must lie in [2, {MAX_SAMPLES}], got {steps}")
        z_a = latent_codes(1, self.config.latent_dim, seed_a)[0]
        z_b = latent_codes(1, self.config.latent_dim, seed_b)[0]
        if self.config.self_conditioned:  # the whole path stays in seed_a's cluster
            labels = self._labels(1, None, seed_a).expand(steps)  # type: ignore[union-attr]
        else:
            labels = self._labels(steps, 0 if label is None and self.conditional else label)
        return self._generate(slerp(z_a, z_b, steps), labels)

    def discriminate(self, images: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """D's probability (n,) in [0, 1] that each image (n, side*side) in [0, 1] is real.

        A conditional discriminator judges each image together with a label; without labels it
        returns, for each image, the highest probability over all labels (a self-conditioned
        GAN's: over its clusters; it ignores labels).
        """
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.config.n_pixels or len(x) == 0:
            raise ValueError(f"expected images (n, {self.config.n_pixels}), got {x.shape}")
        if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
            raise ValueError("pixel values must be finite and lie in [0, 1]")
        batch = torch.as_tensor(x, device=self.device)
        if not self.config.n_conditions:
            return self.model.probability_real(batch).cpu().numpy().astype(np.float64)
        if labels is not None and self.conditional:
            y = np.asarray(labels).reshape(-1)
            if len(y) != len(x) or y.min() < 0 or y.max() >= self.config.n_classes:
                raise ValueError(f"need one label in [0, {self.config.n_classes}) per image")
            y_t = torch.as_tensor(y, dtype=torch.long, device=self.device)
            return self.model.probability_real(batch, y_t).cpu().numpy().astype(np.float64)
        per_label = [
            self.model.probability_real(
                batch, torch.full((len(x),), c, dtype=torch.long, device=self.device)
            )
            for c in range(self.config.n_conditions)
        ]
        return torch.stack(per_label, 1).amax(1).cpu().numpy().astype(np.float64)


def load(checkpoint: Checkpoint, device: torch.device) -> GANSampler:
    """The LOADERS entry for model type ``gan``."""
    return GANSampler(rebuild(checkpoint), device, checkpoint)


def grid_png(
    images: np.ndarray, side: int, *, columns: int | None = None, scale: int = 4, pad: int = 1
) -> bytes:
    """Images (n, side*side) in [0, 1] as one greyscale PNG grid, each pixel ``scale`` px wide."""
    import io

    from PIL import Image  # pillow only where pictures are drawn

    x = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0).reshape(-1, side, side)
    n = len(x)
    cols = max(1, min(columns or int(np.ceil(np.sqrt(n))), n))
    rows = -(-n // cols)
    cell = side + pad
    grid = np.full((rows * cell + pad, cols * cell + pad), 0.5, dtype=np.float32)
    for index, image in enumerate(x):
        r, c = divmod(index, cols)
        grid[pad + r * cell : pad + r * cell + side, pad + c * cell : pad + c * cell + side] = image
    picture = Image.fromarray((grid * 255.0 + 0.5).astype(np.uint8))
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.Resampling.NEAREST
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
