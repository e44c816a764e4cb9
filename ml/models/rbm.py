"""Restricted Boltzmann machines: a Bernoulli-Bernoulli RBM (images, DBN layers).

Bernoulli RBM (Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", UTML TR
2010-003; Hinton, Osindero & Teh 2006 for stacking): binary visible v (V,), binary hidden h (H,),
energy ``E(v, h) = -v W h - b_v v - b_h h``, so ``p(h_j = 1 | v) = sigma(v W + b_h)`` and
``p(v_i = 1 | h) = sigma(h W^T + b_v)``, and free energy
``F(v) = -b_v v - sum_j softplus(v W + b_h)_j``.

The model holds parameters and the pure conditionals only; contrastive divergence lives in
``ml.training.cd`` so trainers (and the DBN) share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class BernoulliRBMConfig:
    """Binary visible and hidden units; the learning settings are CD's (see ``ml.training.cd``).

    learning_rate: step on the mean CD gradient of a mini-batch.
    momentum: weight of the previous update (velocity) in the next one.
    weight_decay: L2 penalty on the weights (not the biases).
    cd_k: Gibbs steps of the negative phase.
    persistent: keep the negative chains between updates (PCD, Tieleman 2008).
    batch_size: examples per CD update.
    """

    n_visible: int
    n_hidden: int
    learning_rate: float = 0.05
    momentum: float = 0.5
    weight_decay: float = 1e-4
    cd_k: int = 1
    persistent: bool = False
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.n_visible <= 0 or self.n_hidden <= 0:
            raise ValueError("n_visible and n_hidden must be positive")
        if self.cd_k < 1:
            raise ValueError(f"cd_k must be >= 1, got {self.cd_k}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.learning_rate <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("need learning_rate > 0, 0 <= momentum < 1, weight_decay >= 0")


class BernoulliRBM(nn.Module):
    """Binary-binary RBM: weight (V, H), visible_bias (V,), hidden_bias (H,)."""

    def __init__(
        self, config: BernoulliRBMConfig, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.config = config
        v, h = config.n_visible, config.n_hidden
        # Small random weights, N(0, 0.01^2) as in Hinton's guide; zero biases (the trainer may
        # set visible biases to log(p / (1 - p)) of the data, see ``init_visible_bias``).
        w = torch.randn(v, h, generator=generator) * 0.01
        self.weight = nn.Parameter(w, requires_grad=False)  # (V, H)
        self.visible_bias = nn.Parameter(torch.zeros(v), requires_grad=False)  # (V,)
        self.hidden_bias = nn.Parameter(torch.zeros(h), requires_grad=False)  # (H,)

    def hidden_probs(self, v: Tensor) -> Tensor:
        return torch.sigmoid(v @ self.weight + self.hidden_bias)  # (B, H)

    def visible_probs(self, h: Tensor) -> Tensor:
        return torch.sigmoid(h @ self.weight.T + self.visible_bias)  # (B, V)

    def sample_hidden(
        self, v: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        probs = self.hidden_probs(v)  # (B, H)
        return probs, torch.bernoulli(probs, generator=generator)

    def sample_visible(
        self, h: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        probs = self.visible_probs(h)  # (B, V)
        return probs, torch.bernoulli(probs, generator=generator)

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -v b_v - sum_j softplus(v W + b_h)_j, shape (B,)."""
        return -(v @ self.visible_bias) - F.softplus(v @ self.weight + self.hidden_bias).sum(-1)

    @torch.inference_mode()
    def reconstruct(self, v: Tensor) -> Tensor:
        """One mean-field up-pass and down-pass: p(v | E[h | v]), shape (B, V)."""
        return self.visible_probs(self.hidden_probs(v))

    @torch.no_grad()
    def init_visible_bias(self, data: Tensor, eps: float = 1e-3) -> None:
        """Visible biases log(p / (1 - p)) from the data's mean activations (Hinton's guide 8.1)."""
        p = data.float().mean(0).clamp(eps, 1 - eps)  # (V,)
        self.visible_bias.copy_(torch.log(p / (1 - p)))

    # Parameter names in CD order, for trainers that keep one velocity per parameter.
    def cd_parameters(self) -> dict[str, nn.Parameter]:
        return {
            "weight": self.weight,
            "visible_bias": self.visible_bias,
            "hidden_bias": self.hidden_bias,
        }
