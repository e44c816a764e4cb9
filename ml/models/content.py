"""Content-based item representations: metadata features, a denoising autoencoder over them, and
the linear maps that carry content into a collaborative model's item space.

- :class:`ContentFeaturizer` turns an item's metadata (genres, release year, title and free-text
  tokens) into one fixed-width vector: a genre multi-hot, a one-hot of the release year's
  quantile bin plus the standardised year, and hashed bags of title and description tokens (the
  hashing trick: a token never seen in training still lands in a bucket, so a film added at run
  time is featurised like any other).
- :class:`ContentAutoencoder` is a small denoising autoencoder (Vincent et al. 2008) over those
  features; its bottleneck codes are the items' content representation (the dimensionality
  reduction of Hinton & Salakhutdinov 2006, on metadata instead of ratings).
- :func:`ridge` fits the closed-form map from content codes to a collaborative model's item
  vectors (here EASE's item columns, Steck 2019), trained on the items that have ratings; a cold
  item's mapped vector then scores like a collaborative item.
- :func:`content_scores` and :func:`hybrid_scores` are the two served scoring rules: a user's
  content profile against every item's code, and the collaborative score blended with the mapped
  content score by how many ratings each item has (weight n / (n + k)).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ml.models.config_keys import rename_legacy_keys

# Words that say nothing about a film; the hashed bags leave them out.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "to",
        "for",
        "with",
        "at",
        "by",
        "from",
        "is",
        "it",
        "its",
        "as",
        "or",
        "be",
        "this",
        "that",
        "la",
        "le",
        "les",
        "el",
        "il",
        "der",
        "die",
        "das",
        "de",
        "du",
        "des",
        "un",
        "une",
    ]
)
# Checkpoint tensors of the family (besides the autoencoder's weights).
CODES = "item_codes"
FEATURES = "item_features"
EASE_WEIGHTS = "ease_weights"
MAPPING = "mapping"
COUNTS = "item_counts"
WARM = "warm_index"
_TOKEN = re.compile(r"[a-z0-9]+")
_TITLE_YEAR = re.compile(r"\(\d{4}\)\s*$")


@dataclass(frozen=True)
class ItemMeta:
    """What the content model knows of an item: its metadata, never its ratings."""

    id: int
    title: str = ""
    year: int | None = None
    genres: tuple[str, ...] = ()
    description: str | None = None


def tokens(text: str | None) -> list[str]:
    """Lower-case alphanumeric words of two or more characters, stopwords left out."""
    if not text:
        return []
    words = _TOKEN.findall(text.lower())
    return [w for w in words if len(w) > 1 and w not in STOPWORDS]


def title_tokens(title: str) -> list[str]:
    """Tokens of a title without its trailing "(1995)" (the year has its own features)."""
    return tokens(_TITLE_YEAR.sub("", title or ""))


def bucket(token: str, size: int) -> int:
    """A stable hash bucket (crc32: the same in every process, unlike ``hash``)."""
    return zlib.crc32(token.encode("utf-8")) % size


@dataclass(frozen=True)
class ContentFeaturizer:
    """The fixed feature layout of one trained content model (stored in its checkpoint)."""

    genres: tuple[str, ...]
    year_edges: tuple[float, ...]  # inner quantile edges of the release years seen in training
    year_mean: float
    year_std: float
    title_buckets: int = 256
    text_buckets: int = 512

    @classmethod
    def fit(
        cls,
        items: Sequence[ItemMeta],
        *,
        year_bins: int = 10,
        title_buckets: int = 256,
        text_buckets: int = 512,
    ) -> ContentFeaturizer:
        genres = tuple(sorted({g for item in items for g in item.genres}))
        years = np.asarray([item.year for item in items if item.year is not None], np.float64)
        if len(years) == 0:
            years = np.zeros(1)
        quantiles = np.quantile(years, np.linspace(0, 1, year_bins + 1)[1:-1])
        return cls(
            genres=genres,
            year_edges=tuple(float(q) for q in np.unique(quantiles)),
            year_mean=float(years.mean()),
            year_std=float(max(years.std(), 1.0)),
            title_buckets=title_buckets,
            text_buckets=text_buckets,
        )

    @property
    def n_year(self) -> int:
        return len(self.year_edges) + 2  # bins, plus the standardised year

    @property
    def width(self) -> int:
        return len(self.genres) + self.n_year + self.title_buckets + self.text_buckets

    def feature_weights(self, genre: float, year: float, tokens: float) -> np.ndarray:
        """(F,) how much each feature counts in the autoencoder's loss, by block."""
        weights = np.full(self.width, tokens, np.float32)
        weights[: len(self.genres)] = genre
        weights[len(self.genres) : len(self.genres) + self.n_year] = year
        return weights

    def transform(self, items: Sequence[ItemMeta]) -> np.ndarray:
        """Features (N, F) in [0, 1] except the standardised year; unknown genres are ignored."""
        out = np.zeros((len(items), self.width), np.float32)
        genre_index = {g.casefold(): i for i, g in enumerate(self.genres)}
        year0 = len(self.genres)
        title0 = year0 + self.n_year
        text0 = title0 + self.title_buckets
        edges = np.asarray(self.year_edges)
        for row, item in enumerate(items):
            for genre in item.genres:
                index = genre_index.get(genre.casefold())
                if index is not None:
                    out[row, index] = 1.0
            if item.year is not None:
                out[row, year0 + int(np.searchsorted(edges, item.year, side="right"))] = 1.0
                z = (item.year - self.year_mean) / self.year_std
                out[row, title0 - 1] = float(np.clip(z, -3.0, 3.0))
            for token in title_tokens(item.title):
                out[row, title0 + bucket(token, self.title_buckets)] = 1.0
            for token in tokens(item.description):
                out[row, text0 + bucket(token, self.text_buckets)] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["genres"] = list(self.genres)
        values["year_edges"] = list(self.year_edges)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ContentFeaturizer:
        return cls(
            genres=tuple(values["genres"]),
            year_edges=tuple(float(v) for v in values["year_edges"]),
            year_mean=float(values["year_mean"]),
            year_std=float(values["year_std"]),
            title_buckets=int(values["title_buckets"]),
            text_buckets=int(values["text_buckets"]),
        )


@dataclass(frozen=True)
class ContentConfig:
    """The content autoencoder and the scoring rules.

    ``code_dim`` / ``n_hidden``: the encoder F -> n_hidden -> code (tanh). ``noise``: masking noise
    on the input (denoising). ``map_l2``: ridge penalty of the content -> collaborative map.
    ``blend_k``: the hybrid's collaborative weight is n / (n + blend_k) for an item with n
    training ratings (0: purely collaborative for every rated item). ``ease_l2``: EASE's lambda
    (None: tuned on the validation pair). ``map_l2``, ``map_from``, ``profile`` and ``blend_k``
    were chosen on the validation pairs of ``bench/bench_coldstart_items.py``; the autoencoder's
    sizes, noise and epochs were not tuned.
    """

    LEGACY_KEYS: ClassVar[dict[str, str]] = {"hidden": "n_hidden"}

    n_features: int = 0
    code_dim: int = 32
    n_hidden: int = 128
    noise: float = 0.3
    epochs: int = 150
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    map_l2: float = 300.0
    blend_k: float = 0.0
    ease_l2: float | None = None
    # Loss weight of each feature block: a film has one or two genres but several year and
    # token features, and unweighted codes grouped films by year and title words, not genre.
    genre_weight: float = 10.0
    year_weight: float = 1.0
    token_weight: float = 0.5
    profile: str = "binary"  # how a user's rated items weigh in their content profile
    map_from: str = "codes+features"  # what the map into EASE's space reads (MAP_INPUTS)
    featurizer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("code_dim", "n_hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.noise < 1.0:
            raise ValueError(f"noise must be in [0, 1), got {self.noise}")
        for name in ("learning_rate", "map_l2"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not math.isfinite(self.blend_k) or self.blend_k < 0:
            raise ValueError(f"blend_k must be >= 0, got {self.blend_k}")
        if self.ease_l2 is not None and (not math.isfinite(self.ease_l2) or self.ease_l2 <= 0):
            raise ValueError(f"ease_l2 must be a positive number or null, got {self.ease_l2!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.map_from not in MAP_INPUTS:
            raise ValueError(f"map_from must be one of {MAP_INPUTS}, got {self.map_from!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ContentConfig:
        """From a manifest's config, old key names included (``hidden``)."""
        return cls(**rename_legacy_keys(values, cls.LEGACY_KEYS))

    @property
    def map_width(self) -> int:
        """Inputs of the map into EASE's space (before its bias)."""
        return self.code_dim + (self.n_features if self.map_from == "codes+features" else 0)


PROFILES = ("binary", "centred")
MAP_INPUTS = ("codes", "codes+features")


def map_inputs(codes: np.ndarray, features: np.ndarray, map_from: str) -> np.ndarray:
    """What the map into EASE's item space reads: the codes, or the codes beside the raw
    features (the validation pair prefers the latter: the 32-d bottleneck drops detail the map
    can use)."""
    if map_from == "codes":
        return codes
    return np.hstack([codes, features]).astype(np.float32)  # (N, d+F)


class ContentAutoencoder(nn.Module):
    """Denoising autoencoder F -> hidden -> code -> hidden -> F over item features."""

    def __init__(self, config: ContentConfig, feature_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        weights = torch.ones(config.n_features) if feature_weights is None else feature_weights
        self.register_buffer("feature_weights", weights.float(), persistent=False)
        f, h, d = config.n_features, config.n_hidden, config.code_dim
        # A linear bottleneck: a tanh there saturated at +-1 and every item got the same code.
        self.encoder = nn.Sequential(nn.Linear(f, h), nn.Tanh(), nn.Linear(h, d))
        self.decoder = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, F) logits

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruction of the clean features from a masked copy (BCE on the binary ones)."""
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.config.noise
        logits = self(x * keep)  # (B, F)
        binary = (x >= 0) & (x <= 1)  # every feature but the standardised year
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits, x.clamp(0, 1), reduction="none"
        )
        mse = (logits - x) ** 2
        weights: torch.Tensor = self.feature_weights  # type: ignore[assignment]
        per_feature = torch.where(binary, bce, mse) * weights  # (B, F)
        return per_feature.sum(dim=1).mean()

    @torch.inference_mode()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, d)


def ridge(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """W (d+1, T) minimising ||[x, 1] W - y||^2 + l2 ||W||^2 (the bias is not penalised)."""
    design = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)  # (N, d+1)
    penalty = l2 * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    gram = design.T @ design + penalty  # (d+1, d+1)
    return np.linalg.solve(gram, design.T @ y.astype(np.float64))  # (d+1, T)


def with_bias(codes: np.ndarray) -> np.ndarray:
    return np.hstack([codes, np.ones((len(codes), 1), codes.dtype)])  # (N, d+1)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def content_unit(codes: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit codes after removing the training catalogue's mean code: the codes share a large
    common component, and cosines of raw codes are all close to 1."""
    return unit_rows(codes - centre).astype(np.float32)  # (N, d)


def profile_weights(user_rows: sp.csr_matrix, profile: str) -> sp.csr_matrix:
    """How much each rated item counts in a user's content profile (B, N)."""
    rows = sp.csr_matrix(user_rows, dtype=np.float32)
    if profile == "binary":
        rows.data = np.ones_like(rows.data)
        return rows
    counts = np.maximum(np.diff(rows.indptr), 1)
    means = np.asarray(rows.sum(axis=1)).ravel() / counts  # (B,)
    rows.data = rows.data - np.repeat(means, np.diff(rows.indptr)).astype(np.float32)
    return rows


def content_scores(user_rows: sp.csr_matrix, unit_codes: np.ndarray, profile: str) -> np.ndarray:
    """Cosine (B, N) of each user's content profile with every item's unit code."""
    weights = profile_weights(user_rows, profile)
    profiles = np.asarray(weights @ unit_codes)  # (B, d)
    return unit_rows(profiles) @ unit_codes.T  # (B, N)


def hybrid_scores(
    user_rows: sp.csr_matrix,
    *,
    warm: np.ndarray,
    ease_weights: np.ndarray,
    mapping: np.ndarray,
    inputs: np.ndarray,
    counts: np.ndarray,
    blend_k: float,
) -> np.ndarray:
    """Collaborative and mapped content scores (B, N), blended by each item's rating count.

    ``warm`` (N,) is each item's column in EASE's matrix, or -1 for an item EASE never saw;
    ``ease_weights`` (W, W); ``mapping`` (W, D+1) sends an item's map inputs (N, D) (plus a
    bias) to a predicted EASE column; ``counts`` (N,) ratings per item when the model was trained.
    """
    known = np.flatnonzero(warm >= 0)  # (K,) catalogue positions of EASE's items
    x = sp.csr_matrix(user_rows[:, known], dtype=np.float32)
    x.data = np.ones_like(x.data)  # EASE reads binary interactions; (B, W) in EASE's order
    order = np.argsort(warm[known])
    x = x[:, order]  # columns now in EASE's item order
    mapped = np.asarray(x @ mapping) @ with_bias(inputs).T  # (B, N)
    collab = np.zeros_like(mapped)
    collab[:, known] = np.asarray(x @ ease_weights[:, warm[known]])  # (B, K)
    weight = counts / (counts + blend_k) if blend_k > 0 else (counts > 0).astype(np.float64)
    weight = np.where(warm >= 0, weight, 0.0)  # (N,)
    return (weight * collab + (1.0 - weight) * mapped).astype(np.float32)


class Catalogue(Protocol):
    """The per-item arrays a content scoring rule reads, over N catalogue items: ``unit`` (N, d)
    row-normalised centred codes (``content_unit``), ``inputs`` (N, D) what the hybrid's map
    reads (``map_inputs``), ``counts`` (N,) training ratings per item, ``warm`` (N,) each
    item's EASE column (-1 for an item EASE never saw)."""

    @property
    def unit(self) -> np.ndarray: ...
    @property
    def inputs(self) -> np.ndarray: ...
    @property
    def counts(self) -> np.ndarray: ...
    @property
    def warm(self) -> np.ndarray: ...


@dataclass
class ContentScorer:
    """The scoring rule of one model over whatever catalogue it is handed: content only, or
    with EASE's weights and the content -> EASE map, the hybrid."""

    config: ContentConfig
    ease_weights: np.ndarray | None = None  # (W, W); None: content only
    mapping: np.ndarray | None = None  # (W, D+1)

    def score(self, catalogue: Catalogue, user_rows: sp.csr_matrix) -> np.ndarray:
        if self.ease_weights is None or self.mapping is None:
            return content_scores(user_rows, catalogue.unit, self.config.profile)
        return hybrid_scores(
            user_rows,
            warm=catalogue.warm,
            ease_weights=self.ease_weights,
            mapping=self.mapping,
            inputs=catalogue.inputs,
            counts=catalogue.counts,
            blend_k=self.config.blend_k,
        )
