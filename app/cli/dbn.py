"""``deeprec train dbn`` and ``deeprec train rbm-images``: image models on digits or MNIST."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from app.cli.common import apply_params, fail, print_json
from app.cli.gan import check_run, images_sha256, load_image_data
from app.cli.train import app as train_app
from ml.checkpoint import Checkpoint, save_checkpoint
from ml.inference.dbn import model_tensors
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
    from ml.training.dbn import reconstruction_mse, train_dbn  # training code only when training

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
    started = time.perf_counter()
    model, history = train_dbn(data.train_images, config, options, data.test_images)
    train_seconds = time.perf_counter() - started
    import torch

    test = torch.as_tensor(data.test_images, device=options.torch_device)
    metrics = {
        "train_seconds": train_seconds,
        "test_reconstruction_mse": reconstruction_mse(model, test),
        "layer_recon_error": [layer[-1]["recon_error"] for layer in history.layers],
    }
    checkpoint = Checkpoint(
        model_type="dbn",
        config=dataclasses.asdict(config),
        tensors=model_tensors(model),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={
            "dataset": data.name,
            "seed": seed,
            "device": str(options.torch_device),
            "history": history.as_dict(),
        },
    )
    save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json({"checkpoint": str(out), "model_type": "dbn", **metrics})


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
    from ml.training.dbn import train_rbm_images  # training code only when training

    check_run(epochs, out, overwrite)
    data = load_image_data(dataset, images_path)
    default = BernoulliRBMConfig(n_visible=data.n_pixels, n_hidden=256)
    config = apply_params(default, params_json, n_hidden=hidden)
    if config.n_visible != data.n_pixels:
        fail(f"n_visible must be {data.n_pixels} (the pixels), got {config.n_visible}")
    options = TrainingOptions(device=device, seed=seed, epochs=epochs, progress=progress)
    options.torch_device  # noqa: B018 - fail early on an unavailable device
    started = time.perf_counter()
    rbm, history = train_rbm_images(data.train_images, config, options, data.test_images)
    metrics = {
        "train_seconds": time.perf_counter() - started,
        "recon_error": history[-1]["recon_error"],
        "test_reconstruction_mse": history[-1]["val_recon_error"],
        "free_energy": history[-1]["free_energy"],
        "test_free_energy": history[-1]["val_free_energy"],
    }
    checkpoint = Checkpoint(
        model_type="rbm-images",
        config=dataclasses.asdict(config),
        tensors=model_tensors(rbm),
        data_sha256=images_sha256(data),
        metrics=metrics,
        extra={"dataset": data.name, "seed": seed, "history": history, "gibbs_steps": 500},
    )
    save_checkpoint(checkpoint, out, overwrite=overwrite)
    print_json({"checkpoint": str(out), "model_type": "rbm-images", **metrics})
