"""Seeded synthetic ratings with the published MovieLens shapes, written as MovieLens files.

Real ML-1M/10M/25M cannot be downloaded on the bench machines (and may not be redistributed),
so speed and memory are measured on data with their shapes and their statistics:

- item popularity follows Zipf (exponent about 1) over a random permutation of the item ids,
  and every item is rated at least once, so the item count is the published one;
- ratings per user are log-normal (a heavy tail), at least ``min_per_user`` each, and sum to
  the published rating count exactly;
- a rating is a global mean + a user bias + an item bias (popular items rate higher) + a rank-8
  taste + noise, rounded to the shape's scale (whole stars for ML-1M, half stars for ML-10M and
  ML-25M), so models learn something and beat popularity;
- timestamps lie in the release's years, each user active over a log-normal span of days.

Users are generated in fixed blocks, each from its own seed derived from the run's seed, and
written as they are made: memory is bounded by a block, not by the data set, and the output
depends only on the seed and the shape, never on how the files are written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ml.data.errors import DataError

USERS_PER_BLOCK = 2048  # part of the generator's definition: changing it changes the data
TASTE_RANK = 8
TASTE_SHARE = 0.85  # share of a user's choices drawn from the item groups they prefer
GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip


def max_per_user(items: int) -> int:
    """The most ratings one user gets: most of the catalogue, as MovieLens' heaviest raters."""
    return max(1, int(items * 0.7))


@dataclass(frozen=True)
class SyntheticShape:
    """A data set's size and layout. ``layout``: ``dat`` (``::``-separated ratings.dat,
    movies.dat, users.dat as ML-1M/ML-10M) or ``csv`` (ratings.csv, movies.csv as ML-25M)."""

    name: str
    users: int
    items: int
    ratings: int
    half_stars: bool
    layout: str
    first_timestamp: int
    last_timestamp: int
    min_per_user: int = 20
    with_users_file: bool = False

    def __post_init__(self) -> None:
        if self.layout not in ("dat", "csv"):
            raise DataError(f"layout must be 'dat' or 'csv', got {self.layout!r}")
        if self.users < 2 or self.items < 2:
            raise DataError("a synthetic data set needs at least two users and two items")
        cap = max_per_user(self.items)
        if not self.users * self.min_per_user <= self.ratings <= self.users * cap:
            raise DataError(
                f"{self.name}: {self.ratings} ratings cannot be spread over {self.users} users "
                f"with {self.min_per_user}..{cap} each"
            )
        if self.ratings < self.items:
            raise DataError(f"{self.name}: fewer ratings than items, so some item is never rated")

    def scaled(self, factor: float) -> SyntheticShape:
        """A smaller shape of the same density (for tests): ratings times ``factor``, users and
        items times its square root."""
        if not 0 < factor <= 1:
            raise DataError(f"scale must be in (0, 1], got {factor}")
        if factor == 1:
            return self
        users = max(2, round(self.users * math.sqrt(factor)))
        items = max(2, round(self.items * math.sqrt(factor)))
        ratings = max(round(self.ratings * factor), users * self.min_per_user, items)
        return replace(
            self, name=f"{self.name}-x{factor:g}", users=users, items=items, ratings=ratings
        )


SHAPES: dict[str, SyntheticShape] = {
    "ml-1m": SyntheticShape(
        "ml-1m", 6_040, 3_706, 1_000_209, half_stars=False, layout="dat",
        first_timestamp=956_703_932, last_timestamp=1_046_454_590, with_users_file=True,
    ),
    "ml-10m": SyntheticShape(
        "ml-10m", 69_878, 10_677, 10_000_054, half_stars=True, layout="dat",
        first_timestamp=789_652_009, last_timestamp=1_231_131_736,
    ),
    "ml-25m": SyntheticShape(
        "ml-25m", 162_541, 59_047, 25_000_095, half_stars=True, layout="csv",
        first_timestamp=789_652_009, last_timestamp=1_574_327_703,
    ),
}  # fmt: skip


def shape_named(name: str) -> SyntheticShape:
    try:
        return SHAPES[name]
    except KeyError:
        raise DataError(f"unknown shape {name!r}; choose one of {sorted(SHAPES)}") from None


@dataclass(frozen=True)
class _World:
    """What every block shares: per-user counts, item popularity, groups, biases and tastes."""

    counts: np.ndarray  # (U,) ratings per user, summing to the shape's total
    cdf: np.ndarray  # (I,) cumulative item popularity
    popularity: np.ndarray  # (I,)
    forced_user: np.ndarray  # (I,) the user who surely rates each item (so every item is rated)
    item_group: np.ndarray  # (I,) taste group (shown as the item's first genre)
    group_share: np.ndarray  # (I,) the item's popularity within its group
    group_items: np.ndarray  # (I,) item indices ordered by group
    group_cdf: np.ndarray  # (I,) group g's cumulative popularity, shifted by g (one searchsorted)
    group_centres: np.ndarray  # (GROUPS, TASTE_RANK)
    item_bias: np.ndarray  # (I,)
    item_taste: np.ndarray  # (I, TASTE_RANK)


def _user_counts(shape: SyntheticShape, rng: np.random.Generator) -> np.ndarray:
    """Log-normal counts clipped to [min, cap], scaled so they sum to ``shape.ratings``."""
    raw = rng.lognormal(mean=0.0, sigma=1.1, size=shape.users)
    low, cap = shape.min_per_user, max_per_user(shape.items)

    def counts_for(scale: float) -> np.ndarray:
        return np.clip(np.floor(raw * scale), low, cap).astype(np.int64)

    lo, hi = 0.0, float(shape.ratings)
    while counts_for(hi).sum() < shape.ratings:
        hi *= 2
    for _ in range(200):  # bisection on the scale: the sum is monotone in it
        mid = (lo + hi) / 2
        if counts_for(mid).sum() <= shape.ratings:
            lo = mid
        else:
            hi = mid
    counts = counts_for(lo)
    missing = shape.ratings - int(counts.sum())
    while missing > 0:  # hand the remainder out one by one to users below the cap
        room = np.flatnonzero(counts < cap)
        chosen = rng.choice(room, size=min(missing, len(room)), replace=False)
        counts[chosen] += 1
        missing -= len(chosen)
    return counts


def _forced_users(counts: np.ndarray, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """One user per item who surely rates it, picked in proportion to activity, and never more
    items for a user than that user rates (possible only since ratings >= items)."""
    owner = rng.choice(len(counts), size=n_items, p=counts / counts.sum())
    while True:
        load = np.bincount(owner, minlength=len(counts))
        over = np.flatnonzero(load > counts)
        if not len(over):
            return owner
        for user in over.tolist():
            extra = np.flatnonzero(owner == user)[counts[user] :]
            room = np.flatnonzero(load < counts)
            owner[extra] = rng.choice(room, size=len(extra))


def _item_groups(shape: SyntheticShape, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, shape.items, 3]).integers(0, len(GENRES), shape.items)


def _world(shape: SyntheticShape, seed: int, rng: np.random.Generator) -> _World:
    counts = _user_counts(shape, rng)
    ranks = rng.permutation(shape.items)  # item i has popularity rank ranks[i]
    popularity = 1.0 / (ranks + 1.0) ** 1.0
    popularity /= popularity.sum()
    forced_user = _forced_users(counts, shape.items, rng)
    groups = _item_groups(shape, seed)
    group_total = np.bincount(groups, weights=popularity, minlength=len(GENRES))
    group_share = popularity / group_total[groups]
    order = np.lexsort((np.arange(shape.items), groups))
    group_cdf = np.empty(shape.items)
    for group in range(len(GENRES)):
        members = groups[order] == group
        group_cdf[members] = group + np.cumsum(group_share[order][members])
    # Popular items rate a little higher, as in MovieLens.
    log_pop = np.log(popularity)
    item_bias = 0.4 * rng.standard_normal(shape.items) + 0.25 * (
        (log_pop - log_pop.mean()) / log_pop.std()
    )
    centres = rng.standard_normal((len(GENRES), TASTE_RANK))
    own = rng.standard_normal((shape.items, TASTE_RANK))
    item_taste = (0.8 * centres[groups] + 0.6 * own) * (0.8 / math.sqrt(TASTE_RANK))
    return _World(
        counts=counts,
        cdf=np.cumsum(popularity),
        popularity=popularity,
        forced_user=forced_user,
        item_group=groups,
        group_share=group_share,
        group_items=order,
        group_cdf=group_cdf,
        group_centres=centres.astype(np.float32),
        item_bias=item_bias.astype(np.float32),
        item_taste=item_taste.astype(np.float32),
    )


def _sample_items(
    counts: np.ndarray,
    forced: list[np.ndarray],
    preference: np.ndarray,
    world: _World,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct items per user (``counts[u]`` of them, including ``forced[u]``): each draw is,
    with probability ``TASTE_SHARE``, an item of a group the user prefers (``preference[u]``),
    by popularity within the group; otherwise an item by overall popularity. Returns (user
    index within the block, item index), grouped by user."""
    n_items = len(world.cdf)
    users_out, items_out = [], []
    for user, (count, must) in enumerate(zip(counts.tolist(), forced, strict=True)):
        need = count - len(must)
        liking = preference[user]
        if need * 8 > n_items:
            # Heavy user: weighted sampling without replacement by Gumbel top-k, O(items).
            weight = (1 - TASTE_SHARE) * world.popularity + TASTE_SHARE * (
                liking[world.item_group] * world.group_share
            )
            keys = np.log(weight) + rng.gumbel(size=n_items)
            keys[must] = np.inf
            chosen = np.argpartition(-keys, count - 1)[:count]
        else:
            chosen = must
            group_cdf = np.cumsum(liking)
            while len(chosen) < count:
                n_draws = 2 * (count - len(chosen)) + 8
                by_taste = rng.random(n_draws) < TASTE_SHARE
                draws = np.searchsorted(world.cdf, rng.random(n_draws))
                n_taste = int(by_taste.sum())
                group = np.minimum(np.searchsorted(group_cdf, rng.random(n_taste)), len(liking) - 1)
                position = np.searchsorted(world.group_cdf, group + rng.random(n_taste))
                draws[by_taste] = world.group_items[np.minimum(position, n_items - 1)]
                draws = np.minimum(draws, n_items - 1)
                fresh = pd.unique(np.concatenate([chosen, draws]))  # keeps first occurrences
                chosen = fresh[:count]
        users_out.append(np.full(count, user, dtype=np.int64))
        items_out.append(np.asarray(chosen, dtype=np.int64))
    return np.concatenate(users_out), np.concatenate(items_out)


def _block(
    shape: SyntheticShape, world: _World, first_user: int, seed: np.random.SeedSequence
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    last_user = min(first_user + USERS_PER_BLOCK, shape.users)
    counts = world.counts[first_user:last_user]
    in_block = np.flatnonzero((world.forced_user >= first_user) & (world.forced_user < last_user))
    owners = world.forced_user[in_block] - first_user
    forced = [in_block[owners == u] for u in range(len(counts))]
    n_block = len(counts)
    preference = rng.dirichlet(np.full(len(GENRES), 0.2), size=n_block)  # (B, GROUPS)
    user_index, item_index = _sample_items(counts, forced, preference, world, rng)

    user_bias = 0.35 * rng.standard_normal(n_block).astype(np.float32)
    # A user's taste leans towards the groups they prefer: they rate what they choose higher.
    centred = (preference - 1 / len(GENRES)) @ world.group_centres
    user_taste = (2.0 * centred + rng.standard_normal((n_block, TASTE_RANK))).astype(np.float32)
    taste = np.einsum("nk,nk->n", user_taste[user_index], world.item_taste[item_index])
    noise = 0.55 * rng.standard_normal(len(item_index)).astype(np.float32)
    value = 3.05 + user_bias[user_index] + world.item_bias[item_index] + taste + noise
    if shape.half_stars:
        rating = np.clip(np.round(value * 2) / 2, 0.5, 5.0)
    else:
        rating = np.clip(np.round(value), 1.0, 5.0)

    span = shape.last_timestamp - shape.first_timestamp
    active_days = np.minimum(rng.lognormal(3.0, 1.8, n_block), span / 86_400)
    start = shape.first_timestamp + rng.random(n_block) * (span - active_days * 86_400)
    stamp = start[user_index] + rng.random(len(item_index)) * active_days[user_index] * 86_400

    frame = pd.DataFrame(
        {
            "user_id": user_index + first_user + 1,
            "item_id": item_index + 1,
            "rating": rating.astype(np.float32),
            "timestamp": stamp.astype(np.int64),
        }
    )
    return frame.sort_values(["user_id", "timestamp", "item_id"], kind="stable", ignore_index=True)


def generate(shape: SyntheticShape, seed: int = 0) -> Iterator[pd.DataFrame]:
    """The ratings, block by block (``USERS_PER_BLOCK`` users each), in user order."""
    root = np.random.SeedSequence([seed, shape.users, shape.items, shape.ratings])
    world_seed, *block_seeds = root.spawn(1 + math.ceil(shape.users / USERS_PER_BLOCK))
    world = _world(shape, seed, np.random.default_rng(world_seed))
    for block, first_user in enumerate(range(0, shape.users, USERS_PER_BLOCK)):
        yield _block(shape, world, first_user, block_seeds[block])


def _items_frame(shape: SyntheticShape, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, shape.items, 1])
    years = rng.integers(1919, 2001 if shape.layout == "dat" else 2020, size=shape.items)
    ids = np.arange(1, shape.items + 1)
    genres = [  # the taste group first, then up to two others
        "|".join(dict.fromkeys([GENRES[group], *rng.choice(GENRES, size=rng.integers(0, 3))]))
        for group in _item_groups(shape, seed).tolist()
    ]
    titles = [f"Synthetic Movie {i} ({y})" for i, y in zip(ids, years, strict=True)]
    return pd.DataFrame({"item_id": ids, "title": titles, "genres": genres})


def _users_frame(shape: SyntheticShape, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, shape.users, 2])
    n = shape.users
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n + 1),
            "gender": rng.choice(["F", "M"], size=n, p=[0.28, 0.72]),
            "age": rng.choice([1, 18, 25, 35, 45, 50, 56], size=n),
            "occupation": rng.integers(0, 21, size=n),
            "zip_code": [f"{z:05d}" for z in rng.integers(0, 100_000, size=n)],
        }
    )


def _write_dat(frame: pd.DataFrame, path: Path, *, append: bool, float_format: str) -> None:
    """``a::b::c`` lines: pandas writes one-character separators, so put empty columns between."""
    spaced = pd.DataFrame(index=frame.index)
    for position, column in enumerate(frame.columns):
        if position:
            spaced[f"_gap{position}"] = ""
        spaced[column] = frame[column]
    spaced.to_csv(
        path,
        sep=":",
        header=False,
        index=False,
        mode="a" if append else "w",
        float_format=float_format,
        encoding="latin-1",
    )


Progress = Callable[[int], None]


def write_dataset(
    shape: SyntheticShape, out: str | Path, *, seed: int = 0, progress: Progress | None = None
) -> Path:
    """Write the shape's files into ``out`` (created; it must not hold ratings already).

    ``dat``: ratings.dat, movies.dat (and users.dat for ML-1M), ``::``-separated, latin-1.
    ``csv``: ratings.csv (``userId,movieId,rating,timestamp``) and movies.csv. The ratings file
    is written under a temporary name and renamed at the end: a killed run leaves no ratings
    file that looks complete. ``progress(n)`` is told after each block of ``n`` ratings.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ratings_name = "ratings.dat" if shape.layout == "dat" else "ratings.csv"
    final = out / ratings_name
    if final.exists():
        raise DataError(f"{final}: already exists; choose an empty --out folder")
    partial = out / f".{ratings_name}.partial"
    items = _items_frame(shape, seed)
    if shape.layout == "dat":
        _write_dat(items, out / "movies.dat", append=False, float_format="%g")
        if shape.with_users_file:
            users = _users_frame(shape, seed)
            _write_dat(users, out / "users.dat", append=False, float_format="%g")
    else:
        items.rename(columns={"item_id": "movieId"}).to_csv(out / "movies.csv", index=False)
    for number, block in enumerate(generate(shape, seed)):
        if shape.layout == "dat":
            _write_dat(block, partial, append=number > 0, float_format="%g")
        else:
            block.rename(columns={"user_id": "userId", "item_id": "movieId"}).to_csv(
                partial, header=number == 0, index=False, mode="a" if number else "w",
                float_format="%.1f",
            )  # fmt: skip
        if progress is not None:
            progress(len(block))
    partial.replace(final)
    return final
