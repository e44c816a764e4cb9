"""Rating prediction by an item-based rating RBM, users folded in as new visible units.

Why a second RBM: the user-based model (one softmax visible per item, users as the cases)
predicts ratings at item-mean level on MovieLens-100K (validation RMSE 1.02; 0.978 at best
without the rated units): 943 users are few cases for W[item, k, hidden]. Transposed, the same
``RatingRBM`` has the items as cases and one K-way softmax visible per user (the item-based RBM
of Georgiev & Nakov, ICML 2013; the trade I-AutoRec makes over U-AutoRec) and reaches
validation RMSE 0.923 with users folded in (bench/results/rbm.md; test fold 0.916).

Prediction of r_ui: item i's hidden code ``h_i = p(h | item i's training ratings)`` (one
up-pass, stored with the checkpoint), then ``p(v_u = k | h_i) = softmax_k(W_uk h_i + b_uk)`` and
``E[r] = sum_k k p``. Fold-in: user u's softmax unit (W_u (K, H), b_u (K,)) is fitted to the
user's ratings when asked, the MAP estimate of ``prod_i p(v_u = r_ui | h_i)`` under a Gaussian
prior centred on the trained users' mean unit, by L-BFGS. New users and changed ratings need no
retraining, and for a training user it beats the trained unit itself (validation RMSE 0.923 vs
0.928): the prior shrinks users with few ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ml.models.rbm import RatedBatch, RatingRBM

TENSOR_PREFIX = "ratings."  # the fold-in predictor's tensors inside an rbm checkpoint
FOLD_IN_GROUP = 32  # users per padded group in the fold-in's likelihood (``_padded_groups``)


@dataclass(frozen=True)
class _RatingGroup:
    """Users of one padded group: their rows in the batch (g,), the codes of the items they
    rated (g, L, H) (zeros past a user's last rating), the rated values 0..K-1 (g, L, 1) and a
    mask of the real pairs (g, L)."""

    users: Tensor
    codes: Tensor
    values: Tensor
    mask: Tensor


class RatingFoldIn(nn.Module):
    """Item codes (I, H) and the prior unit (K, H), (K,) of an item-based rating RBM."""

    def __init__(
        self,
        item_codes: Tensor,
        weight_prior: Tensor,
        bias_prior: Tensor,
        *,
        prior_strength: float = 5.0,
        steps: int = 20,
    ) -> None:
        super().__init__()
        if item_codes.ndim != 2 or weight_prior.shape != (bias_prior.shape[0], item_codes.shape[1]):
            raise ValueError("need item_codes (I, H), weight_prior (K, H) and bias_prior (K,)")
        if prior_strength <= 0 or steps < 1:
            raise ValueError("need prior_strength > 0 and steps >= 1")
        self.item_codes = nn.Parameter(item_codes.float(), requires_grad=False)  # (I, H)
        self.weight_prior = nn.Parameter(weight_prior.float(), requires_grad=False)  # (K, H)
        self.bias_prior = nn.Parameter(bias_prior.float(), requires_grad=False)  # (K,)
        self.prior_strength = prior_strength
        self.steps = steps

    @classmethod
    @torch.no_grad()
    def from_item_rbm(
        cls, model: RatingRBM, item_rows: sp.csr_matrix, *, prior_strength: float, steps: int
    ) -> RatingFoldIn:
        """From an RBM trained on the transposed matrix and its training rows (I, U)."""
        items = RatedBatch.from_rows(item_rows, model.config.n_ratings, model.rating_weight.device)
        codes = torch.sigmoid(model.hidden_input_sparse(items.items, items.values, items.offsets))
        return cls(
            codes.cpu(),  # (I, H)
            model.rating_weight.mean(0).cpu(),  # (K, H): the trained users' mean unit
            model.rating_bias.mean(0).cpu(),  # (K,)
            prior_strength=prior_strength,
            steps=steps,
        )

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, Tensor], *, prior_strength: float, steps: int
    ) -> RatingFoldIn:
        """Rebuild from a checkpoint's ``TENSOR_PREFIX`` tensors (KeyError if one is missing)."""
        return cls(
            tensors[TENSOR_PREFIX + "item_codes"],
            tensors[TENSOR_PREFIX + "weight_prior"],
            tensors[TENSOR_PREFIX + "bias_prior"],
            prior_strength=prior_strength,
            steps=steps,
        )

    @property
    def n_ratings(self) -> int:
        return int(self.bias_prior.shape[0])

    def _logits(self, weight: Tensor, bias: Tensor) -> Tensor:
        """Logits of every user's K values for every item, (B, K, I)."""
        return torch.einsum("bkh,ih->bki", weight, self.item_codes) + bias.unsqueeze(-1)

    def fold_in(self, bins: Tensor) -> tuple[Tensor, Tensor]:
        """Fit the softmax units of users with states ``bins`` (B, I) in 0..K (0 = unrated):
        W (B, K, H) and b (B, K). A user without ratings keeps the prior unit."""
        return self.fold_in_rated(RatedBatch.from_dense(bins))

    def _padded_groups(self, batch: RatedBatch) -> list[_RatingGroup]:
        """The batch's rated pairs as groups of users of similar rating counts, each padded to
        its longest user: one batched matrix product per group gives every pair's logits."""
        counts = torch.bincount(batch.owner, minlength=batch.n_users)  # (B,)
        order = torch.argsort(counts, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order), device=order.device)
        slot_of_pair = rank[batch.owner]  # (nnz,) the owner's place in ``order``
        position = torch.arange(len(batch.owner), device=counts.device) - batch.offsets[batch.owner]
        target = batch.values - 1
        groups = []
        for start in range(0, batch.n_users, FOLD_IN_GROUP):
            users = order[start : start + FOLD_IN_GROUP]
            length = int(counts[users].max())
            if length == 0:  # users without ratings keep the prior unit
                continue
            pairs = torch.nonzero(
                (slot_of_pair >= start) & (slot_of_pair < start + len(users))
            ).squeeze(1)
            row, col = slot_of_pair[pairs] - start, position[pairs]
            codes = self.item_codes.new_zeros(len(users), length, self.item_codes.shape[1])
            codes[row, col] = self.item_codes[batch.items[pairs]]
            values = torch.zeros(len(users), length, 1, dtype=torch.long, device=codes.device)
            values[row, col, 0] = target[pairs]
            mask = codes.new_zeros(len(users), length)
            mask[row, col] = 1.0
            groups.append(_RatingGroup(users, codes, values, mask))
        return groups

    @staticmethod
    def _negative_log_likelihood(
        weight: Tensor, bias: Tensor, groups: list[_RatingGroup]
    ) -> Tensor:
        """-sum over the rated pairs of log p(v_u = r_ui | h_i), for units W (B, K, H), b (B, K)."""
        return RatingFoldIn._likelihood_and_gradients(weight, bias, groups, gradients=False)[0]

    @staticmethod
    @torch.no_grad()
    def _likelihood_and_gradients(
        weight: Tensor, bias: Tensor, groups: list[_RatingGroup], *, gradients: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``_negative_log_likelihood`` and its gradients for W (B, K, H) and b (B, K).

        Written out rather than by autograd: d(-log softmax)/d logits is p - onehot(r), so
        each group's weight gradient is one (g, K, L) x (g, L, H) product, the shape the
        forward product has. Autograd's backward of the forward product takes a transposed
        (g, H, L) x (g, L, K) product, 4x the forward's time on one CPU thread, and was most of
        the fold-in's cost. A user is in at most one group, so its gradient rows are written,
        not accumulated; users without ratings get zeros."""
        nll = weight.new_zeros(())
        grad_weight = torch.zeros_like(weight) if gradients else weight.new_empty(0)
        grad_bias = torch.zeros_like(bias) if gradients else bias.new_empty(0)
        for group in groups:
            logits = torch.baddbmm(
                bias[group.users].unsqueeze(1),  # (g, 1, K)
                group.codes,  # (g, L, H)
                weight[group.users].transpose(1, 2),  # (g, H, K)
            )  # (g, L, K)
            log_p = F.log_softmax(logits, -1)
            nll -= (log_p.gather(2, group.values).squeeze(2) * group.mask).sum()
            if not gradients:
                continue
            residual = log_p.exp_()  # p, then p - onehot(r) on the real pairs, 0 on padding
            residual.scatter_add_(2, group.values, residual.new_full(group.values.shape, -1.0))
            residual.mul_(group.mask.unsqueeze(-1))
            grad_weight[group.users] = torch.bmm(residual.transpose(1, 2), group.codes)
            grad_bias[group.users] = residual.sum(1)
        return nll, grad_weight, grad_bias

    def fold_in_rated(self, batch: RatedBatch) -> tuple[Tensor, Tensor]:
        """``fold_in`` from the users' rated triples: the likelihood reads only the rated pairs,
        so each L-BFGS evaluation costs O(nnz K H) rather than O(B K I H); the pairs are laid
        out per user (``_padded_groups``) so that cost is batched matrix products, not a
        gathered (nnz, K, H) copy of the users' weights per evaluation. The objective's
        gradients are written out (``_likelihood_and_gradients``), not taken by autograd."""
        groups = self._padded_groups(batch)
        n = batch.n_users
        weight = self.weight_prior.expand(n, -1, -1).clone()
        bias = self.bias_prior.expand(n, -1).clone()
        optimiser = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=self.steps, line_search_fn="strong_wolfe"
        )
        strength = self.prior_strength

        @torch.no_grad()
        def loss_fn() -> Tensor:
            nll, grad_weight, grad_bias = self._likelihood_and_gradients(weight, bias, groups)
            weight_offset = weight - self.weight_prior
            bias_offset = bias - self.bias_prior
            prior = (weight_offset**2).sum() + (bias_offset**2).sum()
            weight.grad = grad_weight.add_(weight_offset, alpha=strength)
            bias.grad = grad_bias.add_(bias_offset, alpha=strength)
            return nll + 0.5 * strength * prior

        optimiser.step(loss_fn)  # type: ignore[no-untyped-call]
        return weight.detach(), bias.detach()

    @torch.no_grad()
    def expected_ratings(self, weight: Tensor, bias: Tensor) -> Tensor:
        """E[r] = sum_k k p(v = k | h_i) for every item, (B, I)."""
        probs = torch.softmax(self._logits(weight, bias), 1)  # (B, K, I)
        values = torch.arange(1, self.n_ratings + 1, device=probs.device, dtype=probs.dtype)
        return torch.einsum("k,bki->bi", values, probs)

    def predict(self, rows: sp.csr_matrix, batch_size: int = 256) -> np.ndarray:
        """E[r] for every item of users given as CSR rating rows (B, I), float32 (B, I)."""
        device = self.item_codes.device
        rows = sp.csr_matrix(rows)
        out = np.empty(rows.shape, dtype=np.float32)
        for start in range(0, rows.shape[0], batch_size):
            batch = RatedBatch.from_rows(rows[start : start + batch_size], self.n_ratings, device)
            weight, bias = self.fold_in_rated(batch)
            out[start : start + batch_size] = self.expected_ratings(weight, bias).cpu().numpy()
        return out
