"""Sampled CD for the joint rating RBM on large catalogues: the chain visits the mini-batch's
rated items plus a uniform sample of the others, not every item.

Exact CD for the joint model (``ml.training.rbm.rating_cd_statistics``) resamples every item's
K+1 states for every user of the batch: O(B I K H) per Gibbs step, which grows with the
catalogue, not with the ratings. Here the negative chain runs over C columns: every item some
user of the batch rated (always: their positive statistics are non-zero) plus
``sampled_cd_negatives`` times as many items drawn uniformly from the rest; items outside the
C columns stay unrated in the chain (so the update is CD for p(v_C | the other items unrated)).
The rest's negative statistics (what pushes down p(rated) of items nobody in the batch rated)
are estimated without bias from the sample, weighted by 1 / (its sampling probability). The
positive phase is exact and sparse (``rbm_sparse.data_statistics``). Statistics come back as
full-size tensors, zero outside the C columns, ready for the optimiser and the all-reduce.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig
from ml.training.cd import CDStatistics
from ml.training.rbm_gibbs import Conditionals, gibbs_chain
from ml.training.rbm_sparse import data_statistics, dropout_mask


def uses_sampled_cd(config: RBMConfig) -> bool:
    """Whether the joint model trains by sampled CD: a catalogue of at least
    ``sampled_cd_min_items`` items, without PCD chains or the hybrid conditional objective
    (both need every item's state); the exact path otherwise."""
    return (
        config.model_rated
        and not config.training.persistent
        and config.training.conditional_weight == 0
        and config.n_items >= config.training.sampled_cd_min_items
    )


def sample_columns(
    batch: RatedBatch, negatives: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The chain's columns for one batch: (rated items (R,) sorted, then sampled others),
    each column's weight (1 for rated items, (I - R) / S for the S sampled ones), and R."""
    device = batch.items.device
    rated = torch.unique(batch.items)  # sorted
    is_rated = torch.zeros(batch.n_items, dtype=torch.bool, device=device)
    is_rated[rated] = True
    others = torch.nonzero(~is_rated).squeeze(1)  # (I - R,)
    n_sample = min(len(others), math.ceil(negatives * len(rated)))
    pick = torch.randperm(len(others), generator=generator, device=device)[:n_sample]
    columns = torch.cat([rated, others[pick]])
    weight = torch.ones(len(columns), device=device)
    if n_sample:
        weight[len(rated) :] = len(others) / n_sample
    return columns, weight, torch.tensor(len(rated))


def _local_states(batch: RatedBatch, rated: Tensor, n_columns: int) -> Tensor:
    """The batch's data as dense states (B, C) over the chain's columns (rated first)."""
    local = torch.searchsorted(rated, batch.items)  # rated is sorted and holds every item
    states = torch.zeros(batch.n_users, n_columns, dtype=torch.long, device=batch.items.device)
    states[batch.owner, local] = batch.values
    return states


def _scatter(model: RatingRBM, columns: Tensor, sub: dict[str, Tensor]) -> dict[str, Tensor]:
    """Column statistics (C, ...) into full-size tensors, zero outside the columns."""
    out = {"hidden_bias": sub["hidden_bias"]}
    params = model.cd_parameters()
    for name, values in sub.items():
        if name != "hidden_bias":
            full = torch.zeros_like(params[name])
            full[columns] = values
            out[name] = full
    return out


@torch.no_grad()
def sampled_rating_cd_statistics(
    model: RatingRBM, batch: RatedBatch, k: int, generator: torch.Generator | None
) -> CDStatistics:
    """CD-k statistics of the joint model for one mini-batch, the chain over sampled columns.

    ``negative_visible`` holds the chain's last states over the columns (B, C)."""
    cfg = model.config
    if not cfg.model_rated or cfg.training.persistent or cfg.training.conditional_weight:
        raise ValueError("sampled CD is for the joint model without PCD or conditional_weight")
    columns, weight, n_rated = sample_columns(batch, cfg.training.sampled_cd_negatives, generator)
    mask = dropout_mask(cfg, batch.n_users, batch.items.device, generator)
    # Positive phase: exact, from the rated triples.
    h0 = torch.sigmoid(model.hidden_input_sparse(batch.items, batch.values, batch.offsets))
    if mask is not None:
        h0 = h0 * mask  # (B, H)
    positive = data_statistics(model, batch, h0)
    # Negative phase: k Gibbs steps over the columns, every other item held unrated.
    cond = Conditionals.of_model(model, mask, columns)
    start = _local_states(batch, columns[: int(n_rated)], len(columns))
    v_probs, r_probs, h_probs, states = gibbs_chain(cond, start, h0, k, generator, joint=True)
    negative = cond.statistics(v_probs * weight, r_probs * weight, h_probs)
    return CDStatistics(positive, _scatter(model, columns, negative), states)
