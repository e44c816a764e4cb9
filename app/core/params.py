"""Overrides of a training config dataclass, checked the same way wherever they come from:
``deeprec train --params-json`` and the admin retrain endpoint (which checks them BEFORE it
accepts a job, so a bad parameter is a 422 now, not a failed job later)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ml.models.config_keys import nest_sections


class ParamsError(ValueError):
    """A parameter the config does not have, or a value of the wrong type; the message names it."""


def override_config(config: Any, overrides: Mapping[str, Any]) -> Any:
    """``config`` (a dataclass instance) with ``overrides`` applied; :class:`ParamsError` for
    unknown keys, values of the wrong type, or values the config's own checks refuse.

    A config with sections (dataclass fields holding dataclasses, as ``RBMConfig.training``)
    takes a section's setting as ``"section.name"`` or ``{"section": {"name": ...}}``; its
    ``LEGACY_KEYS`` may map an old flat name to ``"section.name"``."""
    legacy = getattr(type(config), "LEGACY_KEYS", {})  # old names of renamed settings
    try:
        nested = nest_sections(overrides, legacy)
    except ValueError as exc:
        raise ParamsError(str(exc)) from exc
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(nested) - fields)
    if unknown:
        raise ParamsError(f"unknown parameter(s) {unknown}; known: {_known_names(config)}")
    values = dict(nested)
    for name, value in nested.items():
        current = getattr(config, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ParamsError(f"parameter {name!r} is a section: give an object of settings")
            try:
                values[name] = override_config(current, value)
            except ParamsError as exc:
                raise ParamsError(f"{name}: {exc}") from exc
        elif isinstance(current, bool) and not isinstance(value, bool):
            raise ParamsError(f"parameter {name!r} must be true or false, got {value!r}")
        elif isinstance(current, int | float) and not isinstance(current, bool):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParamsError(f"parameter {name!r} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ParamsError(f"parameter {name!r} must be finite, got {value!r}")
            if isinstance(current, int) and float(value) != int(value):
                raise ParamsError(f"parameter {name!r} must be an integer, got {value!r}")
            values[name] = type(current)(value)
    try:
        return dataclasses.replace(config, **values)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ParamsError(f"invalid parameters: {exc}") from exc


def config_value(config: Any, name: str) -> Any:
    """A setting of ``config`` by its name, ``"section.name"`` inside a section."""
    for part in name.split("."):
        config = getattr(config, part)
    return config


def _known_names(config: Any) -> list[str]:
    """Every setting's name, a section's as ``section.name``."""
    names: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            names.extend(f"{f.name}.{inner}" for inner in _known_names(value))
        else:
            names.append(f.name)
    return sorted(names)
