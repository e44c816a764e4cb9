"""Overrides of a training config dataclass, checked the same way wherever they come from:
``deeprec train --params-json`` and the admin retrain endpoint (which checks them BEFORE it
accepts a job, so a bad parameter is a 422 now, not a failed job later)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


class ParamsError(ValueError):
    """A parameter the config does not have, or a value of the wrong type; the message names it."""


def override_config(config: Any, overrides: dict[str, Any]) -> Any:
    """``config`` (a dataclass instance) with ``overrides`` applied; :class:`ParamsError` for
    unknown keys, values of the wrong type, or values the config's own checks refuse."""
    legacy = getattr(type(config), "LEGACY_KEYS", {})  # old names of renamed settings
    overrides = {legacy.get(key, key): value for key, value in overrides.items()}
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ParamsError(f"unknown parameter(s) {unknown}; known: {sorted(fields)}")
    values = dict(overrides)
    for name, value in overrides.items():
        current = getattr(config, name)
        if isinstance(current, bool) and not isinstance(value, bool):
            raise ParamsError(f"parameter {name!r} must be true or false, got {value!r}")
        if isinstance(current, int | float) and not isinstance(current, bool):
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
