"""Cedar adapter (cedarpy): pre-parsed PolicySet and Entities, one ``is_authorized`` per call.

Cedar only answers Allow/Deny. Policies carry ``@id("<kind>:<name>")`` with kind ``allow``,
``approval`` (a permit) or ``deny`` (a forbid); the adapter reads the kinds of the determining
policies to rebuild Charter's three-way effect (see benchmarks/reference/policy.cedar).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cedarpy

from benchmarks.engines.base import DecimalFields, Request, convert_decimals, tool_name

_SECTIONS = ("agent", "user", "session", "args", "estimate")
_ACTION = {"type": "Action", "id": "call"}
_MICROS = 1_000_000


@dataclass(frozen=True)
class CedarSource:
    policies: str
    entities: str = "[]"
    # Money fields, sent to Cedar as integer micro-units (Cedar has no decimal `+`).
    decimal_fields: DecimalFields = ()


@dataclass(frozen=True)
class LoadedCedar:
    policies: cedarpy.PolicySet
    entities: cedarpy.Entities
    decimal_fields: DecimalFields


def load(source: CedarSource) -> LoadedCedar:
    return LoadedCedar(
        policies=cedarpy.PolicySet.from_str(source.policies),
        entities=cedarpy.Entities.from_json_str(source.entities),
        decimal_fields=source.decimal_fields,
    )


def _micros(value: Any) -> int:
    return int(round(value * _MICROS))


def _kind(annotation: str) -> str:
    return annotation.partition(":")[0]


def decide(loaded: LoadedCedar, request: Request) -> str:
    name = tool_name(request)
    context: dict[str, Any] = {"tool": name}
    for key in _SECTIONS:
        if key in request:
            context[key] = request[key]
    convert_decimals(context, loaded.decimal_fields, _micros)
    agent = request.get("agent") or {}
    cedar_request = {
        "principal": {"type": "Agent", "id": str(agent.get("id", ""))},
        "action": _ACTION,
        "resource": {"type": "Tool", "id": name},
        "context": context,
    }
    result = cedarpy.is_authorized(cedar_request, loaded.policies, loaded.entities)
    diagnostics = result.diagnostics
    # Cedar skips a policy whose condition errors; Charter counts an erroring deny as
    # matched, so any evaluation error fails closed here.
    if not result.allowed or diagnostics.errors:
        return "deny"
    annotations = diagnostics.id_annotations_by_reason
    kinds = {_kind(annotations.get(policy_id, "allow:")) for policy_id in diagnostics.reasons}
    if "allow" not in kinds:
        return "deny"  # only approval permits matched: approval never grants
    return "require_approval" if "approval" in kinds else "allow"
