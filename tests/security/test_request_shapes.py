"""Odd request shapes get one reading on every path (issue 18: D14).

`decide` has a fast path for a dict naming a tool seen before; whatever it takes must be
exactly what the slow path accepts, or one request would change how a later one is decided.
"""

from __future__ import annotations

from typing import Any

import pytest

import charter


def policy(default: str = "allow") -> charter.Policy:
    return charter.compile(f'policy "p"\ndefault {default}\nallow tool "**"\n')


@pytest.mark.parametrize("tool", ["", {"name": ""}, {}, [], 0, {"name": 3}, {"name": ["x"]}])
def test_a_tool_without_a_usable_name_is_malformed(tool: Any) -> None:
    d = policy().decide({"tool": tool})
    assert d.effect == "deny"
    assert d.reasons[0].startswith("malformed request: tool")


@pytest.mark.parametrize("default", ["allow", "deny"])
def test_an_empty_tool_name_does_not_poison_the_fast_path(default: str) -> None:
    p = policy(default)
    named = {"tool": {"name": ""}}
    first = p.decide(named)
    assert first.effect == "deny"
    p.decide({"tool": ""})
    assert p.decide(named) == first


def test_falsy_tags_are_read_the_same_on_every_path() -> None:
    p = policy()
    p.decide({"tool": "x"})  # warms the fast path for "x"
    for tags in ("", 0, {}, False):
        request = {"tool": {"name": "x", "tags": tags}}
        d = p.decide(request)
        assert d.effect == "deny" and d == p.interpret(request)


def test_a_null_stage_is_the_default_stage_on_every_path() -> None:
    p = policy("deny")
    fresh = p.decide({"tool": "x", "stage": None})  # fresh: the slow path reads it
    p.decide({"tool": "x"})
    assert fresh.effect == "allow"
    request = {"tool": "x", "stage": None}
    assert p.decide(request) == fresh == p.interpret(request)
