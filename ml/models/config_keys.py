"""Old config key names, mapped when a manifest (or a ``--params-json``) still uses them.

The configs share one naming scheme: ``n_*`` counts units (``n_hidden``), ``hidden_layers`` lists
widths, ``learning_rate`` is a step size. A config class lists its former names in
``LEGACY_KEYS`` (old -> new); checkpoints written before the rename keep loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rename_legacy_keys(values: Mapping[str, Any], legacy: Mapping[str, str]) -> dict[str, Any]:
    """``values`` with old key names replaced by the current ones; a key given under both names
    is refused (which one was meant is unclear)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        new = legacy.get(key, key)
        if new in out or (new != key and new in values):
            raise ValueError(f"{key!r} and {new!r} name the same setting; give only {new!r}")
        out[new] = value
    return out


def nest_sections(values: Mapping[str, Any], legacy: Mapping[str, str]) -> dict[str, Any]:
    """``values`` with old names renamed (``legacy`` may map a flat name to ``"section.name"``)
    and every ``"section.name"`` key gathered into a dict under ``section``, merged with a
    nested ``{"section": {...}}`` given beside it; a setting given twice is refused."""
    out: dict[str, Any] = {}
    for key, value in rename_legacy_keys(values, legacy).items():
        section, dot, name = key.partition(".")
        if dot:
            entries = {name: value}
        elif isinstance(value, Mapping):
            entries = dict(value)
        else:
            out[key] = value
            continue
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            raise ValueError(f"{section!r} is a section of settings, not a value")
        for entry, entry_value in entries.items():
            if entry in target:
                raise ValueError(f"{section}.{entry} is given twice; give it once")
            target[entry] = entry_value
    return out
