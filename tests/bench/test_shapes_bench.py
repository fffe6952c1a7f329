"""benchmarks/shapes.py: each shape's hand-written twin makes Charter's decision (no timing),
and the twins read a request's tool exactly as Charter's reader does."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import shapes
from charter.runtime.request import Call, read


@pytest.fixture(scope="module")
def policy() -> Any:
    import charter

    shapes._scan_setup()
    return charter.compile(shapes.policy_source())


@pytest.mark.parametrize("shape", shapes.shapes(), ids=lambda s: s.name)
def test_each_twin_makes_charters_decision(policy: Any, shape: shapes.Shape) -> None:
    shapes.check(policy, shape)  # raises if the twin disagrees
    if shape.compare_reasons:  # the error path: the reasons name the missing field
        assert any("args.amount missing" in r for r in policy.decide(shape.request).reasons)


def test_the_shapes_cover_every_effect(policy: Any) -> None:
    effects = {policy.decide(s.request, s.state).effect for s in shapes.shapes()}
    assert effects == {"allow", "deny"}
    assert {policy.decide(s.request).effect for s in shapes.shapes()} >= {"require_approval"}


TOOLS: list[Any] = [
    "kb.read", "", None, 3, [], {}, {"name": ""}, {"name": 3}, {"name": "kb.read"},
    {"name": "kb.read", "tags": None}, {"name": "kb.read", "tags": []},
    {"name": "kb.read", "tags": ["read", "x"]}, {"name": "kb.read", "tags": ["read", 1]},
    {"name": "kb.read", "tags": "read"}, {"name": "kb.read", "tags": ("read",)},
    {"name": "kb.read", "server": "s"}, {"name": "kb.read", "server": 1},
]


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("stage", [None, "tool_call", "tool_result", "bogus", 1])
def test_the_twins_read_the_tool_as_charter_does(tool: Any, stage: Any) -> None:
    request = {"tool": tool, "stage": stage}
    found = read(request)
    mine = shapes.read_tool(request)
    if isinstance(found, Call):
        assert mine is not None and (mine[0], tuple(mine[1])) == (found.name, found.tags)
    else:
        assert mine is None
