"""What every trainer shares: frozen run options, a per-run generator, epoch logging.

Trainers follow one shape (after LensKit): ``trainer = XTrainer(config, options, data)``, then
``trainer.train_epoch()`` returns that epoch's metrics as a dict, and ``trainer.finalize()``
returns the trained model. ``ml.training.loop.fit`` drives every trainer: epochs, a progress
bar, validation, early stopping, the history; each epoch reaches ``log_epoch`` and so the
``on_epoch`` hook (a job's progress row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from ml.device import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch of one training stage (a run may have several: pretrain, finetune)."""

    stage: str
    epoch: int  # 1-based
    epochs: int | None  # the stage's planned epochs (early stopping may end it sooner)
    metrics: Mapping[str, float]


# Called after every epoch (the CLI's hook writes the job's progress row); must be quick.
EpochHook = Callable[[EpochReport], None]
_installed_hook: EpochHook | None = None


def install_epoch_hook(hook: EpochHook | None) -> None:
    """The hook every ``TrainingOptions`` made afterwards in this process gets by default
    (``deeprec train --job-id N`` installs one that records the job's progress)."""
    global _installed_hook
    _installed_hook = hook


def _default_hook() -> EpochHook | None:
    return _installed_hook


@dataclass(frozen=True)
class TrainingOptions:
    device: str = "auto"
    seed: int = 42
    epochs: int = 30
    progress: bool = True
    on_epoch: EpochHook | None = field(default_factory=_default_hook, compare=False, repr=False)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def generator(self, device: torch.device | None = None) -> torch.Generator:
        """A generator owned by this run (no global seeding), on the device it samples on."""
        gen = torch.Generator(device=device or self.torch_device)
        gen.manual_seed(self.seed)
        return gen


def log_epoch(
    model: str,
    epoch: int,
    metrics: dict[str, float],
    *,
    epochs: int | None = None,
    options: TrainingOptions | None = None,
) -> None:
    """Log an epoch's metrics as key/value; with ``options``, pass it to their ``on_epoch``."""
    pairs = " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )
    log.info("%s epoch=%d %s", model, epoch, pairs)
    if options is not None and options.on_epoch is not None:
        options.on_epoch(EpochReport(model, epoch, epochs, dict(metrics)))
