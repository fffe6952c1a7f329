"""`decide` is pure over adversarial request shapes, on many policies.

For any request — a tool as `""`, `{}`, `{"name": ""}`, a list, a number or null; tags of
every type, non-strings and duplicates among them; a server of every type; any stage,
invalid ones included; random extra fields; given as a dict, a mapping, or JSON text or
bytes — a fresh policy's `decide`, the `decide` of the same policy after it decided a random
sequence of other requests (among them the request's close neighbours, which fill exactly
the cache entries a wrong fast path would hit), and the reference interpreter give equal
Decisions, every field compared (as tests/compiler/test_differential.py compares them).

CI runs a fixed set of inputs; `CHARTER_FUZZ_EXAMPLES=N` runs N random ones per policy.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.engine import support
from charter.engine.decision import RuleError
from charter.engine.snapshot import Snapshot
from charter.runtime.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CHARTER_FUZZ_EXAMPLES", "40"))
DERANDOMIZE = "CHARTER_FUZZ_EXAMPLES" not in os.environ

TAGGED = """
policy "tagged" version "1"
use pii, secrets
default allow
tool "fs.rm" (path: str) tags destructive
tool "kb.read" (q: str) tags read
tool "web.fetch" (url: str) tags external
deny tool tagged destructive unless approved because "needs a human"
require approval from "ops" tool tagged external when tool.server != "trusted.corp"
warn tool tagged beta because "beta tool"
deny tool "mcp.*.delete" because "no deletes over MCP"
deny tool "admin.**" when not ("admin" in user.roles)
label session "ext" tool tagged external
deny when has(tool.server) and tool.server like "*.evil" because "untrusted server"
deny when "write" in tool.tags and agent.env == "prod"
on tool_result deny when result contains secrets.any because "secret in output"
on tool_result redact pii.email in result
on model_input deny when input contains secrets.any
"""

DENYING = """
policy "denying"
default deny
trust request tags
tool "pay.send" (amount: decimal, to?: str) tags money
allow tool tagged read
allow tool "kb.*", "search.**"
allow tool "pay.send" when args.amount <= 100 and agent.team == "support"
require approval from "finance", "ops" tool "pay.send" when args.amount > 10
deny tool tagged write when agent.env == "prod" because "no writes in prod"
warn tool "**" when tool.server == "beta" because "beta server"
on model_input allow when has(input)
on model_output allow
on tool_result allow tool tagged read
"""

SERVERS = """
policy "servers"
default deny
allow when tool.server like "*.corp"
allow tool "local.*" unless has(tool.server)
deny when tool.server in {"evil.corp", ""} because "blocked server"
on model_output allow
"""

WRITTEN = {"tagged": TAGGED, "denying": DENYING, "servers": SERVERS}
EXAMPLE_DIRS = ["support", "coding", "finance"]


def _policies() -> dict[str, Policy]:
    found = {name: charter.compile(text) for name, text in WRITTEN.items()}
    for name in EXAMPLE_DIRS:
        found[f"examples/{name}"] = charter.load(ROOT / "examples" / name)
    found["examples/agent_loop"] = charter.load(ROOT / "examples" / "agent_loop.agentpolicy")
    found["reference"] = charter.load(ROOT / "benchmarks" / "reference" / "policy.agentpolicy")
    return found


POLICIES = _policies()
TOOL_NAMES = sorted({name for p in POLICIES.values() for name in p.ir.tools} | {
    "mcp.gh.delete", "admin.users.reset", "search.a.b", "local.x", "x", "kb.x"})
PARAMS = sorted({p[0] for pol in POLICIES.values() for t in pol.ir.tools.values()
                 for p in t.params} | {"amount", "path", "query", "url"})


class Tag(enum.StrEnum):
    READ = "read"


class Text(str):
    pass


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.sampled_from([10**500, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("2.5"), Decimal("100.00"), Decimal("NaN"), Decimal("5001")]),
    st.text(max_size=4),
    st.sampled_from(["", "support", "prod", "USD", "eu-west-1", "/workspace/a.py", "bob@x.io",
                     "AKIAIOSFODNN7EXAMPLE", "https://docs.example.com/a", "ls -la"]),
    st.binary(max_size=3), st.just(Text("a")),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "tags", "id", "amount", "a"]), inner,
                    max_size=3)), max_leaves=6)
NAMES = st.one_of(st.sampled_from(TOOL_NAMES), st.sampled_from(["", "kb.*", " kb.read"]))
TAG_NAMES = st.sampled_from(["read", "write", "destructive", "external", "beta", "money", ""])
TAG_LISTS = st.lists(st.one_of(TAG_NAMES, TAG_NAMES, TAG_NAMES, SCALARS, st.just(Tag.READ),
                               st.just(["read"])), max_size=3)
SERVER_VALUES = st.one_of(st.sampled_from(["trusted.corp", "x.evil", "evil.corp", "a.corp",
                                           "beta", ""]), SCALARS, st.just(["a.corp"]))
TOOL_OBJECTS = st.fixed_dictionaries({}, optional={
    "name": st.one_of(NAMES, NAMES, NAMES, SCALARS),
    "tags": st.one_of(TAG_LISTS, TAG_LISTS, st.none(), SCALARS, st.just({}), st.just("read")),
    "server": SERVER_VALUES,
    "extra": SCALARS,
})
# The shapes that matter most come up often, so that a warm-up request and the one under
# test share them.
TYPICAL: list[Any] = [
    "", {}, {"name": ""}, {"name": None}, None, [], ["kb.read"], 0, True, Text("kb.read"),
    "kb.read", {"name": "kb.read"}, {"name": "kb.read", "tags": []},
    {"name": "kb.read", "tags": None}, {"name": "kb.read", "tags": ["read"]},
    {"name": "kb.read", "tags": ["read", "read"]}, {"name": "kb.read", "tags": ["read", 1]},
    {"name": "kb.read", "tags": [Tag.READ]}, {"name": "kb.read", "tags": "read"},
    {"name": "kb.read", "server": 3}, {"name": "kb.read", "server": "a.corp"},
    {"name": "kb.read", "tags": ["write"], "server": "x.evil"}, {"name": "", "tags": ["read"]},
]
TYPICAL_TOOLS = st.sampled_from(TYPICAL)
TOOLS = st.one_of(TYPICAL_TOOLS, TYPICAL_TOOLS, NAMES, TOOL_OBJECTS, TOOL_OBJECTS, SCALARS)
STAGES = st.one_of(
    st.sampled_from([None, "tool_call", "tool_result", "model_input", "model_output"]),
    st.sampled_from([None, "tool_call", "tool_result", "model_input", "model_output"]),
    st.sampled_from(["bogus", "", "TOOL_CALL", "tool_call ", Text("tool_call")]), SCALARS)
GOOD = {  # values that pass the declared types, so that rules are reached
    "agent": st.fixed_dictionaries({}, optional={
        "team": st.sampled_from(["support", "experimental", "ops"]),
        "env": st.sampled_from(["prod", "staging"]), "tenant": st.just("acme"),
        "id": st.just("bot-1")}),
    "user": st.fixed_dictionaries({}, optional={
        "roles": st.lists(st.sampled_from(["admin", "sre", "exporter", "agent"]), max_size=2),
        "tenant": st.sampled_from(["acme", "globex"])}),
    "session": st.fixed_dictionaries({}, optional={
        "id": st.just("s-1"), "cost_usd": st.sampled_from([Decimal("0.5"), 3]),
        "consecutive_tool_calls": st.integers(0, 8), "labels": st.just(["saw_pii"])}),
}
ARGS = st.dictionaries(st.sampled_from(PARAMS), st.one_of(SCALARS, VALUES), max_size=4)


@st.composite
def requests(draw: st.DrawFn) -> Any:
    req: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        req["tool"] = draw(TOOLS)
    if draw(st.booleans()):
        req["stage"] = draw(STAGES)
    if draw(st.integers(0, 3)):
        req["args"] = draw(st.one_of(ARGS, ARGS, VALUES))
    for part, good in GOOD.items():
        if draw(st.booleans()):
            req[part] = draw(st.one_of(good, good, VALUES))
    for part in ("result", "input", "output", "estimate", "approvals", "now", "extra"):
        if not draw(st.integers(0, 3)):
            req[part] = draw(VALUES)
    return req if draw(st.integers(0, 24)) else draw(VALUES)


def _neighbours(req: Any) -> list[dict[str, Any]]:
    """Well-formed requests close to `req`: same stage and name, with or without its tags
    and server, and without a tool. Deciding them first fills the entries a fast path that
    misread `req` would hit."""
    if not isinstance(req, dict):
        return []
    tool, stage = req.get("tool"), req.get("stage")
    name = tool.get("name") if isinstance(tool, dict) else tool
    out: list[dict[str, Any]] = [{**req, "tool": None}, {"stage": stage},
                                 {"stage": "model_input"}]
    if isinstance(name, str):
        out += [{**req, "tool": name}, {"tool": name, "stage": stage}, {"tool": {"name": name}},
                {**req, "tool": {"name": name}}]
        if isinstance(tool, dict):
            tags = tool.get("tags")
            plain = [str(t) for t in tags] if isinstance(tags, list) else []
            out += [{**req, "tool": {"name": name, "tags": plain}},
                    {**req, "tool": {"name": name, "tags": plain, "server": "a.corp"}},
                    {**req, "tool": {**tool, "server": "x"}}]
    return out


def _as(form: str, req: Any) -> Any:
    """The request as a host may send it."""
    if form == "mapping" and isinstance(req, dict):
        return MappingProxyType(req)
    if form in ("json", "bytes"):
        try:
            data = msgspec.json.encode(req)
        except (TypeError, ValueError, OverflowError):
            return req
        return data if form == "bytes" else data.decode()
    return req


STATES = st.one_of(
    st.none(), st.none(),
    st.builds(lambda groups: Snapshot(approved_groups=frozenset(groups)),
              st.sets(st.sampled_from(["finance", "ops", "release", "operator", "g"]),
                      max_size=2)),
    st.just(Snapshot(labels=frozenset({"saw_pii"}))),
)
FIXED_NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # a Tuesday, inside office hours


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Policies reading `now` would otherwise see the clock move between the three calls.
    monkeypatch.setattr(support, "now_utc", lambda: FIXED_NOW)
    yield


@pytest.mark.parametrize("which", sorted(POLICIES))
@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(before=st.lists(requests(), max_size=5), request=requests(), state=STATES,
       form=st.sampled_from(["dict", "dict", "dict", "mapping", "json", "bytes"]))
def test_fresh_warmed_and_interpreted_decisions_are_equal(
        which: str, before: list[Any], request: Any, state: Snapshot | None,
        form: str) -> None:
    base = POLICIES[which]
    fresh, warmed = Policy(base.ir), Policy(base.ir)
    for other in [*before, *_neighbours(request), request]:
        warmed.decide(other)  # without the state first: its entries must not serve the state
        warmed.decide(other, state)
    raw = _as(form, request)
    expected = fresh.interpret(raw, state)
    assert fresh.decide(raw, state) == expected
    assert warmed.decide(raw, state) == expected
    assert warmed.decide(raw, state) == expected  # again: now from the warmed caches
    if isinstance(request, dict):
        assert warmed.decide(request, state) == warmed.interpret(request, state)


ODD_STAGES = [None, "tool_call", "tool_result", "model_input", "model_output", "bogus", "",
              3, Text("model_input")]


@pytest.mark.parametrize("which", sorted(POLICIES))
def test_every_typical_shape_at_every_stage(which: str) -> None:
    """The cross product of the odd tool shapes and the stages, decided by one policy in
    order after each shape's neighbours: no shape may borrow another's cache entry."""
    shapes = [{"tool": tool, "stage": stage, "args": {"amount": 5}}
              for tool in TYPICAL
              for stage in ODD_STAGES]
    shapes += [{"stage": stage} for stage in ODD_STAGES]
    warmed = Policy(POLICIES[which].ir)
    for shape in shapes:
        for other in _neighbours(shape):
            warmed.decide(other)
        expected = Policy(POLICIES[which].ir).decide(shape)
        assert warmed.decide(shape) == expected == warmed.interpret(shape), shape


def test_the_error_path_reads_the_clock_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """When a rule errs, each rule runs on its own (`Policy._recover`); the rules reading
    `now` still share the decision's one reading of the clock."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(support, "now_utc",
                        lambda: datetime(2026, 1, 5, 10 + next(ticks) % 2, tzinfo=UTC))
    policy = charter.compile('policy "p"\ndefault allow\n'
                             'deny when hour_of(now) == 10 because "ten"\n'
                             'warn when hour_of(now) == 11 because "eleven"\n'
                             'warn when args.n > 1 because "big"\n')
    for _ in range(6):  # the bucket raises (args.n missing): every rule then runs alone
        decision = policy.decide({"tool": "x"})
        assert ("ten" in decision.reasons) != ("eleven" in decision.warnings), decision
        assert decision.errors == (RuleError("policy.agentpolicy:5", "args.n", "args.n missing"),)


def test_error_decisions_are_cached_only_when_they_cannot_differ() -> None:
    """A decision on the error path is reused for the same outcomes, never when a redact
    rule matched (its counts depend on the value) or grants are presented."""
    policy = charter.compile('policy "p"\nuse pii\ndefault allow\n'
                             'on tool_result redact pii.email in result\n'
                             'on tool_result warn when args.n > 1 because "big"\n'
                             'require approval from "g" when args.m > 1\n')
    for text, count in (("a@b.co", 1), ("none", 0), ("c@d.co and e@f.co", 2)):
        request = {"stage": "tool_result", "tool": "x", "result": text}
        decision = policy.decide(request)
        assert decision == policy.interpret(request)
        assert sum(decision.redactions[0].counts.values()) == count
    granted = Snapshot(approved_groups=frozenset({"g"}))
    for state in (None, granted, None, granted):
        decision = policy.decide({"tool": "x", "args": {"n": 2}}, state)
        assert decision == policy.interpret({"tool": "x", "args": {"n": 2}}, state)
    # An approval rule that matched, beside one that errs: the same outcomes, but a grant
    # satisfies the approval (found by tests/compiler/test_differential.py).
    policy = charter.compile('policy "p"\ndefault allow\nrequire approval from "g"\n'
                             '@shadow\ndeny when args.n > 1\n')
    for state in (None, granted, None, granted):
        decision = policy.decide({"tool": "x"}, state)
        assert decision == policy.interpret({"tool": "x"}, state)
        assert decision.effect == ("allow" if state else "require_approval")
