"""Restricted Boltzmann machines: a Bernoulli-Bernoulli RBM (images, DBN layers) and the rating
RBM collaborative filter.

Bernoulli RBM (Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", UTML TR
2010-003; Hinton, Osindero & Teh 2006 for stacking): binary visible v (V,), binary hidden h (H,),
energy ``E(v, h) = -v W h - b_v v - b_h h``, so ``p(h_j = 1 | v) = sigma(v W + b_h)`` and
``p(v_i = 1 | h) = sigma(h W^T + b_v)``, and free energy
``F(v) = -b_v v - sum_j softplus(v W + b_h)_j``.

Rating RBM (Salakhutdinov, Mnih & Hinton, "Restricted Boltzmann Machines for Collaborative
Filtering", ICML 2007): one K-way softmax visible per item over the rating values, binary
hiddens, ``W[item, k, hidden]``, visible biases from log rating frequencies. Ranking needs more
than E[r]: ranked by E[r] alone, the paper's model scores validation nDCG@10 0.07, below
popularity (0.16), because it cannot tell an item the user will watch from one nobody watches.
So the model also treats WHICH items a user rated as data: each item gets a binary "rated"
visible r_i (weights D (I, H), bias c (I,)), i.e. an extra "unrated" state beside the K values
(K+1 states per item; the rated states' logits are ``c_i + b_ik + h (D_i + W_ik)``). The same
hiddens then explain both which items a user rates and how, ranking uses p(rated_i | h) after
one mean-field up- and down-pass (fold-in). Chosen on the validation pair
(``protocol_split(validation_seed=7)``, see bench/results/rbm.md), where this joint model
reaches nDCG@10 0.262 with 100 hiddens (EASE 0.267, popularity 0.163), over: the paper's
conditional RBM (D feeds the hiddens, r not modelled) ranked by E[r] (0.055); ranking by
p(rated) x E[r] (0.261, a tie, so the simpler score); a companion Bernoulli RBM over the rated
matrix alone (0.241 at its best epoch); CD-1 throughout (0.261) and PCD (0.259). Dropout on the
hidden units (Srivastava et al., JMLR 2014, sec. 8) lets 200 hiddens generalise: 0.267 mean of
3 seeds with p = 0.4 and 20 epochs, vs 0.260 for the 100-hidden model without it.
Hyper-parameters (hidden units, dropout, learning rate and its decay, momentum, weight decay,
CD-k schedule 1 -> 3, epochs) were chosen on that pair.

Ratings are predicted by a companion: the same model class trained on the transposed matrix (an
item-based rating RBM, ``ml.models.rbm_ratings``), because the rating values of this user-based
model generalise poorly from 943 users (validation RMSE 1.01, near the item-mean level, vs 0.923
for the companion). Test fold: nDCG@10 0.461, P@10 0.397, RMSE 0.916.
``RBMConfig.rating_model="joint"`` keeps this model's own E[r] = sum_k k p(v_ik = 1 | h, rated).

The models hold parameters and the pure conditionals only; contrastive divergence lives in
``ml.training.cd`` (shared CD machinery, Bernoulli trainer) and ``ml.training.rbm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.models.rbm_config import RBMConfig as RBMConfig  # its home before the split


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


# --------------------------------------------------------------------------------------------
# The rating RBM (collaborative filtering)
# --------------------------------------------------------------------------------------------


def bin_ratings(values: Tensor, n_ratings: int = 5) -> Tensor:
    """Rating values to softmax states 1..K (half stars round up: 3.5 -> 4); 0 stays unrated."""
    binned = torch.ceil(values - 1e-6).clamp(1, n_ratings).long()
    return torch.where(values > 0, binned, torch.zeros_like(binned))


class RatingRBM(nn.Module):
    """Softmax-visible RBM over items, optionally with a binary "rated" visible per item.

    Visible state of item i for a user: unrated, or rated with value k in 1..K. Energy
    (Salakhutdinov et al. 2007, eq. 3, extended by the rated indicator r_i = sum_k v_ik)::

        E(v, h) = -sum_ik v_ik (W_ik h + b_ik) - sum_i r_i (D_i h + c_i) - b_h h

    so the K+1 states of item i have logits 0 (unrated) and ``c_i + b_ik + h (D_i + W_ik)``.
    With ``model_rated=False`` only rated items are visible (the paper's model): c is unused and
    D too unless ``conditional`` (then r feeds the hiddens through D, unmodelled).
    Parameters: rating_weight W (I, K, H), rated_weight D (I, H), rating_bias b (I, K),
    rated_bias c (I,), hidden_bias b_h (H,).
    """

    def __init__(self, config: RBMConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        i, k, h = config.n_items, config.n_ratings, config.n_hidden
        self.rating_weight = nn.Parameter(
            torch.randn(i, k, h, generator=generator) * 0.01, requires_grad=False
        )  # (I, K, H)
        self.rated_weight = nn.Parameter(
            torch.randn(i, h, generator=generator) * 0.01, requires_grad=False
        )  # (I, H)
        self.rating_bias = nn.Parameter(torch.zeros(i, k), requires_grad=False)  # (I, K)
        self.rated_bias = nn.Parameter(torch.zeros(i), requires_grad=False)  # (I,)
        self.hidden_bias = nn.Parameter(torch.zeros(h), requires_grad=False)  # (H,)

    def cd_parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.named_parameters())

    @torch.no_grad()
    def init_biases(self, bins: Tensor, prior: float = 1.0) -> None:
        """Visible biases from the data: log rating frequencies per item (smoothed by ``prior``
        pseudo-counts per state) and the log-odds of each item being rated. ``bins`` (U, I)."""
        k = self.config.n_ratings
        onehot = F.one_hot(bins, k + 1)[..., 1:].float()  # (U, I, K)
        counts = onehot.sum(0) + prior  # (I, K)
        self.rating_bias.copy_(torch.log(counts / counts.sum(1, keepdim=True)))
        p = ((bins > 0).float().mean(0)).clamp(1e-4, 1 - 1e-4)  # (I,)
        self.rated_bias.copy_(torch.log(p / (1 - p)))

    @torch.no_grad()
    def init_biases_from_rows(self, rows: sp.csr_matrix, prior: float = 1.0) -> None:
        """``init_biases`` from CSR rating rows (U, I) without densifying them: the counts come
        from the stored ratings, so memory grows with the ratings, not with U x I."""
        k = self.config.n_ratings
        rows = sp.csr_matrix(rows)
        positive = rows.data > 0
        items = rows.indices[positive].astype(np.int64)
        states = bin_ratings(torch.from_numpy(rows.data[positive].astype(np.float32)), k).numpy()
        n_items = rows.shape[1]
        counts = np.bincount(items * k + states - 1, minlength=n_items * k).reshape(n_items, k)
        # float32 throughout, as ``init_biases`` computes them (same values, bit for bit).
        smoothed = torch.from_numpy(counts).float() + prior  # (I, K)
        self.rating_bias.copy_(torch.log(smoothed / smoothed.sum(1, keepdim=True)))
        raters = torch.from_numpy(np.bincount(items, minlength=n_items)).float()  # (I,)
        p = (raters / max(rows.shape[0], 1)).clamp(1e-4, 1 - 1e-4)
        self.rated_bias.copy_(torch.log(p / (1 - p)))

    def split_visible(self, bins: Tensor) -> tuple[Tensor, Tensor]:
        """Dense states (B, I) in 0..K -> one-hot ratings (B, I, K) and rated indicator (B, I)."""
        onehot = F.one_hot(bins, self.config.n_ratings + 1)[..., 1:].float()  # (B, I, K)
        return onehot, (bins > 0).float()

    def hidden_input(self, onehot: Tensor, rated: Tensor) -> Tensor:
        """x = b_h + sum_ik v_ik W_ik (+ sum_i r_i D_i), shape (B, H)."""
        b, i, k = onehot.shape
        x = onehot.reshape(b, i * k) @ self.rating_weight.reshape(i * k, -1)  # (B, H)
        if self.config.model_rated or self.config.conditional:
            x = x + rated @ self.rated_weight
        return x + self.hidden_bias

    def hidden_probs(self, onehot: Tensor, rated: Tensor) -> Tensor:
        return torch.sigmoid(self.hidden_input(onehot, rated))  # (B, H)

    def rating_logits(self, h: Tensor) -> Tensor:
        """Logits of the rated states, ``c_i + b_ik + h (D_i + W_ik)``, shape (B, I, K)."""
        i, k, n_h = self.rating_weight.shape
        h = h * (1 - self.config.hidden_dropout)
        logits = (h @ self.rating_weight.reshape(i * k, n_h).T).reshape(-1, i, k)  # (B, I, K)
        logits = logits + self.rating_bias
        if self.config.model_rated:
            logits = logits + (h @ self.rated_weight.T + self.rated_bias).unsqueeze(-1)
        return logits

    def visible_probs(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """p(v_ik = 1 | h) (B, I, K) and p(rated_i | h) (B, I).

        With ``model_rated`` the K rated states compete with "unrated" (logit 0); without it the
        softmax runs over the K ratings only and p(rated) is 1 (the item is assumed rated).
        """
        logits = self.rating_logits(h)  # (B, I, K)
        if not self.config.model_rated:
            probs = torch.softmax(logits, -1)
            return probs, torch.ones_like(probs[..., 0])
        zeros = torch.zeros_like(logits[..., :1])
        probs = torch.softmax(torch.cat([zeros, logits], -1), -1)  # (B, I, K+1)
        return probs[..., 1:], 1 - probs[..., 0]

    def free_energy(self, onehot: Tensor, rated: Tensor) -> Tensor:
        """F(v) = -sum v_ik b_ik - sum r_i c_i - sum_j softplus(x_j), shape (B,)."""
        visible = (onehot * self.rating_bias).sum((1, 2))  # (B,)
        if self.config.model_rated:
            visible = visible + rated @ self.rated_bias
        return -visible - F.softplus(self.hidden_input(onehot, rated)).sum(-1)

    def hidden_input_sparse(self, items: Tensor, states: Tensor, offsets: Tensor) -> Tensor:
        """x for B users given as their rated (item, value) pairs in CSR layout: ``items`` and
        ``states`` (nnz,) with values 1..K, ``offsets`` (B,) where each user's pairs start.

        Same as ``hidden_input`` on the dense one-hot, at O(nnz H) instead of O(B I K H).
        """
        k = self.config.n_ratings
        flat = self.rating_weight.reshape(-1, self.config.n_hidden)  # (I*K, H)
        x = F.embedding_bag(items * k + states - 1, flat, offsets, mode="sum")  # (B, H)
        if self.config.model_rated or self.config.conditional:
            x = x + F.embedding_bag(items, self.rated_weight, offsets, mode="sum")
        return x + self.hidden_bias

    def free_energy_sparse(self, batch: RatedBatch) -> Tensor:
        """``free_energy`` of users given as rated triples, (B,), at O(nnz H)."""
        slots = batch.items * self.config.n_ratings + batch.values - 1  # (nnz,)
        visible = self.rating_bias.reshape(-1)[slots]  # (nnz,)
        if self.config.model_rated:
            visible = visible + self.rated_bias[batch.items]
        per_user = torch.zeros(batch.n_users, dtype=visible.dtype, device=visible.device)
        per_user.index_add_(0, batch.owner, visible)
        x = self.hidden_input_sparse(batch.items, batch.values, batch.offsets)
        return -per_user - F.softplus(x).sum(-1)

    def fold_in_hidden_input(self, x: Tensor, counts: Tensor) -> Tensor:
        """The fold-in's hidden input from the up-pass ``x`` (B, H) of users with ``counts`` (B,)
        ratings: the evidence x - b_h scaled by max(1, reference / n).

        Why (bench/results/coldstart.md): the hidden biases are learnt for training users who
        rate about a hundred items; the evidence of 5 ratings is a twentieth of that, the
        hiddens stay near their bias-driven average and the down-pass returns the popular items
        (nDCG@10 at popularity's level for held-out users given 5 ratings). Scaled to the
        weight of a typical training user's evidence, the same ratings personalise the answer.
        """
        reference = self.config.fold_in.reference
        if not reference:
            return x
        scale = (reference / counts.to(x.dtype).clamp_min(1.0)).clamp_min(1.0)  # (B,)
        return (x - self.hidden_bias) * scale.unsqueeze(-1) + self.hidden_bias

    def fold_in_hidden_probs(self, bins: Tensor) -> Tensor:
        """p(h | v) at fold-in for dense states (B, I), with ``fold_in_hidden_input``."""
        onehot, rated = self.split_visible(bins)
        x = self.hidden_input(onehot, rated)
        return torch.sigmoid(self.fold_in_hidden_input(x, (bins > 0).sum(-1)))  # (B, H)

    def fold_in_outputs(self, h: Tensor, what: str = "both") -> tuple[Tensor | None, Tensor]:
        """The down-pass for inference: E[r | rated, h] and p(rated | h), each (B, I).

        Works in a (K, B, I) layout so the reductions over the K values run over whole
        (B, I) slabs. ``what="p_rated"`` skips E[r] (returned as None).
        """
        k_values = self.config.n_ratings
        h = h * (1 - self.config.hidden_dropout)  # expected activation under dropout
        weight = self.rating_weight.permute(1, 0, 2)  # (K, I, H)
        logits = torch.matmul(h, weight.transpose(1, 2))  # (K, B, I)
        logits += self.rating_bias.T.unsqueeze(1)  # + b_ik
        expected = None
        if what != "p_rated":
            values = torch.arange(1, k_values + 1, device=h.device, dtype=h.dtype)
            probs = torch.softmax(logits, 0)  # (K, B, I): p(k | rated, h)
            expected = torch.tensordot(values, probs, dims=1)  # (B, I)
        if not self.config.model_rated:
            return expected, torch.ones_like(logits[0])
        rated_logit = h @ self.rated_weight.T + self.rated_bias  # (B, I): c_i + D_i h
        # p(rated | h) = 1 - p(unrated) = sigma(c_i + D_i h + logsumexp_k (b_ik + W_ik h)).
        return expected, torch.sigmoid(rated_logit + torch.logsumexp(logits, 0))

    def score_from_outputs(self, expected: Tensor | None, p_rated: Tensor) -> Tensor:
        if self.config.ranking_score == "p_rated":
            return p_rated
        assert expected is not None
        return expected if self.config.ranking_score == "expected_rating" else p_rated * expected

    @torch.inference_mode()
    def predict(self, bins: Tensor) -> tuple[Tensor, Tensor]:
        """Fold-in by one mean-field up-pass and down-pass (the paper's prediction, eq. 7), the
        up-pass's evidence scaled for users with few ratings (``fold_in_hidden_input``).

        Returns E[r | rated] = sum_k k p(v_ik = 1 | h, rated) (B, I) and p(rated | h) (B, I).
        """
        expected, p_rated = self.fold_in_outputs(self.fold_in_hidden_probs(bins))
        assert expected is not None
        return expected, p_rated

    @torch.inference_mode()
    def score(self, bins: Tensor) -> Tensor:
        """The ranking score of ``config.ranking_score`` for every item, shape (B, I)."""
        return self.predict_and_score(bins)[1]

    @torch.inference_mode()
    def predict_and_score(self, bins: Tensor) -> tuple[Tensor, Tensor]:
        """E[r | rated] and the ranking score from one fold-in pass, each (B, I)."""
        expected, p_rated = self.predict(bins)
        return expected, self.score_from_outputs(expected, p_rated)

    def item_embeddings(self) -> Tensor:
        """Each item's weights to the hiddens: D_i + mean_k W_ik, shape (I, H)."""
        emb = self.rating_weight.mean(1)
        used = self.config.model_rated or self.config.conditional
        return emb + self.rated_weight if used else emb


@dataclass(frozen=True)
class RatedBatch:
    """Users' ratings as flat (user, item, value) triples, CSR order: the sparse form that the
    up-pass (``RatingRBM.hidden_input_sparse``) and sparse CD read.

    owner, items, values: (nnz,) row in the batch, item index, value 1..K; offsets (B,): where
    each user's triples start (for ``embedding_bag``); n_users B and n_items I.
    """

    owner: Tensor
    items: Tensor
    values: Tensor
    offsets: Tensor
    n_users: int
    n_items: int

    @classmethod
    def from_dense(cls, bins: Tensor) -> RatedBatch:
        """From dense states (B, I) in 0..K, 0 = unrated."""
        owner, items = torch.nonzero(bins, as_tuple=True)  # row-major: grouped by user
        counts = torch.bincount(owner, minlength=bins.shape[0])
        return cls(
            owner=owner,
            items=items,
            values=bins[owner, items],
            offsets=torch.cumsum(counts, 0) - counts,
            n_users=bins.shape[0],
            n_items=bins.shape[1],
        )

    @classmethod
    def from_rows(cls, rows: sp.csr_matrix, n_ratings: int, device: torch.device) -> RatedBatch:
        """From CSR rating rows (B, I); stored values <= 0 are not ratings. ``rows`` is not
        changed."""
        rows = sp.csr_matrix(rows, copy=True)
        rows.data = np.where(rows.data > 0, rows.data, 0)
        rows.eliminate_zeros()
        rows.sort_indices()
        counts = np.diff(rows.indptr)
        values = bin_ratings(torch.from_numpy(rows.data.astype(np.float32)), n_ratings)
        return cls(
            owner=torch.from_numpy(np.repeat(np.arange(len(counts)), counts)).to(device),
            items=torch.from_numpy(rows.indices.astype(np.int64)).to(device),
            values=values.to(device),
            offsets=torch.from_numpy(rows.indptr[:-1].astype(np.int64)).to(device),
            n_users=rows.shape[0],
            n_items=rows.shape[1],
        )


def dense_states(rows: sp.csr_matrix, n_ratings: int, device: torch.device | str) -> Tensor:
    """Densify one batch of CSR rating rows (B, I) into softmax states (B, I), 0 = unrated.

    Only one batch is ever dense, so memory stays bounded on large catalogues.
    """
    dense = torch.from_numpy(np.asarray(rows.toarray(), dtype=np.float32)).to(device)
    return bin_ratings(dense, n_ratings)


# Largest (K, B, I) block a fold-in pass builds at once (float32: 128 MiB; its softmax takes
# about as much again), so a batch of users over a huge catalogue stays bounded.
MAX_BLOCK_ELEMENTS = 2**25


def rows_per_batch(batch_size: int, n_items: int, n_ratings: int) -> int:
    """``batch_size``, or fewer rows where (K, B, I) would pass ``MAX_BLOCK_ELEMENTS``."""
    return max(1, min(batch_size, MAX_BLOCK_ELEMENTS // max(n_items * n_ratings, 1)))


@torch.inference_mode()
def predict_rows(
    model: RatingRBM, rows: sp.csr_matrix, what: str = "score", batch_size: int = 1024
) -> np.ndarray:
    """Fold in users from CSR rows (B, I) a batch at a time: ``score``, ``rating`` or
    ``p_rated`` for every item, as float32 numpy (B, I) on the CPU.

    The up-pass reads the sparse ratings directly (``hidden_input_sparse``); only the (B, I)
    outputs of one batch are ever dense.
    """
    if what not in ("score", "rating", "p_rated"):
        raise ValueError(f"what must be score, rating or p_rated, got {what!r}")
    device = model.rating_weight.device
    rows = sp.csr_matrix(rows)
    out = np.empty(rows.shape, dtype=np.float32)
    batch_size = rows_per_batch(batch_size, rows.shape[1], model.config.n_ratings)
    for start in range(0, rows.shape[0], batch_size):
        v = RatedBatch.from_rows(rows[start : start + batch_size], model.config.n_ratings, device)
        x = model.hidden_input_sparse(v.items, v.values, v.offsets)  # (B, H)
        counts = torch.bincount(v.owner, minlength=v.n_users)  # (B,)
        h = torch.sigmoid(model.fold_in_hidden_input(x, counts))
        need = (
            "p_rated"
            if what == "p_rated" or (what == "score" and model.config.ranking_score == "p_rated")
            else "both"
        )
        expected, p_rated = model.fold_in_outputs(h, need)
        if what == "score":
            result = model.score_from_outputs(expected, p_rated)
        elif what == "rating":
            assert expected is not None
            result = expected
        else:
            result = p_rated
        out[start : start + batch_size] = result.float().cpu().numpy()
    return out
