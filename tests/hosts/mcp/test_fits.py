"""`fits.quick_fit`: a yes only where jsonschema says yes, and a yes for plain fitting calls."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import validators  # type: ignore[import-untyped]

from charter.hosts.mcp.fits import quick_fit

FLAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "where"},
        "tail": {"type": "number"},
        "count": {"type": "integer"},
        "flag": {"type": ["boolean", "null"]},
        "names": {"type": "array", "items": {"type": "string"}},
        "opts": {"type": "object", "properties": {"deep": {"type": "boolean"}}},
    },
    "required": ["path"],
    "additionalProperties": False,
}
OPEN = {"type": "object", "properties": {"path": {"type": "string"}}}
SCHEMAS = [FLAT, OPEN, {"type": "object"}, {}, {"type": "object", "required": ["a", "b"]}]
VALUES: list[Any] = [
    {"path": "/a"},
    {"path": "/a", "tail": 3, "count": 2, "flag": None, "names": ["x"], "opts": {"deep": True}},
    {"path": "/a", "tail": 2.5, "flag": False},
    {},
    {"path": 3},
    {"path": "/a", "other": 1},
    {"path": "/a", "tail": True},
    {"path": "/a", "count": 1.0},
    {"path": "/a", "count": True},
    {"path": "/a", "names": ["x", 2]},
    {"path": "/a", "opts": {"deep": "yes"}},
    {"path": "/a", "flag": 0},
    {"a": 1},
    {"a": 1, "b": None},
    [],
    "x",
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_quick_yes_is_always_a_jsonschema_yes(schema: dict[str, Any]) -> None:
    check = quick_fit(schema)
    assert check is not None
    judge = validators.validator_for(schema, default=validators.Draft202012Validator)(schema)
    for value in VALUES:
        if check(value):
            assert judge.is_valid(value), (schema, value)


def test_plain_fitting_calls_get_the_quick_yes() -> None:
    check = quick_fit(FLAT)
    assert check is not None
    assert check(VALUES[0]) and check(VALUES[1]) and check(VALUES[2])
    for wrong in ({}, {"path": 3}, {"path": "/a", "other": 1}, {"path": "/a", "tail": True}):
        assert not check(wrong)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
        {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}, "$defs": {"n": {}}},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "properties": {"s": {"enum": ["a"]}}},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "object", "patternProperties": {"^x": {}}},
        {"type": "thing"},
        "not a schema",
    ],
)
def test_anything_outside_the_subset_is_left_to_jsonschema(schema: Any) -> None:
    assert quick_fit(schema) is None
