"""What every trainer shares: frozen run options, a per-run generator, epoch logging.

Trainers follow one shape (after LensKit): ``trainer = XTrainer(config, options)``, then
``trainer.train_epoch(...)`` returns that epoch's metrics as a dict, and ``trainer.finalize()``
returns the trained model. ``fit`` drives the loop with a progress bar and early stopping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ml.device import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOptions:
    device: str = "auto"
    seed: int = 42
    epochs: int = 30
    progress: bool = True

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def generator(self, device: torch.device | None = None) -> torch.Generator:
        """A generator owned by this run (no global seeding), on the device it samples on."""
        gen = torch.Generator(device=device or self.torch_device)
        gen.manual_seed(self.seed)
        return gen


def log_epoch(model: str, epoch: int, metrics: dict[str, float]) -> None:
    pairs = " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    log.info("%s epoch=%d %s", model, epoch, pairs)
