"""A `test` block turned into what the evaluator takes: a request dict and a state snapshot.

A test with `row`s is a table: each row is one case, its record merged into the call's
arguments (the row's fields win), its given parts applied after the test's, and its
expectations checked with the test's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from charter.engine import ir
from charter.engine.snapshot import Snapshot
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.diagnostics import TEST_MISSING_ARGUMENT, TEST_NO_CALL, TEST_UNKNOWN_TOOL
from charter.language.source import Diagnostic
from charter.language.suggest import did_you_mean
from charter.language.types import ANY, FieldT, MapT, RecordT, Type
from charter.testing.givens import (
    ANY_GROUP,
    FIXED_NOW,
    GIVEN_TYPES,
    Context,
    GivenReader,
    approval_groups,
)

__all__ = ["ANY_GROUP", "FIXED_NOW", "GIVEN_TYPES", "Case", "Scenario", "approval_groups",
           "args_type", "build", "cases", "call_request"]

Report = Callable[[Diagnostic], None]


@dataclass(frozen=True, slots=True)
class Scenario:
    """One test's request and the runtime state it runs against."""

    request: dict[str, Any]
    state: Snapshot


@dataclass(frozen=True, slots=True)
class Case:
    """One decision a test checks: the whole test, or one row of a table."""

    label: str | None  # "row 2" for a table row
    line: int
    scenario: Scenario
    expects: tuple[ast.Expect, ...]


def args_type(checked: CheckedPolicy, tool: str) -> Type:
    """The record type of a declared tool's arguments; undeclared tools take any map."""
    sig = checked.tools.get(tool)
    if sig is None:
        return MapT(ANY)
    return RecordT(f'args of "{tool}"',
                   {n: FieldT(t, opt) for n, (t, opt) in sig.params.items()})


def build(test: ast.Test, checked: CheckedPolicy, policy: ir.Policy,
          report: Report) -> Scenario | None:
    """The scenario of a one-call `test`; problems go to `report` (None without a call)."""
    found = cases(test, checked, policy, report)
    return found[0].scenario if found else None


def cases(test: ast.Test, checked: CheckedPolicy, policy: ir.Policy,
          report: Report) -> list[Case]:
    """The decisions a `test` checks: one, or one per row of a table."""
    call = test.call
    if call is None:
        report(TEST_NO_CALL.at(test.span, f'test "{test.name}" makes no call',
                               'add a line such as `call "tool.name" {arg: "value"}`'))
        return []
    reader = GivenReader(checked, policy, report)
    base = Context()
    reader.apply(base, test.givens)
    if not test.rows:
        return [Case(None, test.span.line, _scenario(reader, base, call, call.args),
                     test.expects)]
    out = []
    for i, row in enumerate(test.rows, 1):
        ctx = base.copy()
        reader.apply(ctx, row.givens)
        args = _merged(call.args, row.args)
        out.append(Case(f"row {i}", row.span.line, _scenario(reader, ctx, call, args),
                        (*test.expects, *row.expects)))
    return out


def call_request(reader: GivenReader, ctx: Context, call: ast.TestCall,
                 args: ast.RecordLit) -> dict[str, Any]:
    """The request of one call under `ctx`: its records, stage, tool and arguments."""
    request = ctx.request()
    request["stage"] = call.stage or "tool_call"
    if call.field:  # a model step: `on model_input with input VALUE`
        if call.result is not None:
            request[call.field] = reader.values.read(call.result, ANY, call.field)
        return request
    _check_tool(call, reader.checked, reader.policy, reader.report)
    expected = args_type(reader.checked, call.tool)
    request["args"] = reader.values.read(args, expected, "args")
    if isinstance(expected, RecordT):
        missing = [n for n, f in expected.fields.items()
                   if not f.optional and n not in request["args"]]
        if missing:
            reader.report(TEST_MISSING_ARGUMENT.at(
                args.span,
                f'call to "{call.tool}" lacks required argument(s) '
                + ", ".join(f"`{m}`" for m in missing),
                "mark a parameter optional with `name?: type` if a call may omit it"))
    request["tool"] = call.tool
    if call.result is not None:
        request["result"] = reader.values.read(call.result, ANY, "result")
    return request


def _scenario(reader: GivenReader, ctx: Context, call: ast.TestCall,
              args: ast.RecordLit) -> Scenario:
    request = call_request(reader, ctx, call, args)
    # A decision reads `per session` budgets from the request's session record (the Guard
    # fills it in from its store), so that is where `given usage cost_usd ...` goes too.
    for u in ctx.usage:
        if u.target is None and u.metric in ("cost_usd", "tokens"):
            request.setdefault("session", {})[u.metric] = u.amount
    return Scenario(request, ctx.snapshot(reader.policy, request))


def _merged(template: ast.RecordLit, row: ast.RecordLit) -> ast.RecordLit:
    """The call's arguments with a row's fields put in (a row's field replaces the call's)."""
    names = {f.name for f in row.fields}
    kept = tuple(f for f in template.fields if f.name not in names)
    return ast.RecordLit((*kept, *row.fields), row.span)


def _check_tool(call: ast.TestCall, checked: CheckedPolicy, policy: ir.Policy,
                report: Report) -> None:
    """A call to a tool nothing declares or names is almost always a typo."""
    if call.tool in checked.tools or _named_by_rules(call.tool, policy.rules):
        return
    known = [*checked.tools, *(n for r in policy.rules for t in r.targets for n in t.names
                               if "*" not in n)]
    report(TEST_UNKNOWN_TOOL.at(
        call.span,
        f'tool "{call.tool}" is neither declared nor named by any rule',
        did_you_mean(call.tool, known, '"') or "declare it with `tool \"name\" (...)`"))


def _named_by_rules(tool: str, rules: Iterable[ir.Rule]) -> bool:
    from charter.stdlib.globs import name_matches

    return any(name_matches(n, tool) for r in rules for t in r.targets for n in t.names)
