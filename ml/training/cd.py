"""Contrastive divergence, shared by every RBM: CD-k / PCD updates with momentum and weight decay.

CD-k (Hinton, "Training Products of Experts by Minimizing Contrastive Divergence", Neural
Computation 2002): the log-likelihood gradient of an RBM is ``<v h>_data - <v h>_model``. The
*positive phase* takes the first term with the hiddens' probabilities given the data; the
*negative phase* approximates the second with k steps of block Gibbs sampling started at the data
(CD-k) or at persistent chains carried over from the previous update (PCD, Tieleman, ICML 2008).
Updates follow Hinton's practical guide (UTML TR 2010-003): mean gradient over the mini-batch,
momentum on a velocity, L2 weight decay on the weights only.

``train_bernoulli_rbm`` trains one ``BernoulliRBM`` (an image model, or one DBN layer at a time)
with the shared fit loop (``BernoulliCDTrainer`` is its CD step).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ml.models.rbm import BernoulliRBM
from ml.training.base import TrainingOptions
from ml.training.loop import BatchTrainer, fit

log = logging.getLogger(__name__)


@dataclass
class MomentumSGD:
    """Manual CD update: ``vel = momentum * vel + lr * (grad - decay * param)``; ``param += vel``.

    ``decayed`` names the parameters that get weight decay (weights, never biases). A gradient
    that is zero outside some rows may come as those rows only (``step``'s ``rows``).
    """

    params: Mapping[str, Tensor]
    decayed: frozenset[str] = frozenset({"weight"})
    velocity: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.velocity = {name: torch.zeros_like(p) for name, p in self.params.items()}

    @torch.no_grad()
    def step(
        self,
        grads: Mapping[str, Tensor],
        lr: float,
        momentum: float,
        weight_decay: float,
        rows: Mapping[str, Tensor] | None = None,
    ) -> None:
        """One update. ``rows[name]`` (C,), distinct: ``grads[name]`` holds only those rows of
        the gradient (C, ...), every other row is zero (no full-size gradient is formed)."""
        rows = rows or {}
        for name, grad in grads.items():
            param, vel = self.params[name], self.velocity[name]
            vel.mul_(momentum)
            if name in rows:
                vel.index_add_(0, rows[name], grad, alpha=lr)
            else:
                vel.add_(grad, alpha=lr)
            if name in self.decayed and weight_decay:  # in place: no temporary of param's size
                vel.add_(param, alpha=-lr * weight_decay)
            param.add_(vel)


@dataclass
class CDStatistics:
    """The two phases' sufficient statistics, already averaged over the mini-batch."""

    positive: dict[str, Tensor]
    negative: dict[str, Tensor]
    negative_visible: Tensor  # (B, V) the chain's last visible sample (PCD keeps it)

    def gradients(self) -> dict[str, Tensor]:
        """positive - negative, computed in place: the positive statistics are consumed."""
        return {name: self.positive[name].sub_(self.negative[name]) for name in self.positive}


@torch.no_grad()
def bernoulli_cd_statistics(
    rbm: BernoulliRBM,
    v0: Tensor,
    k: int,
    generator: torch.Generator | None,
    chain: Tensor | None = None,
) -> CDStatistics:
    """CD-k (or PCD when ``chain`` holds the persistent visible states) for a Bernoulli RBM."""
    n = v0.shape[0]
    # Positive phase: data-driven statistics with hidden probabilities (less noise, same mean).
    h0_probs = rbm.hidden_probs(v0)  # (B, H)
    positive = {
        "weight": v0.T @ h0_probs / n,  # (V, H)
        "visible_bias": v0.mean(0),  # (V,)
        "hidden_bias": h0_probs.mean(0),  # (H,)
    }
    # Negative phase: k steps of block Gibbs sampling from the data (CD) or the chain (PCD).
    v = v0 if chain is None else chain
    _, h = rbm.sample_hidden(v, generator)
    v_probs = v
    for _ in range(k):
        v_probs, v = rbm.sample_visible(h, generator)  # (B, V)
        h_probs, h = rbm.sample_hidden(v, generator)  # (B, H)
    m = v.shape[0]
    negative = {
        "weight": v_probs.T @ h_probs / m,  # (V, H)
        "visible_bias": v_probs.mean(0),  # (V,)
        "hidden_bias": h_probs.mean(0),  # (H,)
    }
    return CDStatistics(positive, negative, v)


class BernoulliCDTrainer(BatchTrainer):
    """One ``BernoulliRBM`` under CD-k/PCD, for the shared loop (``ml.training.loop``).

    ``step`` is the CD hook: both phases' statistics of a mini-batch (the persistent chain
    carried over with PCD) and the momentum update; ``end_epoch`` adds the epoch's figures.
    """

    def __init__(
        self,
        rbm: BernoulliRBM,
        data: Tensor,
        options: TrainingOptions,
        *,
        validation: Tensor | None = None,
        init_visible_bias: bool = True,
    ) -> None:
        cfg = rbm.config
        if data.ndim != 2 or data.shape[1] != cfg.n_visible:
            raise ValueError(f"data must be (N, {cfg.n_visible}), got {tuple(data.shape)}")
        if data.shape[0] == 0:
            raise ValueError("no training data")
        self.model = rbm
        self.config = cfg
        self.device = options.torch_device
        rbm.to(self.device)
        self.generator = options.generator(self.device)
        self.data = data.float()
        self.validation = validation.float() if validation is not None else None
        if init_visible_bias:
            rbm.init_visible_bias(self.data.to(self.device))
        self.optimiser = MomentumSGD(rbm.cd_parameters())
        self.chain: Tensor | None = None
        if cfg.persistent:
            self.chain = torch.bernoulli(
                self.data[: cfg.batch_size].to(self.device).clamp(0, 1), generator=self.generator
            )  # (B, V)
        self.epoch = 0

    def batches(self) -> Iterator[Tensor]:
        n = self.data.shape[0]
        order = torch.randperm(n, generator=self.generator, device=self.device).cpu()
        return (
            order[start : start + self.config.batch_size]
            for start in range(0, n, self.config.batch_size)
        )

    def step(self, index: Tensor) -> dict[str, float]:
        cfg = self.config
        v0 = self.data[index].to(self.device)  # (B, V)
        stats = bernoulli_cd_statistics(self.model, v0, cfg.cd_k, self.generator, self.chain)
        if self.chain is not None:
            self.chain = stats.negative_visible
        self.optimiser.step(stats.gradients(), cfg.learning_rate, cfg.momentum, cfg.weight_decay)
        return {}

    def end_epoch(self, metrics: dict[str, float]) -> None:
        self.epoch += 1
        metrics["epoch"] = float(self.epoch)
        batch = self.config.batch_size * 16
        metrics.update(_bernoulli_eval(self.model, self.data, self.device, "", batch))
        if self.validation is not None:
            metrics.update(_bernoulli_eval(self.model, self.validation, self.device, "val_", 4096))


def train_bernoulli_rbm(
    rbm: BernoulliRBM,
    data: Tensor,
    epochs: int | None = None,
    options: TrainingOptions = TrainingOptions(),
    *,
    validation: Tensor | None = None,
    init_visible_bias: bool = True,
    name: str = "rbm",
) -> list[dict[str, float]]:
    """Train ``rbm`` on ``data`` (N, V) in [0, 1] with CD-k/PCD; return per-epoch metrics.

    Metrics per epoch: ``recon_error`` (mean squared error of one up/down mean-field pass, over
    the training data), ``free_energy`` (mean F(v) of the training data), and when ``validation``
    is given ``val_recon_error`` and ``val_free_energy`` (the gap is the overfitting signal).
    The model is moved to ``options.torch_device``; ``data`` is moved a batch at a time. The
    shared loop drives the epochs (``epochs``, default ``options.epochs``).
    """
    trainer = BernoulliCDTrainer(
        rbm, data, options, validation=validation, init_visible_bias=init_visible_bias
    )
    result = fit(trainer, options, epochs=epochs, name=name, postfix="recon_error")
    return result.history.records


@torch.inference_mode()
def _bernoulli_eval(
    rbm: BernoulliRBM, data: Tensor, device: torch.device, prefix: str, batch: int
) -> dict[str, float]:
    sq, fe, n = 0.0, 0.0, data.shape[0]
    for start in range(0, n, batch):
        v = data[start : start + batch].to(device)  # (B, V)
        sq += float(((rbm.reconstruct(v) - v) ** 2).mean(1).sum())
        fe += float(rbm.free_energy(v).sum())
    return {f"{prefix}recon_error": sq / n, f"{prefix}free_energy": fe / n}
