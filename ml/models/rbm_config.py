"""The rating RBM's configuration: the architecture, and one section per other concern.

``RBMConfig`` holds what the model IS (its units, what it models, how it ranks and which model
predicts ratings); ``training`` how contrastive divergence fits it; ``item_rbm`` the companion
item-based rating RBM that predicts ratings (``ml.models.rbm_ratings``); ``fold_in`` how a
user's ratings are folded in at serving time. A manifest stores the sections as nested objects;
parameters name a section's setting as ``"training.epochs"`` (or ``{"training": {...}}``).
Manifests and parameters from before the split used flat names (``epochs``,
``item_rbm_hidden``, ``fold_in_prior``); ``LEGACY_KEYS`` maps each to its new place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

from ml.models.config_keys import nest_sections

RANKING_SCORES = ("p_rated", "expected_rating", "p_rated_x_rating")
RATING_MODELS = ("item_rbm", "joint")


@dataclass(frozen=True)
class RBMTraining:
    """Contrastive divergence for a rating RBM.

    learning_rate, momentum, final_momentum (after ``momentum_switch_epoch``), weight_decay:
        the CD update (mean gradient over a mini-batch of ``batch_size`` users).
    final_lr_fraction: the learning rate falls linearly from ``learning_rate`` in the first epoch
        to this fraction of it in the last (1.0: constant), so training settles at the end.
    rating_lr_scale: multiplies the learning rate of the rating-value parameters (W, b): each
        (item, value) pair is seen by few users per mini-batch, so their mean gradients are
        smaller than those of the rated indicators.
    per_item_rate: average the rating-value gradients of each item over the mini-batch's users
        who rated it, not over all users of the batch (only with ``model_rated=False``).
    cd_k_max, cd_k_step_epochs: k of CD-k rises 1, 3, 5, ... every ``cd_k_step_epochs`` epochs,
        capped at ``cd_k_max`` (the paper's schedule: "T" grows during learning).
    persistent: persistent CD (PCD) chains instead of chains restarted at the data.
    epochs: passes over the training users (chosen on the validation pair).
    conditional_weight: with ``model_rated``, add this weight times the CD gradient of the
        conditional log-likelihood log p(ratings | which items are rated) to the joint one (a
        hybrid objective; the conditional chain resamples only the values of rated items).
    sampled_cd_min_items: catalogues of at least this many items train the joint model by
        sampled CD (``ml.training.rbm_sampled``: the chain visits the batch's rated items plus
        a sample of the others), smaller ones by exact CD over every item. The default keeps
        MovieLens-100K/1M (1,682/3,706 items) exact, where a batch of 32 users rates over half
        the catalogue anyway; 0 always samples.
    sampled_cd_negatives: with sampled CD, unrated items drawn per batch, as a multiple of the
        number of items the batch's users rated.
    epochs_ratings_per_visible: the ratings per visible unit of the data ``epochs`` was tuned on
        (MovieLens-100K's train fold: 44.8 per item). An epoch updates each unit once per
        rating it has, so on denser data the run is shortened in proportion, its schedules with
        it (``scaled_to``); never lengthened. 0: off.
    """

    learning_rate: float = 0.1
    final_lr_fraction: float = 0.1
    rating_lr_scale: float = 1.0
    per_item_rate: bool = False
    momentum: float = 0.5
    final_momentum: float = 0.5
    momentum_switch_epoch: int = 5
    weight_decay: float = 1e-3
    batch_size: int = 32
    cd_k_max: int = 3
    cd_k_step_epochs: int = 5
    persistent: bool = False
    epochs: int = 20
    conditional_weight: float = 0.0
    sampled_cd_min_items: int = 5000
    sampled_cd_negatives: float = 1.0
    epochs_ratings_per_visible: float = 45.0

    def __post_init__(self) -> None:
        if not 0 < self.final_lr_fraction <= 1:
            raise ValueError("final_lr_fraction must be in (0, 1]")
        if self.conditional_weight < 0:
            raise ValueError("conditional_weight must be >= 0")
        if self.rating_lr_scale <= 0:
            raise ValueError("rating_lr_scale must be positive")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.batch_size < 1:
            raise ValueError("need learning_rate > 0, weight_decay >= 0, batch_size >= 1")
        if not (0 <= self.momentum < 1 and 0 <= self.final_momentum < 1):
            raise ValueError("momentum must be in [0, 1)")
        if self.cd_k_max < 1 or self.cd_k_step_epochs < 1 or self.epochs < 1:
            raise ValueError("need cd_k_max >= 1, cd_k_step_epochs >= 1, epochs >= 1")
        if self.sampled_cd_min_items < 0 or not self.sampled_cd_negatives >= 0:
            raise ValueError("need sampled_cd_min_items >= 0 and sampled_cd_negatives >= 0")
        if not self.epochs_ratings_per_visible >= 0:
            raise ValueError("the epochs' ratings per visible unit must be >= 0")

    def cd_k(self, epoch: int) -> int:
        """k of CD-k at ``epoch`` (1-based): 1, 3, 5, ... every ``cd_k_step_epochs`` epochs."""
        return min(self.cd_k_max, 1 + 2 * ((epoch - 1) // self.cd_k_step_epochs))

    def learning_rate_at(self, epoch: int) -> float:
        """Linear decay from ``learning_rate`` (epoch 1) to ``final_lr_fraction`` of it."""
        progress = (epoch - 1) / max(self.epochs - 1, 1)
        return self.learning_rate * (1 - (1 - self.final_lr_fraction) * min(progress, 1.0))

    def momentum_at(self, epoch: int) -> float:
        return self.momentum if epoch <= self.momentum_switch_epoch else self.final_momentum

    def scaled_to(self, n_ratings: int, n_visible: int) -> RBMTraining:
        """These settings for data with ``n_ratings`` over ``n_visible`` visible units:
        ``epochs`` times ``epochs_ratings_per_visible`` / (n_ratings / n_visible), rounded up,
        at most ``epochs``; the CD-k and momentum schedules shrink with it. The result has the
        reference off (0), so a refit that reuses it runs the same epochs.

        Why: one epoch updates each visible unit once per rating it has, so MovieLens-1M (202
        ratings per item in its train fold) gives the ranking model's weights 4.5x the updates
        per epoch that MovieLens-100K (44.8) does; 20 epochs there cost 20 minutes for no gain
        on the test fold (bench/results/rbm_scale.md).
        """
        reference = self.epochs_ratings_per_visible
        if not reference or n_ratings <= 0 or n_visible <= 0:
            return self
        epochs = min(self.epochs, math.ceil(self.epochs * reference * n_visible / n_ratings))
        if epochs >= self.epochs:
            return replace(self, epochs_ratings_per_visible=0.0)
        fraction = epochs / self.epochs
        return replace(
            self,
            epochs=epochs,
            cd_k_step_epochs=max(1, round(self.cd_k_step_epochs * fraction)),
            momentum_switch_epoch=max(1, round(self.momentum_switch_epoch * fraction)),
            epochs_ratings_per_visible=0.0,
        )


@dataclass(frozen=True)
class ItemRBMSettings:
    """The companion item-based rating RBM (``rating_model="item_rbm"``): its hidden units and
    the CD settings that differ from the ranking model's (the rest are ``training``'s, without
    the rated units, dropout or persistent chains). ``epochs_ratings_per_visible`` is per user,
    its visible unit (MovieLens-100K's train fold: 79.9)."""

    n_hidden: int = 200
    learning_rate: float = 0.3
    weight_decay: float = 3e-3
    epochs: int = 20
    epochs_ratings_per_visible: float = 80.0

    def __post_init__(self) -> None:
        if min(self.n_hidden, self.epochs) < 1:
            raise ValueError("need item_rbm.n_hidden and item_rbm.epochs >= 1")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("need item_rbm.learning_rate > 0 and item_rbm.weight_decay >= 0")
        if not self.epochs_ratings_per_visible >= 0:
            raise ValueError("item_rbm.epochs_ratings_per_visible must be >= 0")


@dataclass(frozen=True)
class FoldInSettings:
    """How a user's ratings are folded in at serving time.

    prior, steps: strength of the rating fold-in's Gaussian prior on a user's softmax unit and
        its L-BFGS iterations (``ml.models.rbm_ratings.RatingFoldIn``).
    reference: a user with n < this many ratings has the evidence of their ratings in the hidden
        input (x - b_h) scaled by reference / n, so the hiddens of a user with 5 ratings are
        driven as firmly as those of a typical training user (the cold-start fix, see
        ``RatingRBM.fold_in_hidden_input``). ``None``: the trainer sets it to the median number
        of ratings of its training users; 0 turns it off (checkpoints from before it load with
        ``None`` and fold in unscaled). Never used by CD.
    """

    prior: float = 5.0
    steps: int = 25
    reference: float | None = None

    def __post_init__(self) -> None:
        if self.prior <= 0 or self.steps < 1:
            raise ValueError("need fold_in.prior > 0 and fold_in.steps >= 1")
        if self.reference is not None and not self.reference >= 0:
            raise ValueError("fold_in.reference must be >= 0 or null")


SECTIONS: dict[str, type] = {
    "training": RBMTraining,
    "item_rbm": ItemRBMSettings,
    "fold_in": FoldInSettings,
}


def _legacy_keys() -> dict[str, str]:
    """Each flat name of the settings before the split -> its ``section.name``."""
    keys = {f.name: f"training.{f.name}" for f in fields(RBMTraining)}
    keys.update({f"item_rbm_{f.name}": f"item_rbm.{f.name}" for f in fields(ItemRBMSettings)})
    keys["item_rbm_hidden"] = keys.pop("item_rbm_n_hidden")
    keys.update({f"fold_in_{f.name}": f"fold_in.{f.name}" for f in fields(FoldInSettings)})
    return keys


@dataclass(frozen=True)
class RBMConfig:
    """The rating RBM of Salakhutdinov, Mnih & Hinton (ICML 2007), with a rated/unrated visible.

    n_items: items in the vocabulary (set by the trainer from the data).
    n_hidden: binary hidden units.
    n_ratings: K, softmax states per item (ratings are binned to 1..K).
    model_rated: also model WHICH items a user rates (one binary "rated" visible per item, see
        ``ml.models.rbm``); False gives the paper's plain model where unrated items are absent.
    conditional: with ``model_rated=False``, the rated indicators still feed the hiddens through
        D (the paper's conditional RBM, sec. 4), without being modelled.
    ranking_score: what ranks items: ``p_rated`` (probability the user rates the item),
        ``expected_rating`` (E[r], the paper's prediction) or ``p_rated_x_rating`` (their product).
    rating_model: what predicts ratings (E[r]): ``item_rbm``, a companion item-based rating RBM
        with users folded in as visible units (``ml.models.rbm_ratings``, settings in
        ``item_rbm``), or ``joint``, this model's own E[r | rated, h].
    hidden_dropout: probability of dropping each hidden unit for a user in a CD update (dropout
        RBM, Srivastava et al., JMLR 2014, sec. 8); at inference the down-pass uses the expected
        hidden activation, h times the keep probability.
    training, item_rbm, fold_in: the sections above.
    """

    LEGACY_KEYS: ClassVar[dict[str, str]] = _legacy_keys()

    n_items: int = 0
    n_hidden: int = 200
    n_ratings: int = 5
    model_rated: bool = True
    conditional: bool = False
    ranking_score: str = "p_rated"
    rating_model: str = "item_rbm"
    hidden_dropout: float = 0.4
    training: RBMTraining = field(default_factory=RBMTraining)
    item_rbm: ItemRBMSettings = field(default_factory=ItemRBMSettings)
    fold_in: FoldInSettings = field(default_factory=FoldInSettings)

    def __post_init__(self) -> None:
        if self.n_items < 0 or self.n_hidden <= 0 or self.n_ratings < 2:
            raise ValueError("need n_items >= 0, n_hidden > 0 and n_ratings >= 2")
        if self.ranking_score not in RANKING_SCORES:
            raise ValueError(f"ranking_score must be one of {RANKING_SCORES}")
        if self.ranking_score != "expected_rating" and not self.model_rated:
            raise ValueError(f"ranking_score={self.ranking_score!r} needs model_rated=true")
        if self.training.per_item_rate and self.model_rated:
            raise ValueError("training.per_item_rate needs model_rated=false")
        if self.rating_model not in RATING_MODELS:
            raise ValueError(f"rating_model must be one of {RATING_MODELS}")
        if not 0 <= self.hidden_dropout < 1:
            raise ValueError("hidden_dropout must be in [0, 1)")
        for name, section in SECTIONS.items():
            if not isinstance(getattr(self, name), section):
                raise ValueError(f"{name} must be a {section.__name__}")

    def with_training(self, **changes: Any) -> RBMConfig:
        """This configuration with some ``training`` settings changed."""
        return replace(self, training=replace(self.training, **changes))

    def scaled_to(self, n_ratings: int, n_visible: int) -> RBMConfig:
        """This configuration with ``training.scaled_to(n_ratings, n_visible)``."""
        return replace(self, training=self.training.scaled_to(n_ratings, n_visible))

    def item_rbm_config(self) -> RBMConfig:
        """The companion item-based rating RBM's configuration (``rating_model="item_rbm"``)."""
        companion = self.item_rbm
        return RBMConfig(
            n_items=0,
            n_hidden=companion.n_hidden,
            n_ratings=self.n_ratings,
            model_rated=False,
            conditional=False,
            ranking_score="expected_rating",
            rating_model="joint",
            hidden_dropout=0.0,
            training=replace(
                self.training,
                learning_rate=companion.learning_rate,
                weight_decay=companion.weight_decay,
                epochs=companion.epochs,
                persistent=False,
                conditional_weight=0.0,
                epochs_ratings_per_visible=companion.epochs_ratings_per_visible,
            ),
            item_rbm=companion,
            fold_in=replace(self.fold_in, reference=0.0),
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest's form: the sections as nested objects."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RBMConfig:
        """From a manifest's config or parameters: nested sections, ``section.name`` keys or the
        flat names from before the split. Keys this version does not know are dropped, so a
        manifest written by a later version with an extra setting still loads."""
        nested = nest_sections(values, cls.LEGACY_KEYS)
        top = {f.name for f in fields(cls)} - set(SECTIONS)
        kwargs: dict[str, Any] = {k: v for k, v in nested.items() if k in top}
        for name, section in SECTIONS.items():
            given = nested.get(name, {})
            if isinstance(given, section):
                kwargs[name] = given
                continue
            if not isinstance(given, Mapping):
                raise ValueError(f"{name} must be an object of settings, got {given!r}")
            known = {f.name for f in fields(section)}
            kwargs[name] = section(**{k: v for k, v in given.items() if k in known})
        return cls(**kwargs)
