"""The JSON depth guard: how deep a body nests, without parsing it."""

from __future__ import annotations

import json

import pytest

from app.api.body import MAX_JSON_DEPTH, BodyError, json_depth, parse_json


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"3", 0),
        (b'"[[[["', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": [[]]}]}', 5),
        (b'["]]]]", [["[["]]]', 3),  # brackets inside strings do not count
        (b'["\\"[[[", [1]]', 2),  # nor after an escaped quote
        (b'["\\\\", [[1]]]', 3),  # an escaped backslash does not escape the quote after it
        (b"\x89PNG\r\n\x1a\n[[[[", 0),  # not JSON: left to its parser
        (b"[" * 50_000, 50_000),
    ],
)
def test_json_depth(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_json_depth_agrees_with_the_parser_on_real_bodies() -> None:
    body = {"images": [[[0.5] * 8] * 8] * 3, "labels": [1, 2, 3], "note": "a [b] {c}"}
    assert json_depth(json.dumps(body).encode()) == 4


def test_parse_json_refuses_deep_and_broken_bodies() -> None:
    assert parse_json(b'{"ratings": [{"item_id": 1}]}') == {"ratings": [{"item_id": 1}]}
    with pytest.raises(BodyError) as deep:
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert deep.value.status_code == 422
    with pytest.raises(BodyError) as broken:
        parse_json(b"[1,")
    assert broken.value.status_code == 422
    with pytest.raises(BodyError) as binary:
        parse_json(b"\xff\xfe\xfa\xfb")
    assert binary.value.status_code in (400, 422)
