"""The `state` entry of a corpus case or an example's expected.json, as a `Snapshot`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from charter import Policy, Snapshot


def _read(req: Any, path: Any) -> Any:
    value = req.get(path.root)
    for key in path.keys:
        value = value[key]
    return value


def snapshot(policy: Policy, request: Any, spec: dict[str, Any] | None) -> Snapshot | None:
    """`counters` by rule id (keyed as the counter is), `labels`, `approved_groups`,
    `history` ({tool: [[time, fields], ...]}) and `now`; None without a spec."""
    if spec is None:
        return None
    counters: dict[tuple[str, str], int | Decimal] = {}
    for rule_id, used in spec.get("counters", {}).items():
        owned = [c for c in policy.counters if policy.rules[c.rule].id == rule_id]
        assert owned, f"no windowed budget or limit has the id {rule_id!r}"
        for c in owned:
            key = _read(request, c.key) if c.key is not None else request["session"]["id"]
            counters[(c.id, str(key))] = Decimal(str(used)) if c.metric == "cost_usd" else used
    history = {tool: tuple((float(at), fields) for at, fields in calls)
               for tool, calls in spec.get("history", {}).items()}
    return Snapshot(counters=counters, labels=frozenset(spec.get("labels", ())),
                    approved_groups=frozenset(spec.get("approved_groups", ())),
                    history=history, now=spec.get("now"))
