"""``deeprec train autoencoder`` and ``deeprec plot embeddings|reconstructions``."""

from __future__ import annotations

import io
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer

from app.cli.common import (
    apply_params,
    fail,
    fit_option,
    fit_summary,
    load_ratings,
    print_json,
)
from app.cli.plot import app as plot_app
from app.cli.train import app as train_app
from ml.checkpoint import save_checkpoint
from ml.data.digits import load_images as load_image_dataset
from ml.device import resolve_device
from ml.training.distributed import (
    init_from_env,
    launched_by_torchrun,
    relaunch_with_torchrun,
    shutdown,
)
from ml.training.fit import check_fit

log = logging.getLogger(__name__)

TARGETS = ("ratings", "digits")


def _options(
    seed: int, epochs: int | None, default_epochs: int, device: str, progress: bool
) -> object:
    from ml.training.base import TrainingOptions

    if epochs is not None and epochs <= 0:
        fail(f"--epochs must be positive, got {epochs}")
    return TrainingOptions(
        device=device, seed=seed, epochs=epochs or default_epochs, progress=progress
    )


def _save(checkpoint: object, out: Path, overwrite: bool) -> None:
    path = save_checkpoint(checkpoint, out, overwrite=overwrite)  # type: ignore[arg-type]
    print_json(
        {
            "checkpoint": str(path),
            "model_type": checkpoint.model_type,  # type: ignore[attr-defined]
            **checkpoint.metrics,  # type: ignore[attr-defined]
            **fit_summary(checkpoint.extra),  # type: ignore[attr-defined]
        }
    )


@train_app.command("autoencoder")
def train_autoencoder(
    out: Path = typer.Option(..., help="Checkpoint folder to write."),
    target: str = typer.Option("ratings", help="ratings (Mult-DAE ranking) or digits (images)."),
    variant: str = typer.Option(
        "",
        help="Comma-separated variants: plain, deep, sparse, sparse-l1, denoising, contractive. "
        "Default: the chosen Mult-DAE for ratings, 'denoising' for digits.",
    ),
    dataset: str = typer.Option("ml-100k", help="Ratings data set name (target ratings)."),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead."),
    images: str = typer.Option("digits", help="digits (8x8, built in) or mnist (target digits)."),
    images_path: Path | None = typer.Option(None, help="Folder of the MNIST files."),
    code_dim: int | None = typer.Option(None, help="Bottleneck width (overrides the default)."),
    seed: int = typer.Option(42, help="Training seed."),
    epochs: int | None = typer.Option(
        None,
        help="Epochs. Ratings: the ceiling (default 200); early stopping on a validation slice "
        "chooses, and every later fit reuses that count. Digits: the count (default 150).",
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    params_json: str | None = typer.Option(
        None, help='Config overrides, e.g. {"learning_rate": 0.001}.'
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing checkpoint folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    fit: str = fit_option(),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Data-parallel training processes for ratings (starts torchrun; Mult-DAE in "
        "DistributedDataParallel, gloo on CPU, NCCL on CUDA).",
    ),
) -> None:
    """Train the autoencoder on ratings (Mult-DAE, top-k ranking) or on digit images.

    ``--fit`` applies to ratings: with ``all`` (the default) the served Mult-DAE is fitted on
    every rating after the test-fold measurement, for the epochs early stopping chose."""
    from ml.models.autoencoder import (
        AutoencoderConfig,
        apply_variants,
        image_config,
        mult_dae_config,
    )
    from ml.training.autoencoder import (
        IMAGE_EPOCHS,
        RANKING_MAX_EPOCHS,
        train_images,
        train_ranking,
    )

    if target not in TARGETS:
        fail(f"unknown target {target!r}; choose ratings or digits")
    check_fit(fit)
    if code_dim is not None and code_dim <= 0:
        fail(f"--code-dim must be positive, got {code_dim}")
    if out.exists() and not overwrite:
        fail(f"{out}: already exists (pass --overwrite to replace it)")
    if target == "ratings":
        data = load_ratings(dataset, ratings)
        n_items = int(data.ratings["item_id"].nunique())
        config: AutoencoderConfig = mult_dae_config(n_items)
        default_epochs, default_variant = RANKING_MAX_EPOCHS, ""
    else:
        image_data = load_image_dataset(images, images_path)
        config = image_config(image_data.n_pixels)
        default_epochs, default_variant = IMAGE_EPOCHS, "denoising"
    config = apply_variants(config, variant or default_variant)
    if code_dim is not None:
        config = replace(config, hidden_layers=(*config.hidden_layers[:-1], code_dim))
    config = apply_params(config, params_json)
    options = _options(seed, epochs, default_epochs, device, progress)
    if nproc > 1 and target != "ratings":
        fail("--nproc applies to --target ratings")
    if nproc > 1 and not launched_by_torchrun():
        raise typer.Exit(relaunch_with_torchrun(nproc, sys.argv[1:]))
    if target == "ratings":
        ranks = init_from_env(resolve_device(device))
        try:
            checkpoint = train_ranking(
                data.ratings,
                config,
                options,  # type: ignore[arg-type]
                data_sha256=data.sha256,
                fit=fit,
            )
        finally:
            shutdown()
        if not ranks.is_main:  # rank 0 alone writes the checkpoint
            return
        checkpoint.extra["variant"] = variant or "mult-dae"
        checkpoint.extra["processes"] = ranks.size
    else:
        checkpoint = train_images(image_data, config, options)  # type: ignore[arg-type]
        checkpoint.extra["variant"] = variant or default_variant
    _save(checkpoint, out, overwrite)


@plot_app.command("embeddings")
def plot_embeddings(
    checkpoint: Path = typer.Option(..., help="A ratings checkpoint with item embeddings."),
    out: Path = typer.Option(..., help="PNG file to write."),
    method: str = typer.Option("pca", help="pca or autoencoder (2-D reduction)."),
    dataset: str = typer.Option("ml-100k", help="Data set for titles and genres."),
    ratings: Path | None = typer.Option(None, help="A ratings file or folder instead."),
    min_ratings: int = typer.Option(20, help="Draw only items with at least this many ratings."),
    labels: int = typer.Option(12, help="How many (most rated) titles to label."),
    seed: int = typer.Option(42, help="Seed of the autoencoder reduction."),
    normalize: bool = typer.Option(True, help="L2-normalise embeddings before reducing."),
) -> None:
    """Draw the item map: item embeddings reduced to 2-D, coloured by main genre."""
    from ml.inference import load_recommender
    from ml.inference.embeddings import (
        METHODS,
        embedding_map_png,
        main_genres,
        reduce,
        unit_rows,
    )

    if method not in METHODS:
        fail(f"unknown method {method!r}; choose pca or autoencoder")
    model = load_recommender(checkpoint, "cpu")
    if model.item_embeddings is None:
        fail(f"{checkpoint}: a {model.model_type} model has no item embeddings")
    data = load_ratings(dataset, ratings)
    embeddings = model.item_embeddings()  # type: ignore[misc]
    counts = data.ratings.groupby("item_id").size()
    ids = model.items.ids
    n_ratings = counts.reindex(ids).fillna(0).to_numpy()
    keep = np.flatnonzero(n_ratings >= min_ratings)
    if len(keep) < 3:
        fail(f"fewer than 3 items have {min_ratings} ratings; lower --min-ratings")
    chosen = embeddings[keep]
    if normalize:  # directions, as cosine neighbours see them (norms mostly track popularity)
        chosen = unit_rows(chosen)
    coords = reduce(chosen, 2, method, seed=seed)
    meta = data.items.set_index("item_id").reindex(ids[keep])
    genres = [list(g) if isinstance(g, list | tuple | np.ndarray) else [] for g in meta["genres"]]
    groups = main_genres(genres)
    # label well-known titles spread over the map: farthest-point picks among the top 15%
    by_popularity = np.argsort(-n_ratings[keep], kind="stable")
    pool = by_popularity[: max(labels, len(by_popularity) * 15 // 100)]
    labelled: list[int] = [int(pool[0])] if labels > 0 else []
    while 0 < len(labelled) < min(labels, len(pool)):
        gaps = np.linalg.norm(coords[pool, None, :2] - coords[None, labelled, :2], axis=2)
        labelled.append(int(pool[int(gaps.min(axis=1).argmax())]))
    titles = {i: str(meta["title"].iloc[i])[:28] for i in labelled}
    png = embedding_map_png(
        coords,
        groups,
        titles,
        title=f"{model.model_type} item embeddings, {method} to 2-D, by main genre",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    typer.echo(f"wrote {out} ({len(keep)} items)")


@plot_app.command("reconstructions")
def plot_reconstructions(
    checkpoint: Path = typer.Option(..., help="An image checkpoint (autoencoder, rbm, dbn)."),
    out: Path = typer.Option(..., help="PNG file to write."),
    noise: float = typer.Option(0.3, help="Corruption level."),
    kind: str = typer.Option("mask", help="mask (drop pixels) or gaussian."),
    n: int = typer.Option(10, help="How many held-out images."),
    images: str = typer.Option("digits", help="digits or mnist."),
    images_path: Path | None = typer.Option(None, help="Folder of the MNIST files."),
    seed: int = typer.Option(0, help="Seed of the corruption."),
) -> None:
    """Grid of held-out images: original, corrupted, reconstructed (one row each)."""
    from ml.inference import load_model
    from ml.inference.images import corrupt, images_to_png

    if not 1 <= n <= 100:
        fail(f"--n must lie in [1, 100], got {n}")
    model = load_model(checkpoint, "cpu")
    if not hasattr(model, "reconstruct"):
        fail(f"{checkpoint}: a {type(model).__name__} does not reconstruct images")
    data = load_image_dataset(images, images_path)
    if data.side != model.side:
        fail(f"{checkpoint}: the model is for {model.side}x{model.side} images, not {data.side}")
    picks = np.concatenate([np.flatnonzero(data.test_labels == d)[:1] for d in range(10)])
    originals = np.concatenate([data.test_images[picks], data.test_images])[:n]
    corrupted = corrupt(originals, noise, kind, seed=seed)  # type: ignore[arg-type]
    grid = np.concatenate([originals, corrupted, model.reconstruct(corrupted)])
    from PIL import Image, ImageDraw

    png = images_to_png(grid, data.side, columns=n)
    image = Image.open(io.BytesIO(png))
    scale = max(1, 48 // data.side)
    out.parent.mkdir(parents=True, exist_ok=True)
    big = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big)
    for row in (1, 2):  # thin separators between the three rows
        y = row * data.side * scale
        draw.line([(0, y), (big.width, y)], fill=128, width=max(1, scale // 8))
    big.save(out)
    typer.echo(f"wrote {out}: rows original / corrupted ({kind} {noise}) / reconstructed")
