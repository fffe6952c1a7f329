"""`given` lines read into what a decision runs with: request records and runtime state.

`agent user session estimate {...}` fill request records; `now "..."` sets the instant;
`labels [...]`, `approved [by "g"]`, `usage ...` and `previously call ...` describe runtime
state (stored labels, grants, counters, call history); a fixture name stands for the parts of
its `fixture NAME = ...` line. Later parts win over earlier ones, field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from charter.engine import ir
from charter.engine.interpreter import counter_key as key_of
from charter.engine.snapshot import Snapshot
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.context import AGENT, ESTIMATE, SESSION, USER
from charter.language.diagnostics import TEST_TYPE_ERROR, TEST_UNKNOWN_FIXTURE
from charter.language.source import Diagnostic
from charter.language.suggest import did_you_mean
from charter.language.types import ANY, STR, TIME, ListT, MapT, RecordT
from charter.stdlib.globs import name_matches
from charter.stdlib.values import RequestError
from charter.testing.literals import LiteralReader, is_time

GIVEN_TYPES: dict[str, RecordT] = {
    "agent": AGENT, "user": USER, "session": SESSION, "estimate": ESTIMATE,
}
# Tests run at this instant (a Monday, 10:00 UTC) unless they say `given now "..."`: a
# decision that followed the wall clock would make tests pass or fail by the hour.
FIXED_NOW = "2026-01-05T10:00:00Z"
# `given approved` with no group must satisfy every approval rule; when the policy names no
# group at all this stands in, so that a bare `approved` condition still holds.
ANY_GROUP = "*"
Amount = int | Decimal


@dataclass(frozen=True, slots=True)
class Usage:
    """`usage cost_usd 1.5` (metric, no target) or `usage calls(tool "t") 3`."""

    metric: str
    amount: Amount
    target: ast.ToolTarget | None = None


@dataclass
class Context:
    """Everything the `given` lines of a test (so far) say."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: str = FIXED_NOW
    labels: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    usage: list[Usage] = field(default_factory=list)
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def copy(self) -> Context:
        return Context({k: dict(v) for k, v in self.records.items()}, self.now, set(self.labels),
                       set(self.groups), list(self.usage), list(self.history))

    @property
    def timestamp(self) -> float:
        return datetime.fromisoformat(self.now.replace("Z", "+00:00")).timestamp()

    def request(self) -> dict[str, Any]:
        """The request records, with the instant."""
        return {**{k: dict(v) for k, v in self.records.items()}, "now": self.now}

    def snapshot(self, policy: ir.Policy, request: Mapping[str, Any]) -> Snapshot:
        """The runtime state these givens describe, for a decision on `request`."""
        return Snapshot(
            counters=counters(policy, self.usage, request),
            labels=frozenset(self.labels), approved_groups=frozenset(self.groups),
            history={tool: tuple((self.timestamp, f) for t, f in self.history if t == tool)
                     for tool in {t for t, _ in self.history}},
            now=self.timestamp)


class GivenReader:
    """Reads `given` parts into a `Context`, reporting problems as diagnostics."""

    def __init__(self, checked: CheckedPolicy, policy: ir.Policy,
                 report: Callable[[Diagnostic], None]) -> None:
        self.checked, self.policy, self.report = checked, policy, report
        self.values = LiteralReader(checked.consts, report)
        self.fixtures = {item.name: item for m in checked.modules for item in m.items
                         if isinstance(item, ast.Fixture)}

    def apply(self, ctx: Context, givens: Iterable[ast.Given], _seen: tuple[str, ...] = ()
              ) -> None:
        for g in givens:
            if g.kind == "fixture":
                self._fixture(ctx, g, _seen)
            elif g.kind in GIVEN_TYPES and isinstance(g.value, ast.RecordLit):
                part = self.values.record(g.value, GIVEN_TYPES[g.kind], g.kind)
                ctx.records.setdefault(g.kind, {}).update(part)
            elif g.kind == "labels" and g.value is not None:
                read = self.values.read(g.value, ListT(STR), "labels")
                ctx.labels.update(x for x in read if isinstance(x, str))
            elif g.kind == "approved":
                ctx.groups.update({g.group} if g.group else approval_groups(self.policy))
            elif g.kind == "now" and g.value is not None:
                self._now(ctx, g.value)
            elif g.kind == "usage" and isinstance(g.value, ast.Literal_):
                self._usage(ctx, g)
            elif g.kind == "previously" and g.name is not None:
                fields = self.values.read(g.value, MapT(ANY), "fields") if isinstance(
                    g.value, ast.RecordLit) else {}
                ctx.history.append((g.name, fields))

    def _fixture(self, ctx: Context, g: ast.Given, seen: tuple[str, ...]) -> None:
        fixture = self.fixtures.get(g.name or "")
        if fixture is None or g.name in seen:
            why = "is not defined" if fixture is None else "refers to itself"
            self.report(TEST_UNKNOWN_FIXTURE.at(
                g.span, f"fixture `{g.name}` {why}",
                did_you_mean(g.name or "", self.fixtures)
                or "define it with `fixture NAME = agent {...} session {...}`"))
            return
        self.apply(ctx, fixture.givens, (*seen, fixture.name))

    def _now(self, ctx: Context, value: ast.Expr) -> None:
        text = self.values.read(value, TIME, "now")
        if isinstance(text, str) and is_time(text):
            ctx.now = text

    def _usage(self, ctx: Context, g: ast.Given) -> None:
        assert isinstance(g.value, ast.Literal_)
        amount = g.value.value
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
            self.report(TEST_TYPE_ERROR.at(g.span, "a usage amount is a number"))
            return
        ctx.usage.append(Usage(g.name or "", amount, g.target))


def approval_groups(policy: ir.Policy) -> frozenset[str]:
    """Every group some rule can ask for, which a bare `given approved` grants."""
    groups = {g for r in policy.rules for g in r.groups}
    return frozenset(groups or {ANY_GROUP})


def counters(policy: ir.Policy, usage: Iterable[Usage], request: Mapping[str, Any]
             ) -> dict[tuple[str, str], Amount]:
    """Snapshot counters: each `usage` line applied to the counters it names, under the key
    this request has for them (a counter whose key the request lacks is left out)."""
    out: dict[tuple[str, str], Amount] = {}
    for u in usage:
        for spec in policy.counters:
            # A per-session budget reads the request's session total, not a snapshot counter.
            if spec.session_total or not counts(spec, u, policy):
                continue
            key = counter_key(spec, request)
            if key is not None:
                out[(spec.id, key)] = u.amount
    return out


def counts(spec: ir.CounterSpec, u: Usage, policy: ir.Policy) -> bool:
    """Whether the `usage` line `u` is about the counter `spec`."""
    if spec.metric != u.metric:
        return False
    if u.target is None:
        return True
    if u.target.tag is not None:
        return any(t.tag == u.target.tag for t in spec.targets)
    for name in u.target.names:
        tags = policy.tools[name].tags if name in policy.tools else ()
        if any(any(name_matches(n, name) for n in t.names) or (t.tag and t.tag in tags)
               for t in spec.targets):
            return True
    return False


def counter_key(spec: ir.CounterSpec, request: Mapping[str, Any]) -> str | None:
    key = spec.key or ir.Path("session", ("id",), "str", "session.id")
    try:
        return key_of(key, request)
    except RequestError:
        return None
