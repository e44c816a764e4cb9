"""Embeddings: reduce to 2 or 3 dimensions, nearest neighbours, genre agreement, item maps.

Two reducers with the same signature ``reduce(x, dims, seed) -> (N, dims)``:
- ``pca``: the baseline (centred SVD);
- ``autoencoder``: an autoencoder whose bottleneck has ``dims`` units (tanh hidden layer, linear
  code and output, squared error on standardised inputs), trained here in a few hundred
  full-batch Adam steps; small enough to run at request time for ~2,000 items.

``genre_agreement`` measures whether an embedding carries meaning: the mean genre Jaccard
similarity between each item and its k nearest neighbours (cosine), against the mean over all
other items (what random neighbours give in expectation).

``combine_views`` is how the served autoencoder item embedding is put together: each view's rows
are centred (the mean row is the direction every item shares, mostly popularity) and scaled to
unit length, then concatenated, so a cosine on the result is the mean of the views' cosines.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ml.models.autoencoder import Autoencoder, AutoencoderConfig

METHODS = ("pca", "autoencoder")


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0)
    scale = centred.std(axis=0)
    return centred / np.where(scale > 0, scale, 1.0)


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Project rows of ``x`` (N, d) on their first ``dims`` principal components (N, dims)."""
    x = np.asarray(x, dtype=np.float64)
    _check(x, dims)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:dims]  # (dims, d)
    signs = np.sign(components[np.arange(dims), np.abs(components).argmax(axis=1)])
    return (centred @ (components * signs[:, None]).T).astype(np.float32)  # deterministic signs


def autoencoder_reduce(
    x: np.ndarray, dims: int, *, seed: int = 42, steps: int = 400, hidden: int = 64
) -> np.ndarray:
    """Codes (N, dims) of an autoencoder with a ``dims``-wide linear bottleneck."""
    x = np.asarray(x, dtype=np.float64)
    _check(x, dims)
    data = torch.from_numpy(_standardise(x).astype(np.float32))  # (N, d)
    config = AutoencoderConfig(
        n_inputs=data.shape[1],
        hidden_layers=(hidden, dims),
        activation="tanh",
        output="identity",
        learning_rate=1e-2,
    )
    generator = torch.Generator().manual_seed(seed)
    model = Autoencoder(config, generator=generator)
    model.encoder[-1] = torch.nn.Identity()  # linear code: the map is not squashed into a box
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    with torch.enable_grad():
        for _ in range(steps):
            loss = model.losses(data).total
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    model.eval()
    return model.codes(data).numpy().astype(np.float32)


def reduce(x: np.ndarray, dims: int, method: str = "pca", *, seed: int = 42) -> np.ndarray:
    if method == "pca":
        return pca(x, dims)
    if method == "autoencoder":
        return autoencoder_reduce(x, dims, seed=seed)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def _check(x: np.ndarray, dims: int) -> None:
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need a 2-D array of at least two rows, got shape {x.shape}")
    if not 1 <= dims <= x.shape[1]:
        raise ValueError(f"dims must lie in [1, {x.shape[1]}], got {dims}")


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centre_rows(x: np.ndarray) -> np.ndarray:
    """Rows minus the mean row: drops the direction all items share before cosines."""
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=0)


def combine_views(*views: np.ndarray) -> np.ndarray:
    """(N, sum d_v) float32: each view (N, d_v) centred, unit rows, concatenated.

    cos(concat) = mean of the views' cosines, so no view dominates by its scale or width.
    """
    if not views or len({len(v) for v in views}) != 1:
        raise ValueError("need at least one view, all with the same number of rows")
    parts = [unit_rows(centre_rows(v)) / np.sqrt(len(views)) for v in views]
    return np.concatenate(parts, axis=1).astype(np.float32)


def cosine_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each row's k most cosine-similar other rows, best first."""
    unit = unit_rows(x)
    sims = unit @ unit.T  # (N, N)
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(x) - 1)
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def genre_matrix(genres: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    names = sorted({g for gs in genres for g in gs})
    index = {g: i for i, g in enumerate(names)}
    out = np.zeros((len(genres), len(names)), dtype=np.float64)
    for row, gs in enumerate(genres):
        out[row, [index[g] for g in gs]] = 1.0
    return out, names


@dataclass(frozen=True)
class GenreAgreement:
    neighbours: float  # mean genre Jaccard of an item with its k nearest neighbours
    random: float  # the same with every other item (random neighbours' expectation)
    shares_genre: float  # share of neighbours with at least one genre in common
    shares_genre_random: float
    items: int  # items evaluated (those with at least one genre)

    @property
    def ratio(self) -> float:
        return self.neighbours / self.random if self.random > 0 else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {
            "neighbours": self.neighbours,
            "random": self.random,
            "ratio": self.ratio,
            "shares_genre": self.shares_genre,
            "shares_genre_random": self.shares_genre_random,
            "items": float(self.items),
        }


def genre_agreement(
    embeddings: np.ndarray, genres: Sequence[Sequence[str]], k: int = 10
) -> GenreAgreement:
    """Genre agreement of each item's k nearest neighbours vs random neighbours.

    Items without genres are left out (as items and as neighbours).
    """
    g, _ = genre_matrix(genres)
    keep = g.sum(axis=1) > 0
    g, x = g[keep], np.asarray(embeddings)[keep]
    inter = g @ g.T  # (N, N)
    sizes = g.sum(axis=1)
    jaccard = inter / (sizes[:, None] + sizes[None, :] - inter)
    shares = (inter > 0).astype(np.float64)
    n = len(g)
    off = ~np.eye(n, dtype=bool)
    nn = cosine_neighbours(x, k)  # (N, k)
    rows = np.arange(n)[:, None]
    return GenreAgreement(
        neighbours=float(jaccard[rows, nn].mean()),
        random=float(jaccard[off].mean()),
        shares_genre=float(shares[rows, nn].mean()),
        shares_genre_random=float(shares[off].mean()),
        items=n,
    )


def main_genres(genres: Sequence[Sequence[str]]) -> list[str]:
    """Each item's most specific genre: the rarest of its genres over the catalogue."""
    counts = Counter(g for gs in genres for g in gs)
    return [min(gs, key=lambda g: (counts[g], g)) if len(gs) else "unknown" for gs in genres]


def embedding_map_png(
    coords: np.ndarray,
    groups: Sequence[str],
    labels: dict[int, str] | None = None,
    *,
    title: str = "",
    max_groups: int = 10,
) -> bytes:
    """A 2-D scatter (first two columns) coloured by group, with a few points labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords = np.asarray(coords, dtype=np.float64)
    top = [g for g, _ in Counter(groups).most_common(max_groups)]
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=90)
    cmap = plt.get_cmap("tab10" if len(top) <= 10 else "tab20")
    rest = np.array([g not in top for g in groups])
    if rest.any():
        ax.scatter(coords[rest, 0], coords[rest, 1], s=6, c="lightgrey", label="other", lw=0)
    for i, group in enumerate(top):
        mask = np.array([g == group for g in groups])
        ax.scatter(coords[mask, 0], coords[mask, 1], s=8, color=cmap(i), label=group, lw=0)
    for index, text in (labels or {}).items():
        ax.annotate(text, (float(coords[index, 0]), float(coords[index, 1])), fontsize=7)
    ax.set_title(title, fontsize=10)
    # under the axes: inside it would cover points, on the right the labels of edge points
    ax.legend(
        fontsize=7,
        markerscale=2,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.01),
        ncol=6,
        frameon=False,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")  # keeps long titles near the edge
    plt.close(fig)
    return buffer.getvalue()
