"""``deeprec plot``: pictures (embedding maps, reconstructions, samples), one command per kind."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import fail

app = typer.Typer(help="Draw pictures from trained models.", no_args_is_help=True)


@app.command("samples")
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
    from ml.inference import load_model
    from ml.inference.gan import grid_png

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
