"""Serving DBN and image-RBM checkpoints as image models (reconstruct, sample, encode).

``load`` (model type ``dbn``) returns a ``DBNImageModel``: reconstruction up the fine-tuned
encoder and down the decoder, codes, and samples by Gibbs sampling in the top RBM then a
down-pass. ``load_rbm_images`` (model type ``rbm-images``) returns an ``RBMImageModel``: one
mean-field up/down pass, and samples by Gibbs sampling. Both follow the image-model protocol of
``ml.inference.images``; everything returned is plain numpy on the CPU.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from ml.checkpoint import Checkpoint, CheckpointError, module_tensors, rebuild_module
from ml.inference.images import check_images
from ml.models.dbn import DBN, DBNConfig
from ml.models.rbm import BernoulliRBM, BernoulliRBMConfig

MAX_SAMPLES = 1024


def _side(n_pixels: int, checkpoint: Checkpoint) -> int:
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise CheckpointError(f"{checkpoint.path}: {n_pixels} visible units are not a square image")
    return side


def _sample_generator(seed: int) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return gen


def _check_n(n: int) -> None:
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must lie in [1, {MAX_SAMPLES}], got {n}")


@dataclass
class DBNImageModel:
    model: DBN
    device: torch.device
    side: int
    checkpoint: Checkpoint | None = None
    model_type: str = "dbn"

    def __post_init__(self) -> None:
        # Sampling runs on the CPU with a CPU generator so a seed means the same images anywhere;
        # reconstruction and codes run on the chosen device.
        self.model = self.model.to(self.device).eval()

    def _batch(self, images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(check_images(images, self.side), device=self.device)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """Up the fine-tuned encoder, down the decoder: (N, side*side) in [0, 1]."""
        return self.model.reconstruct(self._batch(images)).float().cpu().numpy()

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Fine-tuned codes (N, code width)."""
        with torch.inference_mode():
            return self.model.codes(self._batch(images)).float().cpu().numpy()

    def up_pass(self, images: np.ndarray) -> np.ndarray:
        """Greedy (pre-trained) codes (N, code width) in [0, 1]."""
        return self.model.up_pass(self._batch(images)).float().cpu().numpy()

    def sample(self, n: int, seed: int, steps: int | None = None) -> np.ndarray:
        """n generated images (n, side*side); the same (n, seed) gives the same images."""
        _check_n(n)
        cpu_model = self.model if self.device.type == "cpu" else _cpu_copy(self.model)
        return cpu_model.generate(n, _sample_generator(seed), steps).float().numpy()


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def _cpu_copy(model: ModuleT) -> ModuleT:
    return copy.deepcopy(model).cpu().eval()


@dataclass
class RBMImageModel:
    rbm: BernoulliRBM
    device: torch.device
    side: int
    checkpoint: Checkpoint | None = None
    gibbs_steps: int = 500
    model_type: str = "rbm-images"

    def __post_init__(self) -> None:
        self.rbm = self.rbm.to(self.device).eval()

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """One mean-field up-pass and down-pass: (N, side*side) in [0, 1]."""
        batch = torch.as_tensor(check_images(images, self.side), device=self.device)
        return self.rbm.reconstruct(batch).float().cpu().numpy()

    @torch.inference_mode()
    def sample(self, n: int, seed: int, steps: int | None = None) -> np.ndarray:
        """n images by block Gibbs sampling from Bernoulli(sigmoid(visible bias)) starts."""
        _check_n(n)
        gen = _sample_generator(seed)
        rbm = self.rbm if self.device.type == "cpu" else _cpu_copy(self.rbm)
        start = torch.sigmoid(rbm.visible_bias).expand(n, -1)  # (n, V)
        v = torch.bernoulli(start, generator=gen)
        v_probs = v
        for _ in range(steps or self.gibbs_steps):
            _, h = rbm.sample_hidden(v, gen)  # (n, H)
            v_probs, v = rbm.sample_visible(h, gen)  # (n, V)
        return v_probs.float().numpy()


def rebuild_dbn(checkpoint: Checkpoint) -> DBN:
    return rebuild_module(checkpoint, DBNConfig, DBN, "DBN")  # old manifests: ``finetune_lr``


def rebuild_rbm(checkpoint: Checkpoint) -> BernoulliRBM:
    return rebuild_module(checkpoint, BernoulliRBMConfig, BernoulliRBM, "RBM")


model_tensors = module_tensors  # the tensors a DBN or RBM checkpoint stores


def load(checkpoint: Checkpoint, device: torch.device) -> DBNImageModel:
    """The LOADERS entry for model type ``dbn``."""
    model = rebuild_dbn(checkpoint)
    return DBNImageModel(model, device, _side(model.config.layers[0], checkpoint), checkpoint)


def load_rbm_images(checkpoint: Checkpoint, device: torch.device) -> RBMImageModel:
    """The LOADERS entry for model type ``rbm-images``."""
    rbm = rebuild_rbm(checkpoint)
    steps = int(checkpoint.extra.get("gibbs_steps", 500))
    return RBMImageModel(rbm, device, _side(rbm.config.n_visible, checkpoint), checkpoint, steps)
