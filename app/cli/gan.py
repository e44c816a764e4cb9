"""``deeprec train gan`` and ``deeprec plot samples`` (GAN or DBN checkpoints)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import typer

from app.cli.common import apply_params, fail, print_json
from app.cli.plot import app as plot_app
from app.cli.train import app as train_app
from ml.checkpoint import Checkpoint, save_checkpoint
from ml.data.digits import ImageDataset, load_images
from ml.inference import load_model
from ml.inference.gan import GANSampler, gan_tensors, grid_png
from ml.models.gan import GANConfig
from ml.training.base import TrainingOptions


def images_sha256(data: ImageDataset) -> str:
    """A fingerprint of an image data set: sha256 over its train/test pixels and labels."""
    digest = hashlib.sha256()
    for part in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def load_image_data(dataset: str, images_path: Path | None) -> ImageDataset:
    if dataset not in ("digits", "mnist"):
        fail(f"unknown image data set {dataset!r}; choose digits or mnist")
    return load_images(dataset, images_path)


def check_run(epochs: int, out: Path, overwrite: bool) -> None:
    if epochs < 1:
        fail(f"--epochs must be at least 1, got {epochs}")
    if out.exists() and not overwrite:
        fail(f"{out}: already exists (pass --overwrite to replace it)")


@train_app.command("gan")
def train_gan_command(
    out: Path = typer.Option(..., help="Checkpoint folder to write."),
    dataset: str = typer.Option(
        "digits", "--dataset", "--images", help="digits (8x8, built in) or mnist (28x28)."
    ),
    images_path: Path | None = typer.Option(None, help="MNIST IDX folder or mnist.npz."),
    conditional: bool = typer.Option(
        False, "--conditional/--no-conditional", help="Condition on the digit label."
    ),
    seed: int = typer.Option(42, help="Seed of initialisation, batches and noise."),
    epochs: int = typer.Option(
        60,
        help="Passes over the training images (60: the conditional GAN's setting; the benchmark "
        "trains the unconditional one for 1000 with a larger, slower config).",
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    params_json: str | None = typer.Option(
        None, help="GANConfig overrides as JSON, e.g. '{\"latent_dim\": 16}'."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing checkpoint folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a GAN (an MLP for 8x8 digits, DCGAN for 28x28) and write a `gan` checkpoint."""
    from ml.training.gan import train_gan  # training code only when training

    check_run(epochs, out, overwrite)
    data = load_image_data(dataset, images_path)
    config = apply_params(GANConfig(side=data.side), params_json, conditional=conditional)
    if config.side != data.side:
        fail(f"side={config.side} does not match the {data.name} images ({data.side})")
    options = TrainingOptions(device=device, seed=seed, epochs=epochs, progress=progress)
    options.torch_device  # noqa: B018 - fail early on an unavailable device
    started = time.perf_counter()
    model, history = train_gan(data.train_images, data.train_labels, config, options)
    train_seconds = time.perf_counter() - started
    sampler = GANSampler(model, options.torch_device)
    test_labels = data.test_labels if config.conditional else None
    d_test_real = float(sampler.discriminate(data.test_images, test_labels).mean())
    fake = sampler.sample(len(data.test_images), seed=0)
    fake_labels = np.arange(len(fake)) % config.n_classes if config.conditional else None
    metrics = {
        "train_seconds": train_seconds,
        "final_d_loss": history.d_loss[-1],
        "final_g_loss": history.g_loss[-1],
        "d_prob_test_real": d_test_real,
        "d_prob_generated": float(sampler.discriminate(fake, fake_labels).mean()),
    }
    checkpoint = Checkpoint(
        model_type="gan",
        config=dataclasses.asdict(config),
        tensors=gan_tensors(model),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={
            "dataset": data.name,
            "seed": seed,
            "epochs": epochs,
            "device": str(options.torch_device),
            "history": history.as_dict(),
        },
    )
    save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json({"checkpoint": str(out), "model_type": "gan", **metrics})


@plot_app.command("samples")
def plot_samples(
    checkpoint: Path = typer.Option(..., help="A gan or dbn checkpoint folder."),
    out: Path = typer.Option(..., help="PNG file to write."),
    n: int = typer.Option(100, help="Number of samples."),
    seed: int = typer.Option(0, help="Sampling seed."),
    label: int | None = typer.Option(None, help="Digit to draw (conditional GAN only)."),
    columns: int | None = typer.Option(None, help="Images per row (default: square grid)."),
    scale: int = typer.Option(4, help="Screen pixels per image pixel."),
    device: str = typer.Option("cpu", help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Draw a grid of generated images from a GAN or DBN checkpoint."""
    if n < 1 or scale < 1 or (columns is not None and columns < 1):
        fail("--n, --scale and --columns must be positive")
    model = load_model(checkpoint, device)
    if not hasattr(model, "sample"):
        fail(f"{checkpoint}: a {model.model_type!r} checkpoint cannot generate samples")
    if label is not None:
        if not getattr(model, "conditional", False):
            fail(f"{checkpoint}: --label needs a conditional GAN")
        images = model.sample(n, seed, label=label)
    else:
        images = model.sample(n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(grid_png(images, model.side, columns=columns, scale=scale))
    typer.echo(f"wrote {out} ({n} samples, seed {seed})")
