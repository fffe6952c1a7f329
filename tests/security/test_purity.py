"""`decide` is pure: what earlier requests did never changes a decision (issue 18: D14, D15).

The property: for adversarial request shapes, a fresh policy's `decide`, the `decide` of a
policy that first decided a random sequence of other requests, and the reference
interpreter give the same Decision.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.engine import support

POLICIES = [
    f'policy "shapes"\nuse pii\ndefault {default}\n'
    'tool "pay.send" (amount: decimal, count?: int, n?: any, flag?: any, note?: any) '
    'tags money\n'
    'allow tool "pay.send" when args.amount <= 100\n'
    'allow tool "kb.*"\n'
    'deny tool tagged money when args.amount > 50 and args.count == 2\n'
    'require approval from "g" tool tagged write when args.n >= 3\n'
    'warn tool "**" when args.flag == 1 because "flag"\n'
    'deny when args.note contains pii.email\n'
    'on tool_result deny when result contains pii.email\n'
    'on model_output allow\n'
    'label session "x" when "admin" in user.roles\n'
    for default in ("allow", "deny")
]

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([10**500, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("NaN"), Decimal("-Infinity"), Decimal("1e400000"), Decimal("2.5"),
                     Decimal("100.00"), Decimal("-0")]),
    st.text(max_size=4), st.sampled_from(["", "pay.send", "kb.x", "bob@example.com"]),
    st.binary(max_size=4), st.just(b"mail bob@example.com"),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["name", "tags", "a"]), inner,
                                                 max_size=2)), max_leaves=6)
NAMES = st.sampled_from(["pay.send", "kb.search", "x.y", ""])
TAGS = st.one_of(VALUES, st.lists(st.sampled_from(["money", "write", ""]), max_size=2))
# The shapes that matter most (empty names, falsy or odd tags) come up often, so that a
# warm-up sequence and the request under test share them.
TYPICAL_TOOLS = st.sampled_from([
    "", "pay.send", "kb.search", {"name": ""}, {"name": "pay.send"}, {"name": "kb.search"},
    {"name": "pay.send", "tags": ""}, {"name": "pay.send", "tags": []},
    {"name": "pay.send", "tags": None}, {"name": "pay.send", "tags": 0},
    {"name": "pay.send", "tags": ["write"]}, {"name": "", "tags": ["money"]}, {}, [], 0, None,
])
TOOLS = st.one_of(
    TYPICAL_TOOLS, TYPICAL_TOOLS, TYPICAL_TOOLS, NAMES, VALUES,
    st.builds(lambda n: {"name": n}, NAMES),
    st.builds(lambda n, t: {"name": n, "tags": t}, NAMES, TAGS),
)
STAGES = st.one_of(st.sampled_from([None, "tool_call", "tool_result", "model_output",
                                    "model_input", "bogus", ""]), SCALARS)
ARGS = st.fixed_dictionaries({}, optional={
    "amount": VALUES, "count": VALUES, "n": VALUES, "flag": VALUES, "note": VALUES})


@st.composite
def requests(draw: st.DrawFn) -> Any:
    req: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        req["tool"] = draw(TOOLS)
    if draw(st.booleans()):
        req["stage"] = draw(STAGES)
    if draw(st.integers(0, 4)):
        req["args"] = draw(st.one_of(ARGS, VALUES))
    if draw(st.booleans()):
        req["user"] = {"roles": draw(st.one_of(VALUES, st.just(["admin"])))}
    if draw(st.booleans()):
        req["result"] = draw(VALUES)
    return req if draw(st.integers(0, 19)) else draw(VALUES)


def _neighbours(request: Any) -> list[Any]:
    """Well-formed requests for the same tool name: they fill the caches the request under
    test would hit if the fast path mistook it for one of them."""
    if not isinstance(request, dict):
        return []
    tool = request.get("tool")
    name = tool.get("name") if isinstance(tool, dict) else tool
    if not isinstance(name, str):
        return []
    stage = request.get("stage")
    return [{"tool": name}, {"tool": name, "stage": stage}, {"tool": {"name": name}},
            {**request, "tool": name}]


_COMPILED = [charter.compile(text) for text in POLICIES]


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(range(len(POLICIES))), st.lists(requests(), max_size=6), requests())
def test_decide_is_pure_over_adversarial_shapes(which: int, before: list[Any],
                                               request: Any) -> None:
    fresh = charter.Policy(_COMPILED[which].ir)
    warmed = charter.Policy(_COMPILED[which].ir)
    for other in [*before, *_neighbours(request)]:
        warmed.decide(other)
    expected = fresh.interpret(request)
    assert fresh.decide(request) == expected
    assert warmed.decide(request) == expected
    assert warmed.decide(request) == expected  # again, now from the warmed decision cache


def _ticking_clock() -> Any:
    ticks = itertools.count()
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    return lambda: start + timedelta(microseconds=next(ticks))


@pytest.mark.parametrize("rule", ["deny when now != now",
                                  "deny when hour_of(now) >= 0 and now != now"])
def test_now_is_read_once_per_decision(monkeypatch: pytest.MonkeyPatch, rule: str) -> None:
    monkeypatch.setattr(support, "now_utc", _ticking_clock())
    policy = charter.compile(f'policy "p"\ndefault allow\n{rule}\n')
    assert policy.interpret({"tool": "x"}).effect == "allow"
    assert policy.decide({"tool": "x"}).effect == "allow"
