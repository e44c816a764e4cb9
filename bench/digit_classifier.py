"""The independent judge of generated digits: a small CNN trained on REAL training digits only.

It never sees a generated image during training and takes no part in GAN training. It gives
- ``predict_proba(images)`` -> (N, 10) class probabilities, for class coverage, top-class
  confidence and label agreement of generated samples;
- ``features(images)`` -> (N, F) activations of its last hidden layer, the feature space of the
  Fréchet distance (the FID recipe of Heusel et al., "GANs Trained by a Two Time-Scale Update Rule
  Converge to a Local Nash Equilibrium", NeurIPS 2017, with this classifier in place of Inception).
Training is deterministic: fixed seed, own torch.Generator, full-batch order from that generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.data.digits import ImageDataset


@dataclass(frozen=True)
class JudgeConfig:
    channels: int = 32
    features: int = 64
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    shift_augment: bool = True  # random one-pixel shifts, so the judge is not brittle
    seed: int = 1234


class _CNN(nn.Module):
    """conv-pool-conv-pool, then a hidden layer whose activations are the judge's features."""

    def __init__(self, side: int, config: JudgeConfig, n_classes: int = 10) -> None:
        super().__init__()
        c = config.channels
        self.side = side
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1),  # (B, c, s, s)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, c, s/2, s/2)
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2c, s/4, s/4)
            nn.Flatten(),
            nn.Linear(2 * c * (side // 4) ** 2, config.features),
            nn.ReLU(),
        )
        self.head = nn.Linear(config.features, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.view(len(x), 1, self.side, self.side))  # (B, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))  # (B, 10) logits


def _shift(x: torch.Tensor, side: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by -1, 0 or +1 pixels in each direction (zero fill)."""
    imgs = x.view(len(x), side, side)
    padded = F.pad(imgs, (1, 1, 1, 1))  # (B, side+2, side+2)
    dy, dx = torch.randint(0, 3, (2, len(x)), generator=gen)
    out = torch.empty_like(imgs)
    for oy in range(3):
        for ox in range(3):
            rows = (dy == oy) & (dx == ox)
            out[rows] = padded[rows, oy : oy + side, ox : ox + side]
    return out.reshape(len(x), side * side)


class DigitClassifier:
    """Trained judge; all inputs are (N, side*side) float arrays in [0, 1]."""

    def __init__(self, model: _CNN, side: int, test_accuracy: float) -> None:
        self.model = model.eval()
        self.side = side
        self.test_accuracy = test_accuracy

    @classmethod
    def train(cls, data: ImageDataset, config: JudgeConfig | None = None) -> DigitClassifier:
        config = config or JudgeConfig()
        gen = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = _CNN(data.side, config)
        x = torch.as_tensor(data.train_images)
        y = torch.as_tensor(data.train_labels)
        opt = torch.optim.Adam(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        model.train()
        for _ in range(config.epochs):
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), config.batch_size):
                idx = order[start : start + config.batch_size]
                batch = _shift(x[idx], data.side, gen) if config.shift_augment else x[idx]
                loss = F.cross_entropy(model(batch), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        judge = cls(model, data.side, 0.0)
        judge.test_accuracy = float((judge.predict(data.test_images) == data.test_labels).mean())
        return judge

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        return torch.softmax(self.model(x), dim=1).numpy()  # (N, 10)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(1)

    @torch.inference_mode()
    def features(self, images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        return self.model.embed(x).double().numpy()  # (N, F)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}) between two feature sets (N, F)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr (S_a S_b)^{1/2} = Tr (A S_b A)^{1/2} with A = S_a^{1/2}; both roots of symmetric PSD
    # matrices, taken by eigendecomposition (stable when dead ReLU units make S singular).
    root_a = _psd_sqrt(cov_a)
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def class_report(judge: DigitClassifier, images: np.ndarray) -> dict[str, object]:
    """Class shares and mean top-class confidence of the judge on ``images``."""
    proba = judge.predict_proba(images)
    predicted = proba.argmax(1)
    shares = np.bincount(predicted, minlength=10) / len(images)
    return {
        "class_shares": [round(float(s), 4) for s in shares],
        "min_class_share": float(shares.min()),
        "mean_top_confidence": float(proba.max(1).mean()),
    }
