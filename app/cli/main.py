"""The ``deeprec`` command line: data, database, training, evaluation, export, plots, benchmarks.

Each command group lives in its own module under ``app/cli/``; this module only assembles them
and turns expected failures (bad data, bad checkpoints, bad arguments) into one-line errors.
"""

from __future__ import annotations

import logging
import sys

import typer

# The hand-written train commands (autoencoder, rbm; train.HAND_WRITTEN) and the plot commands
# register on their groups when imported; every other family's train command is generated from
# ml.registry, and the train commands must be those ml.registry declares (checked below).
from app.cli import (  # noqa: F401
    autoencoder,
    baseline,
    data,
    db,
    evaluate,
    models,
    plot,
    rbm,
    recommend,
    serve,
    train,
)
from app.cli.common import run_cli

train.register_generated_commands()
train.check_commands_match_specs()

cli = typer.Typer(
    name="deeprec",
    help="DeepRec: recommendations from RBMs, autoencoders, DBNs and GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.add_typer(data.app, name="data")
cli.add_typer(db.app, name="db")
cli.add_typer(baseline.app, name="baseline")
cli.add_typer(train.app, name="train")
cli.add_typer(plot.app, name="plot")
cli.add_typer(models.app, name="models")
cli.command("evaluate")(evaluate.evaluate)
cli.command("recommend")(recommend.recommend)
cli.command("bootstrap")(serve.bootstrap)
cli.command("serve")(serve.serve)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    run_cli(cli)


if __name__ == "__main__":
    main()
