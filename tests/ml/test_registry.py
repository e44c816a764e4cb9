"""The ModelSpec table's own rules (the contract test checks each family's behaviour)."""

from __future__ import annotations

import dataclasses

import pytest

from app.core.params import config_value, override_config
from ml.registry import (
    BY_NAME,
    SPECS,
    ModelSpec,
    UnknownModelError,
    default_model_types,
    get_spec,
    image_model_types,
    metadata_model_types,
    recommendation_order,
    reconstructors,
    required_model_types,
    similar_items_order,
)


def test_the_derived_lists_agree_with_the_specs() -> None:
    assert all(BY_NAME[name].can("recommend") for name in recommendation_order())
    assert all(BY_NAME[name].can("similar_items") for name in similar_items_order())
    assert set(required_model_types()) <= set(default_model_types())
    assert image_model_types() == {s.name for s in SPECS if not s.can("recommend")}
    assert all(BY_NAME[name].data == "ratings+items" for name in metadata_model_types())
    for word, name in reconstructors().items():
        assert BY_NAME[name].can("reconstruct") and name.startswith(word)


def test_an_unknown_model_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="unknown model type 'resnet'; known: autoencoder"):
        get_spec("resnet")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capabilities": frozenset({"recommend", "fly"})}, "unknown capabilities"),
        ({"capabilities": frozenset({"sample"}), "recommend_rank": 1}, "cannot recommend"),
        ({"capabilities": frozenset({"recommend"}), "similar_rank": 1}, "has none"),
        ({"default": False, "required": True}, "must be a default model"),
    ],
)
def test_an_inconsistent_spec_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SPECS[0], **change)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_what_a_spec_names_is_a_setting_of_its_config(spec: ModelSpec) -> None:
    base = spec.config()
    override_config(base, spec.smoke)  # refuses a name the config does not have
    named = [flag.field for flag in spec.flags]
    for name in named + ([spec.epochs_field] if spec.epochs_field else []):
        config_value(base, name)  # AttributeError for a name the config does not have
    assert not (spec.epochs_field and spec.epochs), "one source of the epoch count"


def test_the_autorec_epochs_the_cli_runs_are_the_chosen_ones() -> None:
    from ml.training.autorec import AUTOREC_EPOCHS

    assert BY_NAME["autorec"].epochs == AUTOREC_EPOCHS
