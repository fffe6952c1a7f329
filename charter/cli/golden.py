"""Golden files for `charter eval --expect`: what each request's decision must be.

An `expected.json` maps a request file's name to an expectation:

    effect            "allow" | "deny" | "require_approval"   (required)
    rules             ids that must be among the decision's rules (others may match too)
    reason_contains   a substring of one of the reasons
    warning_contains  a substring of one of the warnings
    approvers         the decision's approvers, exactly
    labels            labels the decision must add
    redacted          matcher names that must appear in the decision's redactions
    shadow            ids of @shadow rules that must be reported
    state             the runtime state the request is decided in (see `snapshot`)

Some decisions depend on state a single request does not carry: a rate limit already reached,
an approval already granted. Such an expectation says so with `state`, and `--expect`
decides that request in exactly that state; without it, a stateless `charter eval` of the
same file gives another answer, and the table says why ("needs state").
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from charter.engine.decision import Decision
from charter.engine.interpreter import counter_key
from charter.engine.snapshot import Snapshot
from charter.runtime.policy import Policy

_FIELDS = frozenset({"effect", "rules", "reason_contains", "warning_contains", "approvers",
                     "labels", "redacted", "shadow", "state", "xfail"})


class GoldenError(ValueError):
    """An expected.json that cannot be used: the message names the entry and the field."""


def validate(expected: object) -> dict[str, dict[str, Any]]:
    """The golden file's entries, or GoldenError naming what is wrong."""
    if not isinstance(expected, dict):
        raise GoldenError("expected an object mapping request file names to expectations")
    for name, exp in expected.items():
        if not isinstance(exp, dict) or "effect" not in exp:
            raise GoldenError(f"{name}: an expectation is an object with an `effect`")
        unknown = sorted(set(exp) - _FIELDS)
        if unknown:
            raise GoldenError(f"{name}: unknown field `{unknown[0]}` "
                              f"(known: {', '.join(sorted(_FIELDS))})")
    return expected


def snapshot(policy: Policy, request: Any, spec: Mapping[str, Any] | None) -> Snapshot | None:
    """The `state` of an expectation as a Snapshot; None without one.

    `counters` by the id of the budget or limit rule (keyed as that counter is keyed: by its
    `per` field, else the session id), `labels`, `approved_groups`, `history`
    ({tool: [[unix_time, {field: value}], ...]}) and `now` (unix time)."""
    if spec is None:
        return None
    counters: dict[tuple[str, str], int | Decimal] = {}
    for rule_id, used in spec.get("counters", {}).items():
        # A per-session budget reads the request's session total, not a snapshot counter.
        owned = [c for c in policy.counters
                 if policy.rules[c.rule].id == rule_id and not c.session_total]
        if not owned:
            raise GoldenError(f"state: no windowed budget or limit has the id {rule_id!r}")
        for c in owned:
            key = counter_key(c.key, request) if c.key is not None else request["session"]["id"]
            counters[(c.id, str(key))] = Decimal(str(used)) if c.metric == "cost_usd" else used
    history = {tool: tuple((float(at), fields) for at, fields in calls)
               for tool, calls in spec.get("history", {}).items()}
    return Snapshot(counters=counters, labels=frozenset(spec.get("labels", ())),
                    approved_groups=frozenset(spec.get("approved_groups", ())),
                    history=history, now=spec.get("now"))


def state_note(spec: Mapping[str, Any] | None) -> str:
    """A short account of the state a request is decided in, for the table."""
    if not spec:
        return ""
    parts = [f"{rule} used {used}" for rule, used in spec.get("counters", {}).items()]
    if spec.get("approved_groups"):
        parts.append("approved by " + ", ".join(spec["approved_groups"]))
    if spec.get("labels"):
        parts.append("labels " + ", ".join(spec["labels"]))
    if spec.get("history"):
        parts.append("earlier calls to " + ", ".join(spec["history"]))
    return "; ".join(parts)


def differences(d: Decision, exp: Mapping[str, Any]) -> list[str]:
    """How the decision differs from the expectation, in words (empty: it agrees)."""
    out = []
    if d.effect != exp["effect"]:
        out.append(f"effect {d.effect}, expected {exp['effect']}")
    missing = sorted(set(exp.get("rules", ())) - set(d.rules))
    if missing:
        out.append(f"rules {', '.join(missing)} did not match")
    if "reason_contains" in exp and not any(exp["reason_contains"] in r for r in d.reasons):
        out.append(f"no reason contains {exp['reason_contains']!r}")
    if "warning_contains" in exp and not any(exp["warning_contains"] in w for w in d.warnings):
        out.append(f"no warning contains {exp['warning_contains']!r}")
    if "approvers" in exp and sorted(d.approvers) != sorted(exp["approvers"]):
        out.append(f"approvers {sorted(d.approvers)}, expected {sorted(exp['approvers'])}")
    missing = sorted(set(exp.get("labels", ())) - set(d.labels))
    if missing:
        out.append(f"labels {', '.join(missing)} not added")
    redacted = {m for r in d.redactions for m, n in r.counts.items() if n}
    missing = sorted(set(exp.get("redacted", ())) - redacted)
    if missing:
        out.append(f"nothing redacted by {', '.join(missing)}")
    missing = sorted(set(exp.get("shadow", ())) - {s.rule for s in d.shadow})
    if missing:
        out.append(f"shadow rules {', '.join(missing)} not reported")
    return out
