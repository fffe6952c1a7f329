"""Checking `property` blocks with Hypothesis.

A property holds when every generated `tool_call` request to its target tools that satisfies
its `where` clause gets a decision meeting its `expect`. Requests are decided against an
empty state snapshot (no grants, no counters, no stored labels): exactly what a `test` block
with no `approved`/`labels` givens runs against, so a printed counterexample, pasted as a
test, fails the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from charter.engine import ir
from charter.engine.decision import Decision
from charter.engine.interpreter import Ctx, eval_rule
from charter.engine.snapshot import Snapshot
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.types import Type
from charter.runtime.policy import Policy
from charter.stdlib.globs import name_matches
from charter.testing.biases import Biases
from charter.testing.expectations import holds
from charter.testing.scenario import args_type

EMPTY_STATE = Snapshot()
# A property passes only when at least 1/FLOOR_DIVISOR of its examples were meaningful.
FLOOR_DIVISOR = 10


@dataclass(frozen=True, slots=True)
class Where:
    """A property's `where` clause, lowered as a rule of a policy that has it (see suite)."""

    rule: ir.Rule
    policy: Policy


@dataclass(frozen=True, slots=True)
class PropertyOutcome:
    """What checking one property found. `counterexample` is the shrunk failing request.

    `examples` counts the generated requests that met the `where` clause and were decided;
    `request_errors` those of them whose decision held only through a request error (a field
    the policy reads was missing or mistyped); `rejected` the requests `where` turned away.
    Both kinds are vacuous: they say nothing about the property. `floor` is the number of
    meaningful examples the run needed.
    """

    passed: bool
    examples: int
    counterexample: dict[str, Any] | None = None
    decision: Decision | None = None
    problem: str | None = None
    request_errors: int = 0
    rejected: int = 0
    floor: int = 0
    error_sample: str | None = None

    @property
    def meaningful(self) -> int:
        return self.examples - self.request_errors


def default_floor(examples: int) -> int:
    """The meaningful examples a property needs by default: a tenth of those asked for."""
    return max(1, examples // FLOOR_DIVISOR)


def target_tools(prop: ast.Property, checked: CheckedPolicy,
                 policy: ir.Policy) -> list[tuple[str, Type]]:
    """The tools a property quantifies over, with their argument types.

    Declared tools are used as declared; a glob or a rule's glob adds one concrete name it
    matches, so undeclared tools that rules open are probed too. Request-supplied tags are
    never generated (a `test` block cannot write them), so `to tool tagged T` covers the
    declared tools tagged T.
    """
    declared = list(checked.tools)
    t = prop.target
    if t is not None and t.tag is not None:
        names = [n for n in declared if t.tag in checked.tools[n].tags]
    elif t is not None:
        names = []
        for pattern in t.names:
            hits = [n for n in declared if name_matches(pattern, n)]
            names.extend(hits or [concrete(pattern)])
    else:
        patterns = {n for r in policy.rules for tg in r.targets for n in tg.names}
        names = declared + [concrete(p) for p in sorted(patterns)]
    unique = list(dict.fromkeys(names))
    return [(n, args_type(checked, n)) for n in unique]


def concrete(pattern: str) -> str:
    """A tool name a glob matches: `kb.**` → `kb.x.y`, `search.*` → `search.x`."""
    return pattern.replace("**", "x.y").replace("*", "x")


def where_holds(where: Where | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate for generated requests; a `where` that errors on a request excludes it."""
    if where is None:
        return lambda _req: True
    pol = where.policy

    def check(req: dict[str, Any]) -> bool:
        name = str(req["tool"])
        ctx = Ctx(req, EMPTY_STATE, "tool_call", name, pol.plan.declared_tags(name),
                  pol.matchers)
        return eval_rule(where.rule, ctx) is True

    return check


class _Failed(Exception):
    pass


@dataclass
class _Tally:
    """Examples counted up to the first failure (shrinking runs are not examples)."""

    decided: int = 0
    request_errors: int = 0
    rejected: int = 0
    error_sample: str | None = None

    def vacuous(self, decision: Decision) -> None:
        self.request_errors += 1
        if self.error_sample is None:
            self.error_sample = decision.errors[0].reason


def check_property(prop: ast.Property, policy: Policy, tools: list[tuple[str, Type]],
                   where: Where | None, biases: Biases, seed: int,
                   examples: int, floor: int | None = None) -> PropertyOutcome:
    """Run Hypothesis on one property; reproducible for a given `seed`.

    A property passes when no example falsifies it *and* at least `floor` examples
    (default: `default_floor(examples)`) were meaningful: met the `where` clause and were
    decided without a request error.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as with_seed
    from hypothesis.errors import Unsatisfiable

    from charter.testing.steering import steer
    from charter.testing.strategies import RequestStrategies

    if not tools:
        return PropertyOutcome(False, 0, problem="its target matches no declared tool")
    keep = where_holds(where)
    failures: list[tuple[dict[str, Any], Decision]] = []
    tally = _Tally()
    steering = steer(where.rule.cond) if where is not None else None

    # No `explain` phase: its notes go unprinted, and it replays the shrunk example many times.
    @with_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False, print_blob=False,
              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink))
    @given(RequestStrategies(biases, steering).request(tools))
    def run(req: dict[str, Any]) -> None:
        from hypothesis import reject

        counting = not failures
        if not keep(req):
            tally.rejected += counting
            reject()
        decision = policy.decide(req, EMPTY_STATE)
        if not holds(prop.expect, decision):
            failures.append((req, decision))
            raise _Failed
        if counting:
            tally.decided += 1
            if decision.errors:
                tally.vacuous(decision)

    try:
        run()
    except _Failed:
        req, decision = failures[-1]  # Hypothesis replays the shrunk example last
        return _outcome(False, tally, 0, req, decision)
    except Unsatisfiable:
        return _outcome(False, tally, 0,
                        problem="no generated request satisfies its `where` clause")
    need = _floor(tally, examples, floor)
    if tally.decided - tally.request_errors < need:
        return _outcome(False, tally, need, problem="vacuous")
    return _outcome(True, tally, need)


def _floor(tally: _Tally, examples: int, floor: int | None) -> int:
    need = default_floor(examples) if floor is None else floor
    # Hypothesis stops early when it has tried every distinct request (a tool with one bool
    # argument). Then the examples run are all there are; one meaningful one must remain.
    exhausted = tally.decided < examples and tally.rejected <= tally.decided
    return min(need, 1) if exhausted else need


def _outcome(passed: bool, tally: _Tally, floor: int, req: dict[str, Any] | None = None,
             decision: Decision | None = None, problem: str | None = None) -> PropertyOutcome:
    return PropertyOutcome(passed, tally.decided + (req is not None), req, decision, problem,
                           tally.request_errors, tally.rejected, floor, tally.error_sample)
