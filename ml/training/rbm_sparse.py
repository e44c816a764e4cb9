"""CD-k for the paper's rating RBM (``model_rated=False``) on the rated entries only.

In the paper's model an unrated item is simply absent: the Gibbs chain resamples the VALUES of
the items a user rated and nothing else (Salakhutdinov, Mnih & Hinton 2007, sec. 2). So one CD
update touches only the mini-batch's (user, item, value) triples: O(nnz K H) instead of the
dense O(B I K H), about 15x less work at MovieLens' 6% density. The statistics are the dense
``rating_cd_statistics``' (mean over the mini-batch's users), as full-size tensors ready for
the optimiser or, for the weights, as the rows of the items the batch rated
(``sparse_rating_cd_gradients(visited_rows=True)``); the dense path stays for the joint model,
whose chain visits every item.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig
from ml.training.cd import CDStatistics


def dropout_mask(
    config: RBMConfig, n_users: int, device: torch.device, generator: torch.Generator | None
) -> Tensor | None:
    """The update's hidden dropout mask (B, H), 1 = kept, or None without dropout."""
    if config.hidden_dropout <= 0:
        return None
    keep = torch.full((n_users, config.n_hidden), 1 - config.hidden_dropout, device=device)
    return torch.bernoulli(keep, generator=generator)


def _hidden_probs(model: RatingRBM, batch: RatedBatch, values: Tensor) -> Tensor:
    """p(h = 1 | v) (B, H) for the batch's rated items holding ``values`` (nnz,) in 1..K."""
    return torch.sigmoid(model.hidden_input_sparse(batch.items, values, batch.offsets))


def _value_probs(h_rows: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """p(v_ik = 1 | h, i rated) (nnz, K) from each triple's hidden row (nnz, H) and its item's
    weights (nnz, K, H) and biases (nnz, K), gathered once per update."""
    return torch.softmax(torch.einsum("nh,nkh->nk", h_rows, weight) + bias, -1)


def _sample_values(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One value 1..K per row of ``probs`` (nnz, K), by inverting the cumulative distribution."""
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    return (probs.cumsum(-1) < u).sum(-1).clamp_max(probs.shape[1] - 1) + 1


def _statistics(
    model: RatingRBM, batch: RatedBatch, value_probs: Tensor, h: Tensor
) -> dict[str, Tensor]:
    """Mean sufficient statistics <v h>, <v>, <h> (and <r h> with the conditional D) over the
    batch's users, from value probabilities (nnz, K) (one-hot in the positive phase).

    Only the rows of the batch's items are non-zero; they are accumulated by ``index_add_``
    with the 1/B of the mean folded into the (nnz, ...) sources, not into full-size tensors.
    """
    n_items, k, n_hidden = model.rating_weight.shape
    scale = 1.0 / batch.n_users
    h_rows = h[batch.owner] * scale  # (nnz, H)
    slots = (batch.items.unsqueeze(1) * k + torch.arange(k, device=h.device)).reshape(-1)
    outer = (value_probs.unsqueeze(-1) * h_rows.unsqueeze(1)).reshape(-1, n_hidden)  # (nnz*K, H)
    weight = torch.zeros(n_items * k, n_hidden, device=h.device, dtype=h.dtype)
    weight.index_add_(0, slots, outer)
    bias = torch.zeros(n_items * k, device=h.device, dtype=h.dtype)
    bias.index_add_(0, slots, value_probs.reshape(-1) * scale)
    out = {
        "rating_weight": weight.view(n_items, k, n_hidden),
        "rating_bias": bias.view(n_items, k),
        "hidden_bias": h.sum(0) * scale,
    }
    if model.config.conditional:  # which items are rated is clamped: <r h> uses h only
        out.update(_rated_statistics(batch, h_rows, scale))
    return out


def _rated_statistics(batch: RatedBatch, h_rows: Tensor, scale: float) -> dict[str, Tensor]:
    """<r h> and <r> of the rated indicators, from (nnz, H) hidden rows already scaled."""
    rated = torch.zeros(batch.n_items, h_rows.shape[1], device=h_rows.device, dtype=h_rows.dtype)
    return {
        "rated_weight": rated.index_add_(0, batch.items, h_rows),
        "rated_bias": torch.bincount(batch.items, minlength=batch.n_items).to(h_rows.dtype) * scale,
    }


def data_statistics(
    model: RatingRBM, batch: RatedBatch, h: Tensor, weight: float = 1.0
) -> dict[str, Tensor]:
    """Positive-phase statistics, ``weight`` times their mean over the batch's users.

    The values are one-hot, so each triple adds its user's h to one (item, value) row: O(nnz H)
    where the dense product of the one-hot (K, B, I) visibles with h costs O(B I K H).
    """
    n_items, k, n_hidden = model.rating_weight.shape
    scale = weight / batch.n_users
    h_rows = h[batch.owner] * scale  # (nnz, H)
    slots = batch.items * k + batch.values - 1  # (nnz,)
    rating = torch.zeros(n_items * k, n_hidden, device=h.device, dtype=h.dtype)
    out = {
        "rating_weight": rating.index_add_(0, slots, h_rows).view(n_items, k, n_hidden),
        "rating_bias": (torch.bincount(slots, minlength=n_items * k).to(h.dtype) * scale).view(
            n_items, k
        ),
        "hidden_bias": h.sum(0) * scale,
    }
    if model.config.model_rated or model.config.conditional:
        out.update(_rated_statistics(batch, h_rows, scale))
    return out


@torch.no_grad()
def sparse_rating_cd_statistics(
    model: RatingRBM, batch: RatedBatch, k: int, generator: torch.Generator | None
) -> CDStatistics:
    """CD-k statistics of the paper's model for one mini-batch, from the rated triples only."""
    if model.config.model_rated or model.config.hidden_dropout > 0:
        raise ValueError("the sparse CD path is for model_rated=false without hidden dropout")
    # Positive phase: hiddens driven by the data.
    h0 = _hidden_probs(model, batch, batch.values)  # (B, H)
    positive = data_statistics(model, batch, h0)
    # Negative phase: k Gibbs steps that resample the values of the rated items only.
    weight, bias = model.rating_weight[batch.items], model.rating_bias[batch.items]
    h = torch.bernoulli(h0, generator=generator)
    values, v_probs, h_probs = batch.values, torch.empty(0), h0
    for _ in range(k):
        v_probs = _value_probs(h[batch.owner], weight, bias)  # (nnz, K)
        values = _sample_values(v_probs, generator)  # (nnz,)
        h_probs = _hidden_probs(model, batch, values)
        h = torch.bernoulli(h_probs, generator=generator)
    negative = _statistics(model, batch, v_probs, h_probs)
    return CDStatistics(positive, negative, values)


def _value_slots(items: Tensor, n_k: int) -> Tensor:
    """Rows (item * K + value) of flattened (items, K) tensors for each rated triple's K
    values, (nnz K,), from the triples' ``items`` (nnz,), in the triples' order."""
    values = torch.arange(n_k, device=items.device)
    return (items.unsqueeze(1) * n_k + values).reshape(-1)


def _csr(crow: Tensor, col: Tensor, value: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR tensor built from indices made here (sorted, in range: no invariant check
    needed), without torch's one-off "beta" warning about sparse CSR support."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, value, shape, check_invariants=False)


def _logit_pattern(batch: RatedBatch, slots: Tensor, n_k: int, like: Tensor) -> Tensor:
    """The (B, I K) sparsity pattern of the value logits the chain needs, in CSR: row b holds
    user b's rated items' K slots. ``sampled_addmm`` fills exactly these entries."""
    counts = torch.bincount(batch.owner, minlength=batch.n_users)
    crow = torch.zeros(batch.n_users + 1, dtype=torch.long, device=slots.device)
    crow[1:] = torch.cumsum(counts, 0) * n_k
    return _csr(crow, slots, like.new_zeros(len(slots)), (batch.n_users, batch.n_items * n_k))


def _phase_matrix(batch: RatedBatch, item_rows: Tensor, v_probs: Tensor, n_rows: int) -> Tensor:
    """Both phases' value weights as a sparse (R K, 2B) CSR matrix, R the rows ``item_rows``
    (nnz,) numbers the triples' items by: +1 at (row * K + value, user) for each rated triple
    (the data's one-hot), -p(value) at (row * K + k, B + user) for each triple and k (the
    chain's probabilities). Times the two phases' hiddens (2B, H) it is the weight gradient;
    no (user, item) pair repeats, so no entry does."""
    n_users, n_k = batch.n_users, v_probs.shape[1]
    slots = _value_slots(item_rows, n_k)
    row = torch.cat([item_rows * n_k + batch.values - 1, slots])
    col = torch.cat([batch.owner, (batch.owner + n_users).repeat_interleave(n_k)])
    value = torch.cat([v_probs.new_ones(len(batch.items)), v_probs.reshape(-1).neg()])
    order = torch.argsort(row * (2 * n_users) + col)
    row, col, value = row[order], col[order], value[order]
    crow = torch.zeros(n_rows * n_k + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=n_rows * n_k), 0)
    return _csr(crow, col, value, (n_rows * n_k, 2 * n_users))


@torch.no_grad()
def sparse_rating_cd_gradients(
    model: RatingRBM,
    batch: RatedBatch,
    k: int,
    generator: torch.Generator | None,
    out: dict[str, Tensor] | None = None,
    *,
    visited_rows: bool = False,
) -> dict[str, Tensor]:
    """``sparse_rating_cd_statistics(...).gradients()`` by sparse products over the rated
    triples: the K value logits of each triple by one sampled product (``sampled_addmm``: only
    the (user, rated item, value) entries of h W^T) per Gibbs step, and the weight gradient
    by one sparse (I K, 2B) x dense (2B, H) product, written straight into ``out``'s buffers
    when given (reused, no fresh pages).

    With ``visited_rows`` the weight gradient covers only the C items the batch rated: it is
    returned as ``rating_weight`` (C, K, H) with their indices as ``visited`` (C,), ascending
    (the rows of every other item are zero), for ``MomentumSGD.step``'s ``rows``.

    Same figures up to float rounding (and the same draws from ``generator``) as the
    per-triple path, which gathers an (nnz, K, H) copy of the weights and forms (nnz K, H)
    outer products per update. Dense products over the batch's visited columns cost 15x the
    needed work on MovieLens-1M's item RBM (a batch of 32 items reaches about 3,000 users
    through 6,500 ratings) and were most of an update (bench/results/rbm_scale.md).
    """
    cfg = model.config
    if cfg.model_rated or cfg.conditional or cfg.hidden_dropout > 0:
        raise ValueError("the sparse CD path is for model_rated=false without hidden dropout")
    n_items, n_k, n_hidden = model.rating_weight.shape
    n_users = batch.n_users
    flat = model.rating_weight.view(n_items * n_k, n_hidden)
    slots = _value_slots(batch.items, n_k)  # (nnz K,)
    bias = model.rating_bias[batch.items]  # (nnz, K)
    # Positive phase: hiddens driven by the data.
    h0 = _hidden_probs(model, batch, batch.values)  # (B, H)
    pattern = _logit_pattern(batch, slots, n_k, h0)
    # Negative phase: k Gibbs steps that resample the values of the rated items only.
    h = torch.bernoulli(h0, generator=generator)
    v_probs, h_probs = torch.empty(0), h0
    for _ in range(k):
        logits = torch.sparse.sampled_addmm(pattern, h, flat.T).values()  # (nnz K,)
        v_probs = torch.softmax(logits.view(-1, n_k) + bias, -1)  # (nnz, K)
        values = _sample_values(v_probs, generator)  # (nnz,)
        h_probs = _hidden_probs(model, batch, values)
        h = torch.bernoulli(h_probs, generator=generator)
    scale = 1.0 / n_users
    hiddens = torch.cat([h0, h_probs]) * scale  # (2B, H): the batch mean's 1/B
    grads = out if out is not None else {}
    if visited_rows:
        visited, item_rows = torch.unique(batch.items, return_inverse=True)  # (C,), (nnz,)
        phases = _phase_matrix(batch, item_rows, v_probs, len(visited))  # (C K, 2B)
        grads["rating_weight"] = torch.mm(phases, hiddens).view(len(visited), n_k, n_hidden)
        grads["visited"] = visited
    else:
        phases = _phase_matrix(batch, batch.items, v_probs, n_items)  # (I K, 2B)
        if "rating_weight" not in grads:
            grads["rating_weight"] = torch.empty_like(model.rating_weight)
        torch.mm(phases, hiddens, out=grads["rating_weight"].view(n_items * n_k, n_hidden))
    row_sums = torch.cat([h0.new_ones(len(batch.items)), v_probs.reshape(-1).neg()])
    slot_of = torch.cat([batch.items * n_k + batch.values - 1, slots])
    grads["rating_bias"] = (
        torch.zeros(n_items * n_k, dtype=h0.dtype, device=h0.device)
        .index_add_(0, slot_of, row_sums, alpha=scale)
        .view(n_items, n_k)
    )
    grads["hidden_bias"] = (h0.sum(0) - h_probs.sum(0)) * scale
    return grads
