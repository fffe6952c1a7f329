"""Disagreements between compiled and interpreted decisions that the differential test
(tests/compiler/test_differential.py) found, each kept as the smallest case that showed it.

Each case is a policy and requests decided in order through one `Policy` (caches included);
every decision of `decide` must equal the interpreter's."""

from __future__ import annotations

from typing import Any

import pytest

import charter
from charter import Snapshot

HEADER = 'policy "r"\ndefault deny\n'

CASES: dict[str, tuple[str, list[tuple[Any, Snapshot | None]]]] = {
    # After a toolless model_input request, `"tool": ""` or `{"name": ""}` at that stage hit
    # the toolless entry on the fast path (decided as no tool) instead of being malformed.
    "empty tool name at a model stage, after a toolless request": (
        'allow tool "**"\non model_input allow\n',
        [({"stage": "model_input"}, None),
         ({"stage": "model_input", "tool": {"name": ""}}, None),
         ({"stage": "model_input", "tool": ""}, None),
         ({"stage": "model_output", "output": "x"}, None),
         ({"stage": "model_output", "tool": {"name": "", "server": "s"}}, None)],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_reference_on_past_disagreements(name: str) -> None:
    body, requests = CASES[name]
    policy = charter.compile(HEADER + body)
    for req, snap in requests:
        reference = policy.interpret(req, snap)
        assert policy.decide(req, snap) == reference, (req, snap)
        assert policy.decide(req, snap).to_json() == reference.to_json(), (req, snap)
