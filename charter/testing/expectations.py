"""Whether a decision meets an `expect` line, and how to describe the decision when it does not.

`expect OUTCOME` compares the final effect (`redact` asks whether any redaction applied).
`from "g"` needs `g` among the decision's approvers. `because "text"` needs `text` to be a
substring of one of the decision's reasons or warnings. `expect not X ...` holds exactly when
`expect X ...` (with its `from` and `because`) does not.
"""

from __future__ import annotations

from charter.engine.decision import Decision
from charter.language import ast
from charter.testing import render


def holds(expect: ast.Expect, decision: Decision) -> bool:
    """True when `decision` satisfies `expect`."""
    return _positive(expect, decision) != expect.negate


def _positive(expect: ast.Expect, d: Decision) -> bool:
    ok = bool(d.redactions) if expect.outcome == "redact" else d.effect == expect.outcome
    if ok and expect.group is not None:
        ok = expect.group in d.approvers
    if ok and expect.because is not None:
        ok = any(expect.because in r for r in (*d.reasons, *d.warnings))
    return ok


def describe(d: Decision) -> list[str]:
    """The decision as report lines: effect, matched rules, reasons, warnings, request errors
    no reason shows, redactions."""
    effect = "require approval" if d.effect == "require_approval" else d.effect
    if d.approvers:
        effect += " from " + ", ".join(render.string(g) for g in d.approvers)
    lines = [f"actual:   {effect}"]
    lines.append("  matched rules: " + (", ".join(d.rules) if d.rules else "(none)"))
    lines.extend(f"  reason: {r}" for r in d.reasons)
    lines.extend(f"  warning: {w}" for w in d.warnings)
    # An erring allow rule decides nothing, so its error is in no reason: show it here.
    shown = {*d.reasons, *d.warnings}
    lines.extend(f"  error: {e.reason}" for e in d.errors if e.reason not in shown)
    if d.redactions:
        lines.append("  redactions: " + ", ".join(f"{r.field} by {r.rule}" for r in d.redactions))
    return lines


def failure(expect: ast.Expect, d: Decision) -> list[str]:
    """Report lines for an expectation that did not hold."""
    return [f"expected: {render.expect(expect).removeprefix('expect ')}", *describe(d)]
