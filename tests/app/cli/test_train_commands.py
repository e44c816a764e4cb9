"""`deeprec train` has one command for each family ml.registry declares, and no other; the
commands of all but the hand-written ones are generated from the specs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli.main import cli  # noqa: F401 - registers every family's train command
from app.cli.train import (
    HAND_WRITTEN,
    check_commands_match_specs,
    command_names,
    register_generated_commands,
    spec_command,
)
from app.cli.train import app as train_app
from ml.registry import SPECS
from tests.app.cli.runner import deeprec_in_process
from tests.conftest import planted_frame


def test_the_cli_has_exactly_the_declared_train_commands() -> None:
    assert command_names(train_app) == {spec.command for spec in SPECS}
    check_commands_match_specs()


def test_a_family_without_its_command_is_refused() -> None:
    extra = dataclasses.replace(SPECS[0], name="new-family", train_words=("new-family",))
    with pytest.raises(RuntimeError, match=r"declared without a command: \['new-family'\]"):
        check_commands_match_specs(train_app, [*SPECS, extra])


def test_a_command_without_a_family_is_refused() -> None:
    group = typer.Typer()
    for name in sorted({spec.command for spec in SPECS} | {"orphan"}):
        group.command(name)(lambda: None)
    with pytest.raises(RuntimeError, match=r"commands without a spec: \['orphan'\]"):
        check_commands_match_specs(group, SPECS)


def test_a_declared_family_gets_a_generated_command(tmp_path: Path) -> None:
    """No hand wiring: a spec alone yields a `deeprec train` command with the common options,
    its flags, and --params-json over any config field."""
    ease = next(spec for spec in SPECS if spec.name == "ease")
    new = dataclasses.replace(ease, name="ease-copy", train_words=("ease-copy",))
    group = typer.Typer()
    group.callback()(lambda: None)
    register_generated_commands(group, [new])
    assert command_names(group) == {"ease-copy"}
    ratings = tmp_path / "ratings.csv"
    planted_frame().to_csv(ratings, index=False)
    out = tmp_path / "ckpt"
    args = ["ease-copy", "--ratings", str(ratings), "--out", str(out), "--l2", "7"]
    done = CliRunner().invoke(group, [*args, "--params-json", '{"k": 5}', "--fit", "train"])
    assert done.exit_code == 0, done.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["l2"] == 7.0 and "ndcg@5_all" in manifest["metrics"]
    assert manifest["extra"]["fit"] == "train"
    again = CliRunner().invoke(group, args)
    assert again.exit_code != 0 and "already exists" in str(again.exception)


def test_generated_options_follow_the_spec() -> None:
    names = {spec.command: spec for spec in SPECS}
    for command in command_names(train_app) - HAND_WRITTEN:
        spec = names[command]
        options = {p.name for p in spec_command(spec).__signature__.parameters.values()}  # type: ignore[attr-defined]
        assert {"out", "seed", "epochs", "device", "params_json", "overwrite"} <= options
        assert {flag.option for flag in spec.flags} <= options
        assert ("fit" in options) == (spec.data == "ratings"), command
        assert ("images_path" in options) == (spec.data == "images"), command
        assert ("items" in options) == spec.uses_items, command


def test_a_flag_beats_params_json_and_params_json_beats_the_default(tmp_path: Path) -> None:
    out = tmp_path / "gan"
    common = ("train", "gan", "--out", str(out), "--epochs", "1", "--device", "cpu")
    params = json.dumps({"n_hidden": 8, "latent_dim": 2, "conditional": True})
    done = deeprec_in_process(*common, "--params-json", params, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "manifest.json").read_text())["config"]["conditional"] is True
    done = deeprec_in_process(
        *common, "--params-json", params, "--no-conditional", "--overwrite", "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "manifest.json").read_text())["config"]["conditional"] is False
