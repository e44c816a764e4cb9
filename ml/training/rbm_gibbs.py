"""Block Gibbs sampling of the rating RBM in the "value-major" layout, over any set of items.

The CD hot path keeps visible tensors as (K, B, I), so every reduction over the K rating values
runs over whole (B, I) slabs (a softmax over a last axis of 5 or 6 is several times slower on
the CPU). ``Conditionals`` holds the parameters of the items the chain visits: every item (the
exact CD of ``ml.training.rbm``) or a subset of columns (the sampled CD of
``ml.training.rbm_sampled``); items outside the subset stay unrated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig


def sample_states(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One categorical sample per (b, i) from ``probs`` (S, B, I) summing to one over axis 0,
    by inverting the cumulative distribution: indices (B, I) in 0..S-1."""
    u = torch.rand(probs.shape[1:], generator=generator, device=probs.device)  # (B, I)
    return (probs.cumsum(0) < u).sum(0).clamp_max(probs.shape[0] - 1)


@dataclass
class Conditionals:
    """The model's conditionals over C items, for one CD update (weights fixed).

    rating_weight (C, K, H), rated_weight (C, H), rating_bias (C, K), rated_bias (C,),
    hidden_bias (H,); ``hidden_mask`` (B, H) is the update's dropout mask, or None.
    """

    config: RBMConfig
    rating_weight: Tensor
    rated_weight: Tensor
    rating_bias: Tensor
    rated_bias: Tensor
    hidden_bias: Tensor
    hidden_mask: Tensor | None = None

    @classmethod
    def of_model(
        cls, model: RatingRBM, hidden_mask: Tensor | None = None, columns: Tensor | None = None
    ) -> Conditionals:
        """Every item of ``model``, or only ``columns`` (C,) (copies of their rows)."""

        def rows(param: Tensor) -> Tensor:
            return param if columns is None else param[columns]

        return cls(
            model.config,
            rows(model.rating_weight),
            rows(model.rated_weight),
            rows(model.rating_bias),
            rows(model.rated_bias),
            model.hidden_bias,
            hidden_mask,
        )

    @property
    def uses_rated(self) -> bool:
        return self.config.model_rated or self.config.conditional

    def hidden_input(self, v: RatedBatch) -> Tensor:
        """x = b_h + sum of the rated items' W_ik (+ D_i), (B, H) (``hidden_input_sparse``)."""
        n_items, k, n_hidden = self.rating_weight.shape
        flat = self.rating_weight.reshape(n_items * k, n_hidden)
        x = F.embedding_bag(v.items * k + v.values - 1, flat, v.offsets, mode="sum")  # (B, H)
        if self.uses_rated:
            x = x + F.embedding_bag(v.items, self.rated_weight, v.offsets, mode="sum")
        return x + self.hidden_bias

    def hidden_probs(self, states: Tensor) -> Tensor:
        """p(h = 1 | v) (B, H) from visible states (B, C) in 0..K (0 = unrated).

        Through the rated entries only: data and samples alike rate a few percent of the items,
        so this beats the dense one-hot product.
        """
        probs = torch.sigmoid(self.hidden_input(RatedBatch.from_dense(states)))
        return probs if self.hidden_mask is None else probs * self.hidden_mask

    def rating_logits(self, h: Tensor, out: Tensor | None = None) -> Tensor:
        """Logits of the K rated states, (K, B, C) (see ``RatingRBM.rating_logits``), written
        into ``out`` (K, B, C) when given."""
        n_items, k, n_hidden = self.rating_weight.shape
        flat = h @ self.rating_weight.reshape(n_items * k, n_hidden).T  # (B, C*K)
        by_value = flat.view(-1, n_items, k).permute(2, 0, 1)
        logits = torch.add(by_value, self.rating_bias.T.unsqueeze(1), out=out)
        if self.config.model_rated:
            logits.add_((h @ self.rated_weight.T + self.rated_bias).unsqueeze(0))
        return logits

    def statistics(
        self, values: Tensor, rated: Tensor, h: Tensor, scale: float = 1.0
    ) -> dict[str, Tensor]:
        """Mean sufficient statistics over the batch, ``scale`` times, from value probabilities
        (K, B, C), rated probabilities (B, C) and hidden probabilities (B, H)."""
        m = h.shape[0] / scale
        h = h / m  # the mean's 1/m on (B, H), not on the (C, K, H) products
        out = {
            "rating_weight": (values.transpose(1, 2) @ h).transpose(0, 1),  # (C, K, H)
            "rating_bias": values.sum(1).T / m,  # (C, K)
            "hidden_bias": h.sum(0),  # (H,)
        }
        if self.uses_rated:
            out["rated_weight"] = rated.T @ h  # (C, H)
            out["rated_bias"] = rated.sum(0) / m  # (C,)
        return out


@torch.no_grad()
def gibbs_chain(
    cond: Conditionals,
    start: Tensor,
    h_probs: Tensor,
    k: int,
    generator: torch.Generator | None,
    *,
    joint: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """k steps of block Gibbs sampling from visible states ``start`` (B, C) whose hidden
    probabilities are ``h_probs`` (B, H).

    ``joint``: every item's K+1 states (unrated or a value) are resampled. Otherwise the
    conditional chain: which items are rated stays clamped to ``start`` and only the values of
    the rated items are resampled (the paper's model). Returns the last visible probabilities
    (K, B, C), rated probabilities (B, C), hidden probabilities (B, H) and visible states (B, C).
    """
    mask = (start > 0).float()  # (B, C)
    h = torch.bernoulli(h_probs, generator=generator)
    states, v_probs, r_probs = start, torch.empty(0), mask
    n_k = cond.rating_weight.shape[1]
    # The joint chain's K+1 state logits: "unrated" (0) then the K values', written in place.
    full = h_probs.new_zeros(n_k + 1, *start.shape) if joint else None  # (K+1, B, C)
    for _ in range(k):
        if full is not None:
            cond.rating_logits(h, out=full[1:])
            p = torch.softmax(full, 0)
            v_probs, r_probs = p[1:], 1 - p[0]  # (K, B, C), (B, C)
            states = sample_states(p, generator)  # (B, C) in 0..K
        else:
            p = torch.softmax(cond.rating_logits(h), 0)  # (K, B, C): p(k | rated, h)
            v_probs = p * mask  # rated items only
            states = (sample_states(p, generator) + 1) * mask.long()  # (B, C)
        h_probs = cond.hidden_probs(states)
        h = torch.bernoulli(h_probs, generator=generator)
    return v_probs, r_probs, h_probs, states
