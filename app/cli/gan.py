"""``deeprec train gan`` and ``deeprec plot samples`` (GAN or DBN checkpoints)."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import apply_params, fail, print_json
from app.cli.plot import app as plot_app
from app.cli.train import app as train_app
from ml.checkpoint import save_checkpoint
from ml.data.digits import ImageDataset, load_images
from ml.inference import load_model
from ml.inference.gan import grid_png
from ml.models.gan import GANConfig
from ml.training.base import TrainingOptions

__all__ = ["check_run", "load_image_data"]  # app.cli.dbn shares these


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
        "trains the self-conditioned unconditional one for 50).",
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    params_json: str | None = typer.Option(
        None,
        help="GANConfig overrides as JSON, e.g. '{\"latent_dim\": 16}'; an unconditional GAN "
        "learns far faster self-conditioned: '{\"n_clusters\": 20}' with --epochs 50.",
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing checkpoint folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a GAN (an MLP for 8x8 digits, DCGAN for 28x28) and write a `gan` checkpoint."""
    from ml.training.gan import train_gan_checkpoint  # training code only when training

    check_run(epochs, out, overwrite)
    data = load_image_data(dataset, images_path)
    config = apply_params(GANConfig(side=data.side), params_json, conditional=conditional)
    if config.side != data.side:
        fail(f"side={config.side} does not match the {data.name} images ({data.side})")
    options = TrainingOptions(device=device, seed=seed, epochs=epochs, progress=progress)
    options.torch_device  # noqa: B018 - fail early on an unavailable device
    checkpoint = train_gan_checkpoint(data, config, options)
    save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json({"checkpoint": str(out), "model_type": "gan", **checkpoint.metrics})


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
