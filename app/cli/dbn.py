"""``deeprec train dbn`` and ``deeprec train rbm-images``: image models on digits or MNIST.

Options are parsed here; training, evaluation and the checkpoint are ``ml.training.dbn``'s."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import apply_params, fail, print_json
from app.cli.gan import check_run, load_image_data
from app.cli.train import app as train_app
from ml.checkpoint import save_checkpoint
from ml.models.dbn import DBNConfig
from ml.models.rbm import BernoulliRBMConfig
from ml.training.base import TrainingOptions


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        layers = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        fail(f"--layers must be comma-separated unit counts like 64,256,64,16, got {text!r}")
    return layers


@train_app.command("dbn")
def train_dbn_command(
    out: Path = typer.Option(..., help="Checkpoint folder to write."),
    layers: str | None = typer.Option(
        None, help="Unit counts from the pixels up, e.g. 64,256,64,16 (first = pixels)."
    ),
    dataset: str = typer.Option(
        "digits", "--dataset", "--images", help="digits (8x8, built in) or mnist (28x28)."
    ),
    images_path: Path | None = typer.Option(None, help="MNIST IDX folder or mnist.npz."),
    seed: int = typer.Option(42, help="Seed of initialisation, batches and Gibbs sampling."),
    epochs: int | None = typer.Option(None, help="CD epochs per layer (default 100)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    params_json: str | None = typer.Option(
        None, help="DBNConfig overrides as JSON, e.g. '{\"finetune_epochs\": 50}'."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing checkpoint folder."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """CD-k pre-training layer by layer, fine-tuning of the unrolled autoencoder; writes `dbn`."""
    from ml.training.dbn import dbn_checkpoint  # training code only when training

    check_run(epochs or 1, out, overwrite)
    data = load_image_data(dataset, images_path)
    default = DBNConfig(layers=(data.n_pixels, 256, 64, 16))
    config = apply_params(default, params_json, layers=parse_layers(layers), pretrain_epochs=epochs)
    if config.layers[0] != data.n_pixels:
        fail(f"the first layer must have {data.n_pixels} units (the pixels), got {config.layers}")
    options = TrainingOptions(
        device=device, seed=seed, epochs=config.pretrain_epochs, progress=progress
    )
    options.torch_device  # noqa: B018 - fail early on an unavailable device
    checkpoint = dbn_checkpoint(data, config, options)
    save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json({"checkpoint": str(out), "model_type": "dbn", **checkpoint.metrics})


@train_app.command("rbm-images")
def train_rbm_images_command(
    out: Path = typer.Option(..., help="Checkpoint folder to write."),
    hidden: int | None = typer.Option(None, help="Hidden units (default 256)."),
    dataset: str = typer.Option(
        "digits", "--dataset", "--images", help="digits (8x8, built in) or mnist (28x28)."
    ),
    images_path: Path | None = typer.Option(None, help="MNIST IDX folder or mnist.npz."),
    seed: int = typer.Option(42, help="Seed of initialisation, batches and Gibbs sampling."),
    epochs: int = typer.Option(50, help="CD epochs."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    params_json: str | None = typer.Option(
        None, help="BernoulliRBMConfig overrides as JSON, e.g. '{\"cd_k\": 3}'."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing checkpoint folder."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train one Bernoulli RBM on images with CD-k; an `rbm-images` checkpoint."""
    from ml.training.dbn import rbm_images_checkpoint  # training code only when training

    check_run(epochs, out, overwrite)
    data = load_image_data(dataset, images_path)
    default = BernoulliRBMConfig(n_visible=data.n_pixels, n_hidden=256)
    config = apply_params(default, params_json, n_hidden=hidden)
    if config.n_visible != data.n_pixels:
        fail(f"n_visible must be {data.n_pixels} (the pixels), got {config.n_visible}")
    options = TrainingOptions(device=device, seed=seed, epochs=epochs, progress=progress)
    options.torch_device  # noqa: B018 - fail early on an unavailable device
    checkpoint = rbm_images_checkpoint(data, config, options)
    save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json({"checkpoint": str(out), "model_type": "rbm-images", **checkpoint.metrics})
