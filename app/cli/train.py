"""``deeprec train MODEL``: one command per model family, generated from ``ml.registry``.

Every family's command is built from its ``ModelSpec`` (:func:`spec_command`): the options its
data kind needs, ``--epochs``, ``--seed``, ``--device``, ``--params-json`` (any config field),
the spec's ``flags`` (a few fields as options of their own), ``--overwrite``, ``--progress``,
and ``--fit`` for the ratings families that fit twice. The families in :data:`HAND_WRITTEN`
keep commands of their own, with options no config field holds.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from app.core.params import config_value
from ml.registry import SPECS, Flag, ModelSpec

app = typer.Typer(help="Train a model and write a checkpoint.", no_args_is_help=True)

# Commands written by hand (``app.cli.main`` imports their modules): ``rbm`` (``--nproc`` starts
# torchrun) and ``autoencoder`` (``--target`` picks one of two families; ``--variant``).
HAND_WRITTEN = frozenset({"rbm", "autoencoder"})


@app.callback()
def train_group(
    job_id: int | None = typer.Option(
        None,
        "--job-id",
        envvar="DEEPREC_JOB_ID",
        help="Record each epoch's progress in this training job's row (set by retrain jobs).",
    ),
) -> None:
    """Train a model and write a checkpoint."""
    if job_id is None:
        return
    from app.cli.common import settings
    from app.cli.progress import JobProgress
    from ml.training.base import install_epoch_hook

    install_epoch_hook(JobProgress(settings().resolved_database_url, job_id))


# ------------------------------------------------------------------------- generated commands
def _option(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    info = typer.Option(default, *decls, help=help)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation
    )


def _data_options(spec: ModelSpec) -> list[inspect.Parameter]:
    if spec.data == "images":
        return [
            _option(
                "dataset", str, "digits", "--dataset", "--images",
                help="digits (8x8, built in) or mnist (28x28).",
            ),
            _option("images_path", Path | None, None, help="MNIST IDX folder or mnist.npz."),
        ]  # fmt: skip
    options = [
        _option("dataset", str, "ml-100k", help="Data set name (ignored when --ratings is given)."),
        _option("ratings", Path | None, None, help="A ratings file or MovieLens folder instead."),
    ]
    if spec.uses_items:
        options.append(
            _option(
                "items", Path | None, None,
                help="Item metadata CSV (item_id,title,year,genres,description); default: the "
                "data set's.",
            )
        )  # fmt: skip
    return options


def _field_type(config: Any, name: str) -> Any:
    """The type of a config field, ``None`` dropped from an optional one (``float | None``)."""
    hint = typing.get_type_hints(type(config))[name]
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint
    return next(a for a in typing.get_args(hint) if a is not type(None))


def _flag_option(flag: Flag, kind: Any) -> inspect.Parameter:
    """``--flag``, typed after its config field (a tuple: comma-separated integers)."""
    dashed = "--" + flag.option.replace("_", "-")
    if kind is bool:
        return _option(
            flag.option, bool | None, None, f"{dashed}/--no-{dashed[2:]}", help=flag.help
        )
    kind = str if typing.get_origin(kind) is tuple else kind
    return _option(flag.option, kind | None, None, dashed, help=flag.help)


def _parameters(spec: ModelSpec) -> list[inspect.Parameter]:
    base = spec.config()
    epochs_help = (
        f"Epochs (config field {spec.epochs_field}; "
        f"default {config_value(base, spec.epochs_field)})."
        if spec.epochs_field
        else f"Epochs (default {spec.epochs})."
        if spec.epochs
        else "Accepted for a uniform interface; this model fits in closed form."
    )
    name = type(base).__name__
    return [
        _option("out", Path, ..., help="Checkpoint folder to write."),
        *_data_options(spec),
        _option("seed", int, 42, help="Seed of the run's generator (initialisation, batches)."),
        _option("epochs", int | None, None, help=epochs_help),
        _option("device", str, "auto", help="auto, cpu, cuda or cuda:N."),
        _option(
            "params_json", str | None, None, "--params-json",
            help=f"{name} overrides as JSON (any field), e.g. '{{\"batch_size\": 32}}'.",
        ),
        *(_flag_option(flag, _field_type(base, flag.field)) for flag in spec.flags),
        _option("overwrite", bool, False, help="Replace an existing checkpoint folder."),
        _option("progress", bool, True, help="Show a progress bar."),
        *([_fit_option()] if spec.data == "ratings" else []),
    ]  # fmt: skip


def _fit_option() -> inspect.Parameter:
    from app.cli.common import FIT_HELP

    return _option("fit", str, "all", help=FIT_HELP)


def _parse_flag(flag: Flag, value: Any, config: Any) -> Any:
    if typing.get_origin(_field_type(config, flag.field)) is not tuple:
        return value
    from app.cli.common import fail

    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        example = ",".join(str(v) for v in getattr(config, flag.field))
        fail(f"--{flag.option} must be comma-separated integers like {example}, got {value!r}")


def _load_data(spec: ModelSpec, values: dict[str, Any]) -> Any:
    from app.cli.common import load_image_data, load_ratings

    if spec.data == "images":
        return load_image_data(values["dataset"], values["images_path"])
    data = load_ratings(values["dataset"], values["ratings"])
    if spec.uses_items and values["items"] is not None:
        from ml.data.items import read_items_csv

        data = dataclasses.replace(data, items=read_items_csv(values["items"]))
    return data


def train_from_spec(spec: ModelSpec, values: dict[str, Any]) -> None:
    """What every generated command does with its options' ``values``: check them, load the
    data, build the config, train through the spec, save and print the checkpoint's figures."""
    from app.cli.common import apply_params, fail, save_and_report
    from ml.device import resolve_device
    from ml.training.base import TrainingOptions
    from ml.training.fit import check_fit

    out, epochs = values["out"], values["epochs"]
    if epochs is not None and epochs < 1:
        fail(f"--epochs must be positive, got {epochs}")
    if out.exists() and not values["overwrite"]:
        fail(f"{out}: already exists (pass --overwrite to replace it)")
    resolve_device(values["device"])  # an unavailable device fails before any work
    check_fit(values.get("fit", "all"))
    data = _load_data(spec, values)
    base = spec.config(data)
    overrides = {
        flag.field: _parse_flag(flag, values[flag.option], base)
        for flag in spec.flags
        if values[flag.option] is not None
    }
    if spec.epochs_field:
        overrides[spec.epochs_field] = epochs
    config = apply_params(base, values["params_json"], **overrides)
    run_epochs = config_value(config, spec.epochs_field) if spec.epochs_field else epochs
    options = TrainingOptions(
        device=values["device"],
        seed=values["seed"],
        epochs=run_epochs or spec.epochs or 1,
        progress=values["progress"],
    )
    checkpoint = spec.trainer()(data, config, options, fit=values.get("fit", "all"))
    save_and_report(checkpoint, out, overwrite=values["overwrite"])


def spec_command(spec: ModelSpec) -> Callable[..., None]:
    """The ``deeprec train`` command of ``spec``, its options derived from the spec."""

    def command(**values: Any) -> None:
        train_from_spec(spec, values)

    parameters = _parameters(spec)
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__name__ = spec.command.replace("-", "_")
    summary = inspect.cleandoc(spec.trainer().__doc__ or "").split("\n\n")[0]
    command.__doc__ = " ".join(summary.split())
    return command


def register_generated_commands(
    group: typer.Typer = app, specs: Iterable[ModelSpec] = SPECS
) -> None:
    """A generated command for every family whose command is not written by hand."""
    for spec in specs:
        if spec.command not in HAND_WRITTEN and spec.command not in command_names(group):
            group.command(spec.command)(spec_command(spec))


# ------------------------------------------------------------------------------ the agreement
def command_names(group: typer.Typer = app) -> set[str]:
    """The commands registered on ``group`` so far."""
    return {
        c.name or (c.callback.__name__ if c.callback else "") for c in group.registered_commands
    }


def check_commands_match_specs(
    group: typer.Typer = app, specs: Iterable[ModelSpec] = SPECS
) -> None:
    """Refuse to start a CLI whose ``deeprec train`` commands and ``ml.registry`` disagree: a
    family declared without its command (the retrain job would run a command that does not
    exist), or a command that makes no declared family (its checkpoints would never load)."""
    registered, declared = command_names(group), {spec.command for spec in specs}
    if registered != declared:
        raise RuntimeError(
            "`deeprec train` commands and ml.registry disagree: "
            f"declared without a command: {sorted(declared - registered)}; "
            f"commands without a spec: {sorted(registered - declared)}"
        )
