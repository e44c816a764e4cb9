"""Deep Belief Network: a stack of Bernoulli RBMs, and the deep autoencoder unrolled from it.

- Greedy layer-wise pre-training (Hinton, Osindero & Teh, "A Fast Learning Algorithm for Deep
  Belief Nets", Neural Computation 2006): RBM l is trained with CD-k on the hidden probabilities
  of RBM l-1 (the trainer is ``ml.training.dbn``; each layer is the shared ``BernoulliRBM``).
- Codes by the up-pass: ``h_l = sigma(h_{l-1} W_l + c_l)``.
- Generation: block Gibbs sampling in the top RBM (an undirected associative memory), then a
  deterministic down-pass ``h_{l-1} = sigma(h_l W_l^T + b_l)`` through the directed lower layers.
- Dimensionality reduction: the stack is unrolled into an encoder (W_1 .. W_L) and a decoder
  (W_L^T .. W_1^T) and the untied weights are fine-tuned by backpropagation on the reconstruction
  error (Hinton & Salakhutdinov, "Reducing the Dimensionality of Data with Neural Networks",
  Science 2006). Reconstruction is up (encoder) then down (decoder).

The pre-trained RBMs are kept as they are for generation; fine-tuning changes only the unrolled
autoencoder's copy of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from ml.models.config_keys import rename_legacy_keys
from ml.models.rbm import BernoulliRBM, BernoulliRBMConfig


@dataclass(frozen=True)
class DBNConfig:
    """Layer sizes and training settings of a DBN.

    layers: unit counts from the visible layer up, e.g. (64, 256, 64, 16); the last is the code
        width of the autoencoder and the top RBM's hidden layer.
    learning_rate, momentum, weight_decay, cd_k, persistent, batch_size: CD-k settings shared by
        every layer's RBM (see ``BernoulliRBMConfig``).
    pretrain_epochs: CD epochs per layer.
    finetune_epochs, finetune_learning_rate: backpropagation fine-tuning of the unrolled
        autoencoder (Adam on the pixel-wise cross-entropy, as Hinton & Salakhutdinov use for
        logistic outputs); 0 epochs keeps the pre-trained weights.
    linear_code: the code layer is linear (no sigmoid) in the autoencoder, as in Hinton &
        Salakhutdinov's code units; False keeps logistic codes in [0, 1].
    gibbs_steps: Gibbs steps in the top RBM per generated sample.
    """

    # Old manifests' key names (one scheme across configs: ``learning_rate`` is a step size).
    LEGACY_KEYS: ClassVar[dict[str, str]] = {"finetune_lr": "finetune_learning_rate"}

    layers: tuple[int, ...] = (64, 256, 64, 16)
    learning_rate: float = 0.05
    momentum: float = 0.5
    weight_decay: float = 1e-4
    cd_k: int = 3
    persistent: bool = False
    batch_size: int = 64
    pretrain_epochs: int = 100
    finetune_epochs: int = 100
    finetune_learning_rate: float = 1e-3
    linear_code: bool = True
    gibbs_steps: int = 500

    def __post_init__(self) -> None:
        try:
            layers = tuple(int(n) for n in self.layers)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"layers must be a list of unit counts, got {self.layers!r}") from exc
        object.__setattr__(self, "layers", layers)
        if len(layers) < 2 or min(layers) < 1:
            raise ValueError(f"need at least two positive layer sizes, got {layers}")
        if self.pretrain_epochs < 1 or self.finetune_epochs < 0 or self.gibbs_steps < 1:
            raise ValueError("need pretrain_epochs >= 1, finetune_epochs >= 0, gibbs_steps >= 1")
        if self.finetune_learning_rate <= 0:
            raise ValueError(
                f"finetune_learning_rate must be positive, got {self.finetune_learning_rate}"
            )
        self.rbm_config(0)  # validates the CD settings

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DBNConfig:
        """From a manifest's config, old key names included (``finetune_lr``)."""
        return cls(**rename_legacy_keys(values, cls.LEGACY_KEYS))

    def rbm_config(self, index: int) -> BernoulliRBMConfig:
        return BernoulliRBMConfig(
            n_visible=self.layers[index],
            n_hidden=self.layers[index + 1],
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            cd_k=self.cd_k,
            persistent=self.persistent,
            batch_size=self.batch_size,
        )

    @property
    def n_rbms(self) -> int:
        return len(self.layers) - 1

    @property
    def code_width(self) -> int:
        return self.layers[-1]


class DBN(nn.Module):
    """rbms[l] links layers[l] and layers[l+1]; encoder/decoder are the unrolled autoencoder."""

    def __init__(self, config: DBNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.rbms = nn.ModuleList(
            BernoulliRBM(config.rbm_config(i), generator) for i in range(config.n_rbms)
        )
        sizes = config.layers
        self.encoder = nn.ModuleList(
            nn.Linear(sizes[i], sizes[i + 1]) for i in range(config.n_rbms)
        )
        self.decoder = nn.ModuleList(
            nn.Linear(sizes[i + 1], sizes[i]) for i in reversed(range(config.n_rbms))
        )
        # Mean activity of the top RBM's visible layer on the data: where Gibbs chains start.
        self.top_visible_mean: Tensor
        self.register_buffer("top_visible_mean", torch.full((sizes[-2],), 0.5))
        self.unroll()

    @property
    def stack(self) -> list[BernoulliRBM]:
        """The RBMs from the bottom up (typed view of ``self.rbms``)."""
        return [cast(BernoulliRBM, rbm) for rbm in self.rbms]

    @torch.no_grad()
    def unroll(self) -> None:
        """Copy the RBMs' weights into the autoencoder: encoder W^T, c; decoder W, b."""
        for rbm, enc in zip(self.stack, _linears(self.encoder), strict=True):
            enc.weight.copy_(rbm.weight.T)  # (H, V)
            enc.bias.copy_(rbm.hidden_bias)
        for rbm, dec in zip(reversed(self.stack), _linears(self.decoder), strict=True):
            dec.weight.copy_(rbm.weight)  # (V, H)
            dec.bias.copy_(rbm.visible_bias)

    # ---- the generative stack (pre-trained RBMs) ------------------------------------------
    @torch.inference_mode()
    def up_pass(self, v: Tensor) -> Tensor:
        """Greedy codes (B, layers[-1]): hidden probabilities of each RBM in turn."""
        for rbm in self.stack:
            v = rbm.hidden_probs(v)
        return v

    @torch.inference_mode()
    def down_pass(self, h: Tensor, from_layer: int | None = None) -> Tensor:
        """Visible probabilities (B, layers[0]) from the activities of layer ``from_layer``."""
        top = self.config.n_rbms if from_layer is None else from_layer
        for rbm in reversed(self.stack[:top]):
            h = rbm.visible_probs(h)
        return h

    @torch.inference_mode()
    def generate(self, n: int, generator: torch.Generator, steps: int | None = None) -> Tensor:
        """n images (n, layers[0]): Gibbs sampling in the top RBM, then a down-pass.

        Chains start from Bernoulli draws with the data's mean activity of the top RBM's visible
        layer; the last step's visible probabilities go down the directed layers.
        """
        top = self.stack[-1]
        device = top.weight.device
        start = self.top_visible_mean.expand(n, -1)  # (n, V_top)
        v = torch.bernoulli(start.to(device), generator=generator)
        v_probs = v
        for _ in range(steps or self.config.gibbs_steps):
            _, h = top.sample_hidden(v, generator)  # (n, H_top)
            v_probs, v = top.sample_visible(h, generator)  # (n, V_top)
        return self.down_pass(v_probs, from_layer=self.config.n_rbms - 1)

    # ---- the unrolled, fine-tuned autoencoder ---------------------------------------------
    def encode(self, v: Tensor) -> Tensor:
        """Fine-tuned codes (B, layers[-1]); linear at the top when ``linear_code``."""
        last = len(self.encoder) - 1
        for i, layer in enumerate(self.encoder):
            v = layer(v)
            if i < last or not self.config.linear_code:
                v = torch.sigmoid(v)
        return v

    def decode_logits(self, code: Tensor) -> Tensor:
        h = code
        last = len(self.decoder) - 1
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < last:
                h = torch.sigmoid(h)
        return h  # (B, layers[0]) logits of the pixels

    def decode(self, code: Tensor) -> Tensor:
        return torch.sigmoid(self.decode_logits(code))  # (B, layers[0])

    def forward(self, v: Tensor) -> Tensor:
        """Reconstruction logits (B, layers[0]) of the autoencoder (for the fine-tuning loss)."""
        return self.decode_logits(self.encode(v))

    @torch.inference_mode()
    def reconstruct(self, v: Tensor) -> Tensor:
        """Up then down through the fine-tuned autoencoder: (B, layers[0]) in [0, 1]."""
        return self.decode(self.encode(v))

    @torch.inference_mode()
    def codes(self, v: Tensor) -> Tensor:
        return self.encode(v)


def _linears(layers: nn.ModuleList) -> list[nn.Linear]:
    return [cast(nn.Linear, layer) for layer in layers]
