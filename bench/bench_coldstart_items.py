"""Item cold start: content-only and hybrid models on films nobody has rated yet.

Writes bench/results/coldstart_items.{json,md}. Three parts, one run:

1. **Item cold-start protocol.** 10% of the rated items (``default_rng(42)``) are held out with ALL
   their ratings. The content autoencoder learns from the metadata of the remaining items only (a
   held-out film is embedded at request time from its metadata, as the service does), EASE and
   the content -> EASE map from the remaining ratings. For every user who rated a held-out item,
   the held-out items are ranked for that user from their training ratings; recall@10 and nDCG@10
   (binary gains, PROTOCOL.md's definitions) against the held-out items they rated. Compared:
   content-only, the hybrid (a cold item's score is the mapped one), popularity and random.
   Popularity of a held-out item is unknown at training time (it has no ratings): every item ties
   at zero, so its order is the tie order, random; it is reported as such, and beside it the
   popularity PREDICTED from content (a ridge map from codes to log(1 + ratings)).
   Hyper-parameters (ridge penalty, profile weighting) are chosen on a validation split of the
   training items (another 10% held out with ``default_rng(7)``), never on the held-out items.
2. **Standard protocol** (PROTOCOL.md, seed 42): the hybrid's blend constant k (weight n/(n+k))
   chosen on the validation pair (k = 0, the collaborative answer on every rated item, unless a
   blend beats it there by more than ``BLEND_MARGIN``); its test figures beside EASE (lambda
   chosen on validation) and the best collaborative figure of
   ``bench/results/autoencoder.json`` (Mult-DAE).
3. **Genre agreement** of each item's 10 nearest neighbours (``ml.inference.embeddings``,
   the measure of ``bench/bench_autoencoder.py``), all items: content codes vs embeddings from
   ratings. Genres are an INPUT of the content model, so its agreement is high by construction;
   the figure says how much of that survives the 32-d bottleneck and the map into EASE's space.

``--quick`` trains the autoencoder for fewer epochs (a smoke run).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.common import RESULTS_DIR, markdown_table, write_result
from ml.data.fetch import load_dataset
from ml.data.splits import PROTOCOL_SEED, VALIDATION_SEED, protocol_split
from ml.data.vocab import IdVocab
from ml.evaluation.evaluate import evaluate_ranking, top_k
from ml.evaluation.metrics import ranking_metrics
from ml.inference.embeddings import genre_agreement, pca
from ml.models.baselines import EASE, EASEConfig
from ml.models.content import (
    ContentConfig,
    ItemMeta,
    content_unit,
    map_inputs,
    profile_weights,
    ridge,
    unit_rows,
    with_bias,
)
from ml.training.base import TrainingOptions
from ml.training.baselines import tune_ease_l2
from ml.training.content import (
    ContentFit,
    catalogue,
    content_scorer,
    encode,
    fit_content,
    fit_hybrid,
    hybrid_scorer,
    on_split,
)
from tests.conftest import TEST_DATA_DIR

log = logging.getLogger(__name__)
HOLDOUT = 0.10
K = 10
MAP_L2_GRID = (10.0, 100.0, 300.0, 1000.0)
MAP_FROM = ("codes", "codes+features")
PROFILES = ("binary", "centred")
BLEND_K_GRID = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)
# A blend (k > 0) must beat the plain collaborative answer (k = 0) on validation by more than
# this nDCG@10 to be chosen: smaller differences are within the noise of one split.
BLEND_MARGIN = 0.002
TARGET_RATIO = 3.0


def hold_out_items(ratings: pd.DataFrame, seed: int) -> np.ndarray:
    """10% of the rated items, chosen with ``default_rng(seed)``, ascending."""
    items = np.unique(ratings["item_id"].to_numpy())
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(items, size=math.ceil(HOLDOUT * len(items)), replace=False))


class ColdSplit:
    """Ratings without the held-out items (train) and the held-out items' ratings (test)."""

    def __init__(self, ratings: pd.DataFrame, held: np.ndarray) -> None:
        cold = ratings["item_id"].isin(held).to_numpy()
        train, test = ratings[~cold], ratings[cold]
        self.users = IdVocab(ratings["user_id"].to_numpy())
        self.items = IdVocab(train["item_id"].to_numpy())  # the warm items
        self.held = IdVocab(held)
        self.train_frame = train
        self.train = _csr(train, self.users, self.items)  # (U, W)
        self.test = _csr(test, self.users, self.held)  # (U, H)


def _csr(frame: pd.DataFrame, users: IdVocab, items: IdVocab) -> sp.csr_matrix:
    rows = users.encode(frame["user_id"].to_numpy())
    cols = items.encode(frame["item_id"].to_numpy())
    values = frame["rating"].to_numpy(np.float32)
    return sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)))


def rank_metrics(scores: np.ndarray, test: sp.csr_matrix) -> dict[str, float]:
    """recall@10 and nDCG@10 over the held-out items, for users with held-out ratings."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    ranked = top_k(scores[users], K)
    values = ranking_metrics(ranked, test, users)
    return {
        f"recall@{K}": float(values["recall"].mean()),
        f"ndcg@{K}": float(values["ndcg"].mean()),
        "users": len(users),
    }


def _meta(items: list[ItemMeta], ids: np.ndarray) -> list[ItemMeta]:
    by_id = {item.id: item for item in items}
    return [by_id.get(int(i), ItemMeta(id=int(i))) for i in ids]


def cold_scores(
    fit: ContentFit,
    split: ColdSplit,
    items: list[ItemMeta],
    ease_l2: float,
    grid: list[tuple[float, str]],
) -> dict[str, np.ndarray]:
    """(U, H) scores of the held-out items for every user, per method. ``fit`` learned from the
    warm items' metadata only; the held-out items are encoded now, from their metadata."""
    held_features = fit.featurizer.transform(_meta(items, split.held.ids))
    held_codes = encode(fit.model, held_features)
    centre = fit.codes.mean(axis=0)
    unit_warm, unit_held = content_unit(fit.codes, centre), content_unit(held_codes, centre)
    scores: dict[str, np.ndarray] = {}
    for profile in PROFILES:
        profiles = unit_rows(np.asarray(profile_weights(split.train, profile) @ unit_warm))
        scores[f"content-only ({profile} profile)"] = profiles @ unit_held.T  # (U, H)
    x = sp.csr_matrix(split.train, dtype=np.float32)
    x.data = np.ones_like(x.data)
    counts = np.asarray((split.train != 0).sum(axis=0)).ravel()
    for map_l2, map_from in grid:
        mapped = replace(fit, config=replace(fit.config, map_l2=map_l2, map_from=map_from))
        hybrid = fit_hybrid(mapped, split.train, split.items.ids, ease_l2)
        inputs = map_inputs(held_codes, held_features, map_from)
        key = f"hybrid (map from {map_from}, l2={map_l2:g})"
        scores[key] = np.asarray(x @ hybrid.mapping) @ with_bias(inputs).T  # (U, H)
        popularity = ridge(mapped.inputs, np.log1p(counts)[:, None], map_l2)  # (D+1, 1)
        predicted = (with_bias(inputs) @ popularity).ravel()  # (H,)
        key = f"popularity predicted from content (map from {map_from}, l2={map_l2:g})"
        scores[key] = np.tile(predicted, (x.shape[0], 1))
    rng = np.random.default_rng(PROTOCOL_SEED)
    shape = (x.shape[0], len(split.held))
    scores["random"] = rng.random(shape)
    # Popularity as counted at training time: every held-out item has 0 ratings, all tie; the
    # tie order is random (another stream), so this row IS a random ranking.
    scores["popularity (training counts: all 0, ties at random)"] = rng.random(shape)
    return scores


def cold_protocol(
    ratings: pd.DataFrame,
    items: list[ItemMeta],
    held: np.ndarray,
    config: ContentConfig,
    options: TrainingOptions,
    ease_l2: float,
    grid: list[tuple[float, str]],
) -> dict[str, dict[str, float]]:
    """Figures per method (and map setting) on one held-out item set."""
    split = ColdSplit(ratings, held)
    fit = fit_content(_meta(items, split.items.ids), config, options)
    scores = cold_scores(fit, split, items, ease_l2, grid)
    return {name: rank_metrics(s, split.test) for name, s in scores.items()}


def coldstart_part(
    ratings: pd.DataFrame,
    items: list[ItemMeta],
    config: ContentConfig,
    options: TrainingOptions,
    ease_l2: float,
) -> dict[str, Any]:
    held = hold_out_items(ratings, PROTOCOL_SEED)
    train_ratings = ratings[~ratings["item_id"].isin(held)]
    valid_held = hold_out_items(train_ratings, VALIDATION_SEED)
    grid = [(l2, source) for source in MAP_FROM for l2 in MAP_L2_GRID]
    validation = cold_protocol(train_ratings, items, valid_held, config, options, ease_l2, grid)
    ndcg = f"ndcg@{K}"
    map_l2, map_from = max(
        grid, key=lambda g: validation[f"hybrid (map from {g[1]}, l2={g[0]:g})"][ndcg]
    )
    profile = max(PROFILES, key=lambda p: validation[f"content-only ({p} profile)"][ndcg])
    test = cold_protocol(ratings, items, held, config, options, ease_l2, [(map_l2, map_from)])
    test["hybrid"] = test.pop(f"hybrid (map from {map_from}, l2={map_l2:g})")
    test["popularity predicted from content"] = test.pop(
        f"popularity predicted from content (map from {map_from}, l2={map_l2:g})"
    )
    rows = [{"method": name, **values} for name, values in test.items()]
    chosen_content = test[f"content-only ({profile} profile)"]
    random = test["random"]
    return {
        "held_out_items": len(held),
        "held_out_ratings": int(ratings["item_id"].isin(held).sum()),
        "chosen_on_validation": {"map_l2": map_l2, "map_from": map_from, "profile": profile},
        "validation_ndcg": {name: m[ndcg] for name, m in validation.items()},
        "test": rows,
        "hybrid_over_random_ndcg": test["hybrid"][ndcg] / max(random[ndcg], 1e-12),
        "hybrid_over_random_recall": test["hybrid"][f"recall@{K}"]
        / max(random[f"recall@{K}"], 1e-12),
        "targets": {
            "hybrid >= 3x random (nDCG@10)": test["hybrid"][ndcg] >= TARGET_RATIO * random[ndcg],
            "hybrid >= 3x random (recall@10)": test["hybrid"][f"recall@{K}"]
            >= TARGET_RATIO * random[f"recall@{K}"],
            "hybrid > content-only (nDCG@10)": test["hybrid"][ndcg] > chosen_content[ndcg],
        },
    }


def best_collaborative() -> dict[str, Any] | None:
    """The best validation-chosen collaborative test figure of bench/results/autoencoder.json."""
    path = RESULTS_DIR / "autoencoder.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text()).get("ranking", [])
    chosen = [r for r in rows if r["model"].startswith("Mult-DAE") or "chosen" in r["model"]]
    if not chosen:
        return None
    best = max(chosen, key=lambda r: r["ndcg@10_all"])
    return {"model": best["model"], "ndcg@10_all": best["ndcg@10_all"], "source": str(path.name)}


def standard_part(
    ratings: pd.DataFrame,
    items: list[ItemMeta],
    config: ContentConfig,
    options: TrainingOptions,
    ease_l2: float,
) -> tuple[dict[str, Any], ContentFit]:
    """The hybrid on PROTOCOL.md's split: blend constant chosen on the validation pair."""
    split = protocol_split(ratings, seed=PROTOCOL_SEED)
    valid = protocol_split(ratings, seed=PROTOCOL_SEED, validation_seed=VALIDATION_SEED)
    content = fit_content(items, config, options)
    vfit = fit_hybrid(content, valid.train, valid.items.ids, ease_l2)
    by_k: dict[float, float] = {}
    for blend_k in BLEND_K_GRID:
        blended = replace(content, config=replace(content.config, blend_k=blend_k))
        scorer = on_split(hybrid_scorer(blended, vfit), content.ids, valid)
        by_k[blend_k] = evaluate_ranking(scorer, valid.train, valid.test)["ndcg@10_all"]
    best = max(BLEND_K_GRID, key=lambda v: (by_k[v], -v))
    blend_k = best if by_k[best] > by_k[0.0] + BLEND_MARGIN else 0.0
    chosen = replace(content, config=replace(content.config, blend_k=blend_k))
    started = time.perf_counter()
    fit = fit_hybrid(chosen, split.train, split.items.ids, ease_l2)
    hybrid_s = time.perf_counter() - started
    ease = EASE.fit(split.train, EASEConfig(ease_l2))
    rows = [
        {
            "model": f"hybrid (EASE lambda={ease_l2:g} + content map, k={blend_k:g})",
            **evaluate_ranking(
                on_split(hybrid_scorer(chosen, fit), content.ids, split), split.train, split.test
            ),
            "fit_s (EASE + map)": hybrid_s,
        },
        {
            "model": f"EASE (lambda={ease_l2:g}, chosen on validation)",
            **evaluate_ranking(ease.score, split.train, split.test),
        },
        {
            "model": f"content-only ({config.profile} profile)",
            **evaluate_ranking(
                on_split(content_scorer(content), content.ids, split), split.train, split.test
            ),
        },
    ]
    best = best_collaborative()
    hybrid_ndcg = rows[0]["ndcg@10_all"]
    reference = max([rows[1]["ndcg@10_all"]] + ([best["ndcg@10_all"]] if best else []))
    return {
        "validation_ndcg_by_blend_k": {str(k): v for k, v in by_k.items()},
        "blend_k": blend_k,
        "blend_margin": BLEND_MARGIN,
        "test": rows,
        "best_collaborative_elsewhere": best,
        "targets": {
            "hybrid nDCG@10 >= EASE (same run)": hybrid_ndcg >= rows[1]["ndcg@10_all"],
            "hybrid nDCG@10 >= best collaborative (this run and autoencoder.json)": hybrid_ndcg
            >= reference,
        },
    }, content


def genre_part(dataset: Any, content: ContentFit, ease_l2: float) -> list[dict[str, Any]]:
    """Genre agreement of the 10 nearest neighbours, all items, content vs ratings."""
    users = IdVocab(dataset.ratings["user_id"].to_numpy())
    everything = _csr(dataset.ratings, users, IdVocab(content.ids))  # (U, N) every rating
    by_id = {item.id: item for item in catalogue(dataset)}
    genres = [list(by_id[int(i)].genres) for i in content.ids]
    ease = EASE.fit(everything, EASEConfig(ease_l2))
    fit = fit_hybrid(content, everything, content.ids, ease_l2)
    mapped = with_bias(content.inputs) @ fit.mapping.T  # (N, W) predicted EASE columns
    binary = (everything != 0).astype(np.float64).T.toarray()  # (N, U)
    candidates = {
        "content codes, centred (by=content)": content.codes - content.codes.mean(axis=0),
        "content codes mapped into EASE's item space": mapped,
        "EASE item columns, all ratings": ease.weights.T,
        "PCA of item rating vectors (200-d), all ratings": pca(binary, 200),
    }
    rows = []
    for name, emb in candidates.items():
        agreement = genre_agreement(emb, genres)
        rows.append(
            {
                "embedding": name,
                "agreement@10": agreement.neighbours,
                "random": agreement.random,
                "ratio": agreement.ratio,
                "shares a genre@10": agreement.shares_genre,
            }
        )
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    options = TrainingOptions(device="cpu", seed=PROTOCOL_SEED, progress=False)
    config = ContentConfig(epochs=10) if quick else ContentConfig()
    dataset = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    ratings = dataset.ratings
    items = catalogue(dataset)
    started = time.perf_counter()
    ease_l2, _ = tune_ease_l2(ratings)
    cold = coldstart_part(ratings, items, config, options, ease_l2)
    profile = cold["chosen_on_validation"]["profile"]
    chosen = cold["chosen_on_validation"]
    config = replace(config, profile=profile, map_l2=chosen["map_l2"], map_from=chosen["map_from"])
    standard, content = standard_part(ratings, items, config, options, ease_l2)
    genres = genre_part(dataset, content, ease_l2)
    elapsed = time.perf_counter() - started
    payload = {
        "config": {k: v for k, v in vars(config).items() if k != "featurizer"},
        "ease_l2": ease_l2,
        "coldstart": cold,
        "standard": standard,
        "genre_agreement": genres,
        "targets": {**cold["targets"], **standard["targets"]},
        "total_seconds": elapsed,
    }
    body = [
        "## Item cold start (10% of items held out with all their ratings)\n",
        f"{cold['held_out_items']} held-out items, {cold['held_out_ratings']} ratings; each "
        "user who rated one ranks ALL held-out items from their training ratings. Chosen on "
        f"validation: {cold['chosen_on_validation']}.\n",
        markdown_table(cold["test"], ["method", f"recall@{K}", f"ndcg@{K}", "users"]),
        f"\nHybrid / random: nDCG@10 {cold['hybrid_over_random_ndcg']:.2f}x, recall@10 "
        f"{cold['hybrid_over_random_recall']:.2f}x. Popularity counted at training time is 0 "
        "for every held-out item, so it carries no information and its tie order is random; "
        "popularity predicted from content is the fair popularity baseline.\n",
        "\n## Standard protocol (PROTOCOL.md, seed 42)\n",
        f"Blend k chosen on the validation pair: {standard['blend_k']:g} (a k > 0 must beat "
        f"k = 0 by more than {BLEND_MARGIN} nDCG@10) "
        f"(validation nDCG@10 by k: {standard['validation_ndcg_by_blend_k']}).\n",
        markdown_table(
            standard["test"],
            ["model", "ndcg@10_all", "precision@10_all", "recall@10_all", "ndcg@10_liked"],
        ),
        f"\nBest collaborative elsewhere: {standard['best_collaborative_elsewhere']}.\n",
        "\n## Genre agreement of the 10 nearest neighbours (all items)\n",
        markdown_table(genres),
        "\nGenres are an input of the content model: its agreement is high by construction.\n",
        "\n## Targets\n",
        "\n".join(f"- {name}: {'yes' if ok else 'NO'}" for name, ok in payload["targets"].items()),
        f"\n\nTotal time {elapsed:.0f} s.\n",
    ]
    write_result(
        "coldstart_items",
        payload,
        "\n".join(body),
        seed=PROTOCOL_SEED,
        title="Item cold start: content-only and hybrid recommendations",
    )
    log.info("targets: %s", payload["targets"])
