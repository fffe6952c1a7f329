"""Running tests and properties: one `CaseResult` per block, plus the rules each test touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from charter.language import ast
from charter.language.diagnostics import PROPERTY_NO_TARGET
from charter.language.source import Diagnostic
from charter.testing import expectations, render
from charter.testing.biases import Biases, collect
from charter.testing.givens import GivenReader
from charter.testing.properties import PropertyOutcome, check_property, target_tools
from charter.testing.scenario import Case, cases
from charter.testing.steps import run_scenario
from charter.testing.suite import Unit

Status = Literal["pass", "fail", "error"]
DEFAULT_EXAMPLES = 200


@dataclass
class CaseResult:
    """The outcome of one `test` or `property` block.

    `details` are the report lines under a failure (expected/actual, diagnostics);
    `matched`/`reached` are rule indices the test's request matched / evaluated (tests only);
    `counterexample` is a pasteable `test` block for a failed property; `diagnostics` are the
    CH04xx (and `where` clause) errors behind an "error" status, rendered in `details`.
    """

    kind: Literal["test", "property"]
    name: str
    file: str
    line: int
    status: Status
    details: list[str] = field(default_factory=list)
    counterexample: str | None = None
    matched: set[int] = field(default_factory=set)
    reached: set[int] = field(default_factory=set)
    examples: int = 0
    vacuous: tuple[int, int] = (0, 0)  # properties: (request errors, `where` rejections)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def meaningful(self) -> int:
        return self.examples - self.vacuous[0]

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


def run_test(unit: Unit, test: ast.Test) -> CaseResult:
    """Decide the test's request (each row's, for a table; each call in turn, through a
    Guard, for a scenario) and compare the decisions with the expectations."""
    result = CaseResult("test", test.name, test.span.file, test.span.line, "pass")
    assert unit.policy is not None and unit.comp.checked is not None
    diags: list[Diagnostic] = []
    if test.scenario:
        reader = GivenReader(unit.comp.checked, unit.policy.ir, diags.append)
        run = run_scenario(test, unit.policy, reader)
        diags, result.details = run.diagnostics, run.failures
        result.matched = result.reached = run.matched
    else:
        found = cases(test, unit.comp.checked, unit.policy.ir, diags.append)
        for case in found:
            _check_case(unit, case, result)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        result.status = "error"
        result.diagnostics = errors
        result.details = [d.render(unit.comp.sources.get(d.span.file)) for d in errors]
    elif result.details:
        result.status = "fail"
    return result


def _check_case(unit: Unit, case: Case, result: CaseResult) -> None:
    assert unit.policy is not None
    report = unit.policy.explain(case.scenario.request, case.scenario.state)
    decision = report["decision"]
    for row in report["rules"]:
        result.reached.add(row["rule"].index)
        if row["outcome"] is not False:
            result.matched.add(row["rule"].index)
    where = f" ({case.label}, line {case.line})" if case.label else ""
    for expect in case.expects:
        if not expectations.holds(expect, decision):
            result.details.append(f"{expect.span}: expectation failed{where}")
            result.details.extend("  " + line for line in expectations.failure(expect, decision))


def run_property(unit: Unit, prop: ast.Property, seed: int, examples: int,
                 biases: Biases | None = None, floor: int | None = None) -> CaseResult:
    """Check one property; a failure carries the shrunk counterexample as a `test` block.

    `floor`: the meaningful examples it needs to pass (see `properties.default_floor`)."""
    result = CaseResult("property", prop.name, prop.span.file, prop.span.line, "pass")
    assert unit.policy is not None and unit.comp.checked is not None
    where_errors = [d for d in unit.where_diagnostics if d.severity == "error"
                    and prop.where is not None and d.span.file == prop.where.span.file
                    and prop.where.span.start <= d.span.start <= prop.where.span.end]
    if where_errors:
        result.status = "error"
        result.diagnostics = where_errors
        result.details = [d.render(unit.comp.sources.get(d.span.file)) for d in where_errors]
        return result
    tools = target_tools(prop, unit.comp.checked, unit.policy.ir)
    if not tools:
        span = prop.target.span if prop.target else prop.span
        d = PROPERTY_NO_TARGET.at(
            span, "this property's target matches no declared tool",
            "properties generate calls to declared tools; declare the tools it means")
        result.status = "error"
        result.diagnostics = [d]
        result.details = [d.render(unit.comp.sources.get(span.file))]
        return result
    outcome = check_property(prop, unit.policy, tools, unit.where.get(id(prop)),
                             biases or collect(unit.policy.ir), seed, examples, floor)
    result.examples = outcome.examples
    result.vacuous = (outcome.request_errors, outcome.rejected)
    if outcome.passed:
        return result
    result.status = "fail"
    if outcome.problem == "vacuous":
        result.details = _vacuous(prop, outcome)
        return result
    if outcome.problem:
        result.details = [f"{prop.span}: property cannot be checked: {outcome.problem}"]
        return result
    assert outcome.counterexample is not None and outcome.decision is not None
    head = f"{prop.expect.span}: falsified ({outcome.examples} examples run, then shrunk)"
    result.details = [head,
                      *("  " + x for x in expectations.failure(prop.expect, outcome.decision))]
    result.counterexample = render.test_block(
        f"{prop.name} (counterexample)", outcome.counterexample, prop.expect)
    return result


def _vacuous(prop: ast.Property, o: PropertyOutcome) -> list[str]:
    """Why a property that nothing falsified still fails: too few meaningful examples."""
    lines = [f"{prop.span}: vacuous: only {o.meaningful} of {o.examples} examples were "
             f"meaningful (at least {o.floor} needed)",
             f"  {o.request_errors} ended in a request error, {o.rejected} generated requests "
             "were rejected by `where`"]
    if o.error_sample:
        lines.append(f"  for example: {o.error_sample}")
    lines.append("  help: give the requests what the policy reads (e.g. `where has(agent.team)`)"
                 ", or lower the floor with --min-examples")
    return lines
