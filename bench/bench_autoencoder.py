"""Autoencoder family on the protocol: Mult-DAE ranking, I-AutoRec ratings, embeddings, digits.

Writes bench/results/autoencoder.{json,md}. Every configuration here was chosen on the
validation pair (``protocol_split(r, validation_seed=7)``; the sweep is
``bench/tune_autoencoder.py``); the figures are on the test fold, seed 42. ``--quick`` skips the
RBM row (it trains the RBM with its own chosen configuration, which takes a while on a CPU).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from bench.common import markdown_table, median, timed, write_result
from ml.data.digits import load_images
from ml.data.fetch import load_dataset
from ml.data.splits import PROTOCOL_SEED, VALIDATION_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating
from ml.inference.embeddings import autoencoder_reduce, genre_agreement, pca
from ml.models.autoencoder import apply_variants, image_config, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.models.baselines import EASE, EASEConfig, Popularity
from ml.training.autoencoder import (
    IMAGE_EPOCHS,
    RANKING_EPOCHS,
    fit_autoencoder,
    image_metrics,
    score_rows,
)
from ml.training.autorec import (
    AUTOREC_EPOCHS,
    fit_autorec,
    item_matrix,
    predict_fold_in,
    rmse_known_users,
)
from ml.training.base import TrainingOptions
from tests.conftest import TEST_DATA_DIR

log = logging.getLogger(__name__)
OPTIONS = TrainingOptions(device="cpu", seed=PROTOCOL_SEED, progress=False)
RANK_COLUMNS = [
    "model",
    "ndcg@10_all",
    "precision@10_all",
    "recall@10_all",
    "map@10_all",
    "ndcg@10_liked",
    "coverage",
    "rmse",
    "train_s",
    "score_all_users_s",
]
NOISE = 0.3
CODE_DIMS = (2, 8, 16)


def _score_time(score: Any, train: sp.csr_matrix) -> float:
    _, times = timed(lambda: score(train), 3)
    return median(times)


def ranking_rows(ratings: Any, quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    split = protocol_split(ratings, seed=PROTOCOL_SEED)
    valid = protocol_split(ratings, seed=PROTOCOL_SEED, validation_seed=VALIDATION_SEED)
    n_items = split.train.shape[1]
    config = mult_dae_config(n_items)
    options = replace(OPTIONS, epochs=RANKING_EPOCHS)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"mult_dae_config": config.to_dict(), "epochs": RANKING_EPOCHS}

    vfit = fit_autoencoder(valid.train, config, options)
    extra["mult_dae_validation_ndcg@10_all"] = evaluate_ranking(
        lambda r: score_rows(vfit.model, r), valid.train, valid.test
    )["ndcg@10_all"]
    extra["ease_validation_ndcg@10_all"] = evaluate_ranking(
        EASE.fit(valid.train, EASEConfig(800.0)).score, valid.train, valid.test
    )["ndcg@10_all"]
    fit = fit_autoencoder(split.train, config, options)
    dae_score = lambda r: score_rows(fit.model, r)  # noqa: E731
    rows.append(
        {
            "model": f"Mult-DAE ({n_items}-{config.hidden[0]}-{n_items}, dropout "
            f"{config.noise_level}, {RANKING_EPOCHS} epochs)",
            **evaluate_ranking(dae_score, split.train, split.test),
            "train_s": fit.train_seconds,
            "score_all_users_s": _score_time(dae_score, split.train),
        }
    )

    ar_config = AutoRecConfig(n_users=split.train.shape[0])
    ar = fit_autorec(split.train, ar_config, replace(OPTIONS, epochs=AUTOREC_EPOCHS))
    ar_predict = lambda r: predict_fold_in(ar.model, ar.item_codes, r)  # noqa: E731
    rating = evaluate_rating(ar_predict, split.train, split.test)
    items = item_matrix(split.train, torch.device("cpu"))
    extra["autorec"] = {
        "config": ar_config.to_dict(),
        "epochs": AUTOREC_EPOCHS,
        "rmse_fold_in": rating["rmse"],
        "mae_fold_in": rating["mae"],
        "rmse_trained_rows": rmse_known_users(ar.model, items, split.test),
        "train_s": ar.train_seconds,
    }
    rows.append(
        {
            "model": f"I-AutoRec (k={ar_config.hidden}, lambda={ar_config.l2:g}; fold-in scores)",
            **evaluate_ranking(ar_predict, split.train, split.test),
            "rmse": rating["rmse"],
            "train_s": ar.train_seconds,
            "score_all_users_s": _score_time(ar_predict, split.train),
        }
    )

    for name, make in (
        ("popularity", lambda: Popularity.fit(split.train)),
        ("EASE (l2=300)", lambda: EASE.fit(split.train, EASEConfig(300.0))),
        ("EASE (l2=800, chosen on validation)", lambda: EASE.fit(split.train, EASEConfig(800.0))),
    ):
        started = time.perf_counter()
        baseline = make()
        seconds = time.perf_counter() - started
        rows.append(
            {
                "model": name,
                **evaluate_ranking(baseline.score, split.train, split.test),
                "train_s": seconds,
                "score_all_users_s": _score_time(baseline.score, split.train),
            }
        )
    if not quick:
        rows.append(rbm_row(ratings))
    extra["fit"] = {"mult_dae": fit, "autorec": ar, "split": split}
    return rows, extra


def rbm_row(ratings: Any) -> dict[str, Any]:
    try:
        from ml.models.rbm import RBMConfig
        from ml.training.rbm import train_rbm_checkpoint
    except ImportError:  # the RBM has not landed
        return {"model": "RBM (not available)"}
    dataset = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    ckpt = train_rbm_checkpoint(dataset, RBMConfig(), OPTIONS)
    m = ckpt.metrics
    return {"model": "RBM (its chosen configuration)", **m, "train_s": m.get("train_seconds")}


def embedding_rows(dataset: Any, fits: dict[str, Any]) -> list[dict[str, Any]]:
    split = fits["split"]
    meta = dataset.items.set_index("item_id").reindex(split.items.ids)
    genres = [list(g) if isinstance(g, list | tuple | np.ndarray) else [] for g in meta["genres"]]
    counts = np.asarray((split.train != 0).sum(axis=0)).ravel()
    popular = np.flatnonzero(counts >= 20)
    dae = fits["mult_dae"].model.item_embeddings().numpy()  # (I, 200)
    item_vectors = (split.train != 0).astype(np.float64).T.toarray()  # (I, U)
    candidates: list[tuple[str, np.ndarray]] = [
        ("Mult-DAE item embeddings (200-d, decoder weights)", dae),
        ("I-AutoRec item codes (500-d)", fits["autorec"].item_codes.numpy()),
        ("PCA of item rating vectors (200-d)", pca(item_vectors, 200)),
    ]
    for dims in (2, 3):
        candidates.append((f"Mult-DAE embeddings -> PCA {dims}-d", pca(dae, dims)))
        candidates.append(
            (f"Mult-DAE embeddings -> autoencoder {dims}-d", autoencoder_reduce(dae, dims))
        )
    rows = []
    for name, emb in candidates:
        everyone = genre_agreement(emb, genres)
        frequent = genre_agreement(emb[popular], [genres[i] for i in popular])
        rows.append(
            {
                "embedding": name,
                "agreement@10": everyone.neighbours,
                "random": everyone.random,
                "ratio": everyone.ratio,
                "ratio (items >= 20 ratings)": frequent.ratio,
                "shares a genre@10": everyone.shares_genre,
                "shares a genre, random": everyone.shares_genre_random,
            }
        )
    return rows


def image_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = load_images("digits")
    options = replace(OPTIONS, epochs=IMAGE_EPOCHS)
    base = image_config(data.n_pixels)
    denoise_rows = []
    for name, config in (
        ("plain AE (32 code)", base),
        ("denoising AE (32 code, mask 0.3)", apply_variants(base, "denoising")),
    ):
        fit = fit_autoencoder(data.train_images, config, options)
        m = image_metrics(fit.model, data.test_images, noise=NOISE)
        corrupted, denoised = m[f"mse_corrupted_input@{NOISE}"], m[f"mse_denoised@{NOISE}"]
        denoise_rows.append(
            {
                "model": name,
                "mse clean": m["mse"],
                "mse corrupted input": corrupted,
                "mse reconstructed from corrupted": denoised,
                "cut": 1 - denoised / corrupted,
                "train_s": fit.train_seconds,
            }
        )
    train, test = data.train_images, data.test_images
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    dim_rows = []
    for dims in CODE_DIMS:
        comps = vt[:dims]  # (d, 64)
        pca_recon = np.clip((test - mean) @ comps.T @ comps + mean, 0, 1)
        config = apply_variants(replace(base, hidden=(dims,)), "deep")
        fit = fit_autoencoder(train, config, options)
        ae_recon = fit.model.reconstruct(torch.from_numpy(test)).numpy()
        dim_rows.append(
            {
                "code dims": dims,
                "AE mse": float(((ae_recon - test) ** 2).mean()),
                "AE layers": "64-" + "-".join(map(str, config.hidden)) + "-...-64",
                "PCA mse": float(((pca_recon - test) ** 2).mean()),
                "AE train_s": fit.train_seconds,
            }
        )
    return denoise_rows, dim_rows


def main() -> None:
    quick = "--quick" in sys.argv
    dataset = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    ranking, extra = ranking_rows(dataset.ratings, quick)
    fits = extra.pop("fit")
    embeddings = embedding_rows(dataset, fits)
    denoise, dims = image_rows()
    dae_row = ranking[0]
    denoising = denoise[1]
    ar = extra["autorec"]
    targets = {
        "mult_dae_ndcg@10_all >= 0.47": dae_row["ndcg@10_all"] >= 0.47,
        "autorec_rmse <= 0.92 (served fold-in)": ar["rmse_fold_in"] <= 0.92,
        "autorec_rmse <= 0.92 (trained rows)": ar["rmse_trained_rows"] <= 0.92,
        "genre agreement >= 2x random (Mult-DAE)": embeddings[0]["ratio"] >= 2,
        "genre agreement >= 2x random (PCA 200-d)": embeddings[2]["ratio"] >= 2,
        "genre agreement >= 2x random (Mult-DAE, items >= 20 ratings)": embeddings[0][
            "ratio (items >= 20 ratings)"
        ]
        >= 2,
        "genre agreement >= 2x random (PCA 200-d, items >= 20 ratings)": embeddings[2][
            "ratio (items >= 20 ratings)"
        ]
        >= 2,
        "denoising cuts corrupted-input mse by half": denoising["cut"] >= 0.5,
    }
    md = [
        "## Ranking on the test fold (PROTOCOL.md, seed 42)\n",
        markdown_table(ranking, RANK_COLUMNS),
        f"\nMult-DAE validation nDCG@10 (all) of the chosen configuration: "
        f"{extra['mult_dae_validation_ndcg@10_all']:.4f} (seed 42; EASE l2=800 on validation: "
        f"{extra['ease_validation_ndcg@10_all']:.4f}).\n",
        "\n## I-AutoRec rating prediction (test fold)\n",
        markdown_table(
            [
                {
                    "prediction": "fold-in (ridge on item codes; what the service answers)",
                    "rmse": ar["rmse_fold_in"],
                    "mae": ar["mae_fold_in"],
                },
                {
                    "prediction": "trained users' output rows (Sedhain eq. 1)",
                    "rmse": ar["rmse_trained_rows"],
                },
            ]
        ),
        "\n## Item embeddings: genre agreement of the 10 nearest neighbours (cosine)\n",
        "Agreement = mean genre Jaccard similarity of an item and its neighbour; random = the "
        "same over all other items.\n\n",
        markdown_table(embeddings),
        "\n## Digits (held-out 8x8 images): denoising, 30% of pixels dropped\n",
        markdown_table(denoise),
        "\n## Digits: reconstruction MSE per pixel vs code size, autoencoder vs PCA\n",
        markdown_table(dims),
        "\n## Targets\n",
        markdown_table([{"target": k, "met": v} for k, v in targets.items()]),
    ]
    payload = {
        "ranking": ranking,
        "extra": extra,
        "embeddings": embeddings,
        "denoising": denoise,
        "code_dims": dims,
        "targets": targets,
    }
    path = write_result(
        "autoencoder",
        payload,
        "".join(md),
        device="cpu",
        seed=PROTOCOL_SEED,
        title="Autoencoder family on MovieLens-100K and digits",
    )
    print(path)


if __name__ == "__main__":
    main()
