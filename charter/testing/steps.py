"""`scenario` blocks: calls run in order through a `Guard` over a fresh memory store.

What one call does stays for the next: budgets and limits reserve, labels stick, history is
recorded, grants are used up. Each `expect` is about the call above it; `approve from "g"`
grants that call's action (as a human of group g would), and the next call carries the
grant. `given` lines between calls change the context of the calls after them (`given now`
moves the clock); their labels, usage and history go into the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charter.engine.decision import Decision
from charter.language import ast
from charter.language.diagnostics import TEST_APPROVED_IN_SCENARIO
from charter.language.source import Diagnostic
from charter.runtime.approvals import Grant
from charter.runtime.guard import Guard
from charter.runtime.policy import Policy
from charter.runtime.state import MemoryStore
from charter.runtime.state.base import Reservation
from charter.testing import expectations
from charter.testing.givens import Context, GivenReader, counter_key, counts
from charter.testing.scenario import call_request

DEFAULT_SESSION = "scenario"


@dataclass
class ScenarioRun:
    """What running a scenario found: failure lines, diagnostics, the rules that matched."""

    failures: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    matched: set[int] = field(default_factory=set)
    calls: int = 0


class _Runner:
    def __init__(self, test: ast.Test, policy: Policy, reader: GivenReader,
                 out: ScenarioRun) -> None:
        self.test, self.policy, self.reader, self.out = test, policy, reader, out
        self.ctx = Context(records={"session": {"id": DEFAULT_SESSION}})
        self.store = MemoryStore()
        self.guard = Guard(policy, self.store, clock=lambda: self.ctx.timestamp)
        self.last: Decision | None = None
        self.grants: list[Grant] = []
        self.rule_index = {r.id: r.index for r in policy.ir.rules}

    def run(self) -> None:
        for step in self.test.steps:
            if isinstance(step, ast.GivenLine):
                self._given(step)
            elif isinstance(step, ast.TestCall):
                self._call(step)
            elif isinstance(step, ast.Expect):
                self._expect(step)
            else:
                self._approve(step)

    def _given(self, line: ast.GivenLine) -> None:
        for g in line.parts:
            if g.kind == "approved":
                self.out.diagnostics.append(TEST_APPROVED_IN_SCENARIO.at(
                    g.span,
                    "`given approved` does not apply in a scenario",
                    'approve the call that asks with `approve from "group"` below it'))
        ctx = self.ctx
        labels, usage, history = set(ctx.labels), len(ctx.usage), len(ctx.history)
        self.reader.apply(ctx, [g for g in line.parts if g.kind != "approved"])
        self._store(Context(labels=ctx.labels - labels, usage=ctx.usage[usage:],
                            history=ctx.history[history:]))

    def _store(self, added: Context) -> None:
        """Put the labels, usage and history that one `given` line added into the store."""
        request = self.ctx.request()
        session = str(request.get("session", {}).get("id", DEFAULT_SESSION))
        now = self.ctx.timestamp
        if added.labels:
            self.store.add_labels(session, added.labels)
        for tool, fields in added.history:
            self.store.record_call(session, tool, fields, now)
        reservations = [
            Reservation(spec.id, key, spec.window, u.amount)
            for u in added.usage for spec in self.policy.ir.counters
            if counts(spec, u, self.policy.ir)
            and (key := counter_key(spec, request)) is not None]
        if reservations:
            self.store.reserve(reservations, now)

    def _call(self, call: ast.TestCall) -> None:
        request: dict[str, Any] = call_request(self.reader, self.ctx, call, call.args)
        if self.grants:
            request["approvals"] = [g.to_dict() for g in self.grants]
            self.grants = []
        self.last = self.guard.check(request)
        self.out.calls += 1
        self.out.matched.update(self.rule_index[r] for r in self.last.rules
                                if r in self.rule_index)

    def _expect(self, expect: ast.Expect) -> None:
        if self.last is None or expectations.holds(expect, self.last):
            return
        self.out.failures.append(f"{expect.span}: expectation failed (call {self.out.calls})")
        self.out.failures.extend("  " + x for x in expectations.failure(expect, self.last))

    def _approve(self, step: ast.Approve) -> None:
        if self.last is None:
            return
        try:
            self.grants.append(self.guard.approve(self.last, step.by or "tester", step.group))
        except ValueError as err:
            self.out.failures.append(f"{step.span}: cannot approve: {err}")
            self.out.failures.extend("  " + x for x in expectations.describe(self.last))


def run_scenario(test: ast.Test, policy: Policy, reader: GivenReader) -> ScenarioRun:
    """Run a scenario's steps; diagnostics from reading its values go to the result."""
    out = ScenarioRun()
    reader.report = out.diagnostics.append
    reader.values.report = out.diagnostics.append
    _Runner(test, policy, reader, out).run()
    return out
