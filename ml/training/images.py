"""The checkpoint of a model trained on an image set (DBN, image RBM, GAN): one shape for all."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from ml.checkpoint import Checkpoint, module_tensors
from ml.data.digits import ImageDataset, images_sha256


def image_checkpoint(
    model_type: str,
    config: Any,
    model: nn.Module,
    data: ImageDataset,
    metrics: dict[str, Any],
    **extra: Any,
) -> Checkpoint:
    """``model``'s tensors and ``config`` (a dataclass), tied to ``data`` by its sha256; ``extra``
    (seed, device, history...) goes in the manifest beside the data set's name."""
    return Checkpoint(
        model_type=model_type,
        config=dataclasses.asdict(config),
        tensors=module_tensors(model),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={"dataset": data.name, **extra},
    )
