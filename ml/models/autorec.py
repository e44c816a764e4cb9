"""I-AutoRec: an item-based autoencoder for rating prediction.

Sedhain, Menon, Sanner and Xie, "AutoRec: Autoencoders Meet Collaborative Filtering", WWW 2015.
Each item is the vector of its ratings over the training users, r_i in R^U; the model
``h(r; theta) = g(V f(W r + mu) + b)`` with sigmoid ``f`` and identity ``g`` is trained on the
observed entries only: ``sum_i ||r_i - h(r_i)||^2_O + (lambda / 2) (||W||^2 + ||V||^2)`` (eq. 2).
The prediction of user u for item i is ``h(r_i)_u``.

Fold-in (what the service needs: users arrive with their ratings, not an index): a user's output
row ``(V_u, b_u)`` is a linear map of the item codes ``z_i = f(W r_i + mu)``; for a new ratings
row it is fitted by ridge regression on the codes of the items the user rated, with the same
lambda: the minimiser of the very objective above with the encoder held fixed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ml.models.config_keys import rename_legacy_keys


@dataclass(frozen=True)
class AutoRecConfig:
    """I-AutoRec settings (defaults chosen on the validation pair, see bench/)."""

    LEGACY_KEYS: ClassVar[dict[str, str]] = {"lr": "learning_rate", "hidden": "n_hidden"}

    n_users: int = 943  # input/output width: one unit per training user
    n_hidden: int = 500  # k, the code width (Sedhain et al. use 500)
    l2: float = 200.0  # lambda of eq. 2 (on W and V)
    learning_rate: float = 5e-4  # Adam
    batch_size: int = 64  # items per batch
    rating_min: float = 1.0  # predictions are clipped to the rating scale
    rating_max: float = 5.0
    fold_in_l2: float = 100.0  # ridge lambda for a new user's output row

    def __post_init__(self) -> None:
        for name in ("n_users", "n_hidden", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("l2", "fold_in_l2"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.rating_min >= self.rating_max:
            raise ValueError("rating_min must be below rating_max")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AutoRecConfig:
        """From a manifest's config, old key names included (``lr``, ``hidden``)."""
        return cls(**rename_legacy_keys(values, cls.LEGACY_KEYS))


class IAutoRec(nn.Module):
    def __init__(self, config: AutoRecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Linear(config.n_users, config.n_hidden)  # W, mu
        self.decoder = nn.Linear(config.n_hidden, config.n_users)  # V, b

    def encode(self, r: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(r))  # (B_items, k)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(r))  # (B_items, U)

    def loss(
        self, r: torch.Tensor, observed: torch.Tensor, reg_share: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, masked squared-error sum) of a batch of item vectors (B, U).

        ``reg_share`` is this batch's share of the epoch (B / I), so one epoch of batches adds
        the regulariser of eq. 2 exactly once.
        """
        err = ((self.forward(r) - r) * observed) ** 2  # (B, U)
        sse = err.sum()
        weights = (self.encoder.weight**2).sum() + (self.decoder.weight**2).sum()
        return sse + reg_share * 0.5 * self.config.l2 * weights, sse

    @torch.inference_mode()
    def item_codes(self, item_vectors: torch.Tensor) -> torch.Tensor:
        """(I, k) codes z_i of every item from its training ratings vector (I, U)."""
        return self.encode(item_vectors)


@torch.inference_mode()
def fold_in_rows(
    codes: torch.Tensor, user_rows: torch.Tensor, l2: float, rating_range: tuple[float, float]
) -> torch.Tensor:
    """Predicted ratings (B, I) for users given only their ratings rows (B, I), 0 = unrated.

    For each user, ridge-regress the observed ratings on ``[z_i, 1]`` of the rated items
    (the bias unpenalised), then predict ``[z_i, 1] @ beta`` for every item. A user with no
    ratings gets the mean item prediction of a zero row: the global bias of the codes' fit.
    """
    n_items, k = codes.shape
    design = torch.cat([codes, codes.new_ones(n_items, 1)], dim=1)  # (I, k+1)
    penalty = torch.full((k + 1,), float(l2), dtype=codes.dtype, device=codes.device)
    penalty[-1] = 1e-6  # keep the intercept (almost) free
    out = torch.empty(user_rows.shape, dtype=codes.dtype, device=codes.device)
    observed = user_rows != 0  # (B, I)
    for b in range(user_rows.shape[0]):
        idx = observed[b].nonzero(as_tuple=True)[0]
        if len(idx) == 0:
            out[b] = 0.5 * (rating_range[0] + rating_range[1])
            continue
        x = design[idx]  # (n_b, k+1)
        y = user_rows[b, idx].to(codes.dtype)  # (n_b,)
        gram = x.T @ x + torch.diag(penalty)  # (k+1, k+1)
        beta = torch.linalg.solve(gram, x.T @ y)  # (k+1,)
        out[b] = design @ beta
    return out.clamp(*rating_range)
