"""A `test` block turned into what the evaluator takes: a request dict and a state snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from charter.compiler import ir
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.context import AGENT, ESTIMATE, SESSION, USER
from charter.language.source import Diagnostic
from charter.language.suggest import did_you_mean
from charter.language.types import ANY, STR, FieldT, ListT, MapT, RecordT, Type
from charter.runtime.snapshot import Snapshot
from charter.testing.literals import LiteralReader

UNKNOWN_TOOL = "CH0401"
MISSING_ARG = "CH0404"
NO_CALL = "CH0406"
GIVEN_TYPES: dict[str, RecordT] = {
    "agent": AGENT, "user": USER, "session": SESSION, "estimate": ESTIMATE,
}
# Tests and properties run at this instant (a Monday, 10:00 UTC) unless the request says
# otherwise: a `test` block cannot set `now`, and a decision that followed the wall clock
# would make tests pass or fail by the hour.
FIXED_NOW = "2026-01-05T10:00:00Z"
# `given approved` with no group must satisfy every approval rule; when the policy names no
# group at all this stands in, so that a bare `approved` condition still holds.
ANY_GROUP = "*"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One test's request and the runtime state it runs against."""

    request: dict[str, Any]
    state: Snapshot


def approval_groups(policy: ir.Policy) -> frozenset[str]:
    """Every group some rule can ask for, which a bare `given approved` grants."""
    groups = {g for r in policy.rules for g in r.groups}
    return frozenset(groups or {ANY_GROUP})


def args_type(checked: CheckedPolicy, tool: str) -> Type:
    """The record type of a declared tool's arguments; undeclared tools take any map."""
    sig = checked.tools.get(tool)
    if sig is None:
        return MapT(ANY)
    return RecordT(f'args of "{tool}"',
                   {n: FieldT(t, opt) for n, (t, opt) in sig.params.items()})


def build(test: ast.Test, checked: CheckedPolicy, policy: ir.Policy,
          report: Callable[[Diagnostic], None]) -> Scenario | None:
    """The scenario of `test`; problems go to `report` (None when there is no call)."""
    reader = LiteralReader(checked.consts, report)
    request: dict[str, Any] = {}
    labels: set[str] = set()
    groups: set[str] = set()
    for given in test.givens:
        if given.kind in GIVEN_TYPES and isinstance(given.value, ast.RecordLit):
            part = reader.record(given.value, GIVEN_TYPES[given.kind], given.kind)
            request.setdefault(given.kind, {}).update(part)
        elif given.kind == "labels" and given.value is not None:
            read = reader.read(given.value, ListT(STR), "labels")
            labels.update(x for x in read if isinstance(x, str))
        elif given.kind == "approved":
            groups.update({given.group} if given.group else approval_groups(policy))
    call = test.call
    if call is None:
        report(Diagnostic(NO_CALL, "error", test.span, f'test "{test.name}" makes no call',
                          'add a line such as `call "tool.name" {arg: "value"}`'))
        return None
    _check_tool(call, checked, policy, report)
    expected = args_type(checked, call.tool)
    request["args"] = reader.read(call.args, expected, "args")
    if isinstance(expected, RecordT):
        missing = [n for n, f in expected.fields.items()
                   if not f.optional and n not in request["args"]]
        if missing:
            report(Diagnostic(
                MISSING_ARG, "error", call.args.span,
                f'call to "{call.tool}" lacks required argument(s) '
                + ", ".join(f"`{m}`" for m in missing),
                "mark a parameter optional with `name?: type` if a call may omit it"))
    request["stage"] = call.stage or "tool_call"
    request["now"] = FIXED_NOW
    request["tool"] = call.tool
    if call.result is not None:
        request["result"] = reader.read(call.result, ANY, "result")
    state = Snapshot(labels=frozenset(labels), approved_groups=frozenset(groups))
    return Scenario(request, state)


def _check_tool(call: ast.TestCall, checked: CheckedPolicy, policy: ir.Policy,
                report: Callable[[Diagnostic], None]) -> None:
    """A call to a tool nothing declares or names is almost always a typo."""
    if call.tool in checked.tools or _named_by_rules(call.tool, policy.rules):
        return
    known = [*checked.tools, *(n for r in policy.rules for t in r.targets for n in t.names
                               if "*" not in n)]
    report(Diagnostic(
        UNKNOWN_TOOL, "error", call.span,
        f'tool "{call.tool}" is neither declared nor named by any rule',
        did_you_mean(call.tool, known, '"') or "declare it with `tool \"name\" (...)`"))


def _named_by_rules(tool: str, rules: Iterable[ir.Rule]) -> bool:
    from charter.compiler.plan import name_matches

    return any(name_matches(n, tool) for r in rules for t in r.targets for n in t.names)
