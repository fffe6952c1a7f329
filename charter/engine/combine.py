"""How matched rules combine into one decision (DESIGN §1.3, §1.6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from charter.engine import ir
from charter.engine.decision import Decision, PolicyInfo, Redaction, RuleError, ShadowHit
from charter.engine.snapshot import Snapshot

Outcome = bool | RuleError  # matched / not matched, or the rule's request error


def rule_reason(rule: ir.Rule) -> str:
    if rule.because:
        return rule.because
    if rule.kind == "require_approval":
        return f"approval required from {', '.join(rule.groups)} (rule {rule.id})"
    if rule.kind == "deny":
        return f"denied by rule {rule.id}"
    return f"{rule.kind} by rule {rule.id}"


def combine(
    policy: ir.Policy, info: PolicyInfo, rules: Sequence[ir.Rule], outcomes: Sequence[Outcome],
    st: Snapshot | None, redact: Any = None, what: str = "",
) -> Decision:
    """Build the decision from each candidate rule's outcome.

    Errors never open the gate: an erroring allow rule counts as not matched, any other
    erroring rule as matched, and the error's reason joins the reasons. `redact(rule)`
    returns the Redaction for a matched redact rule (None to skip), or the error that kept
    it from scanning the value (the decision is then a deny).
    """
    denied = allowed = False
    approvers: list[str] = []
    reasons: list[str] = []
    matched: list[str] = []
    warnings: list[str] = []
    labels: list[str] = []
    redactions: list[Redaction] = []
    shadow: list[ShadowHit] = []
    errors: list[RuleError] = []
    approved = st.approved_groups if st is not None else frozenset()
    for rule, out in zip(rules, outcomes, strict=True):
        if out is False:
            continue
        fault = out if isinstance(out, RuleError) else None
        err = fault.reason if fault is not None else None
        if rule.shadow:
            shadow.append(ShadowHit(rule.id, rule.kind, err or rule_reason(rule)))
            continue
        if fault is not None:
            errors.append(fault)
            if rule.kind == "allow":
                continue  # an erroring allow rule never grants
        kind = rule.kind
        if kind == "require_approval" and err is None and approved.intersection(rule.groups):
            continue  # a valid grant from one of its groups satisfies the rule
        matched.append(rule.id)
        if kind == "allow":
            allowed = True
            if rule.because:
                reasons.append(rule.because)
        elif kind == "deny":
            denied = True
            reasons.append(err or rule_reason(rule))
        elif kind == "require_approval":
            approvers.extend(g for g in rule.groups if g not in approvers)
            reasons.append(err or rule_reason(rule))
        elif kind == "warn":
            warnings.append(err or rule_reason(rule))
        elif kind == "label" and rule.label is not None:
            if rule.label not in labels:
                labels.append(rule.label)
        elif kind == "redact" and redact is not None:
            r = redact(rule)
            if isinstance(r, RuleError):  # a value that cannot be scanned is never let through
                denied = True
                reasons.append(r.reason)
                errors.append(r)
            elif r is not None:
                redactions.append(r)
    if not denied and not allowed and policy.default == "deny":
        denied = True
        reasons.append(f"no rule allows {what or 'this request'} (default deny)")
        # An allow rule that errored explains why nothing allowed.
        reasons.extend(e.reason for e in errors if e.reason not in reasons)
    effect = "deny" if denied else "require_approval" if approvers else "allow"
    return Decision(
        effect=effect, allowed=effect == "allow", reasons=tuple(reasons), rules=tuple(matched),
        approvers=tuple(approvers), redactions=tuple(redactions), warnings=tuple(warnings),
        labels=tuple(labels), shadow=tuple(shadow), errors=tuple(errors), policy=info,
    )


def malformed(info: PolicyInfo | None, message: str, field: str | None = None) -> Decision:
    """A request the evaluator cannot read: deny, with `message` naming the field (`field`
    its path, when one field is at fault). No rule caused it, so the error's rule is None."""
    return Decision.refused(info, RuleError(None, field, message))
