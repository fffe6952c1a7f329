"""Decisions as OpenTelemetry (spec hosts.md §6): each decision a `gen_ai.guardrail.result`
event on the host's `execute_tool {gen_ai.tool.name}` span.

    from opentelemetry import trace
    events = DecisionEvents(trace.get_tracer("charter"))
    decision = guard.check(request)
    events.record(decision, request)       # on the current span, or a new execute_tool span

The GenAI semantic conventions are in Development and moved out of the
`opentelemetry-semantic-conventions` package, so the attribute names Charter emits are
pinned here, not imported. What goes out is what the policy and the Guard made — effect,
rule ids, approver groups, labels, counts, the policy's name, version and digest — never the
request's content: `gen_ai.guardrail.result.reason` carries rule ids (the convention asks
for low cardinality and no user content), and reason texts go out only when asked for
(`reasons=True`), masked as in the decision log. Needs `opentelemetry-api` (the optional
`otel` extra); importing this module without it raises ImportError.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from charter.engine.decision import Decision

__all__ = ["EVENT", "DecisionEvents", "event_attributes"]

EVENT: Final = "gen_ai.guardrail.result"
OPERATION: Final = "gen_ai.operation.name"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_ID: Final = "gen_ai.agent.id"
ERROR_TYPE: Final = "error.type"
COMPONENT: Final = "gen_ai.guardrail.component.name"
POLICY_ID: Final = "gen_ai.guardrail.policy.id"
POLICY_VERSION: Final = "gen_ai.guardrail.policy.version"
RESULT_TYPE: Final = "gen_ai.guardrail.result.type"
RESULT_VALUE: Final = "gen_ai.guardrail.result.value"
RESULT_REASON: Final = "gen_ai.guardrail.result.reason"
SOURCE: Final = "gen_ai.guardrail.source"
DENIED: Final = "charter.denied"
_LOG = logging.getLogger("charter.otel")


def _name(request: Mapping[str, Any] | None) -> str | None:
    tool = request.get("tool") if request is not None else None
    name = tool.get("name") if isinstance(tool, Mapping) else tool
    return name if isinstance(name, str) else None


def _id(request: Mapping[str, Any] | None, part: str) -> str | None:
    value = request.get(part) if request is not None else None
    found = value.get("id") if isinstance(value, Mapping) else None
    return found if isinstance(found, str) else None


def event_attributes(
    decision: Decision,
    stage: str | None = None,
    *,
    latency_us: int | None = None,
    decision_id: str | None = None,
    reasons: bool = False,
) -> dict[str, Any]:
    """The attributes of one decision's `gen_ai.guardrail.result` event."""
    info = decision.policy
    attrs: dict[str, Any] = {
        COMPONENT: "charter",
        RESULT_TYPE: "effect",
        RESULT_VALUE: decision.effect,
        RESULT_REASON: ",".join(decision.rules),
        SOURCE: stage or "tool_call",
        "charter.effect": decision.effect,
        "charter.allowed": decision.allowed,
        "charter.rules": list(decision.rules),
        "charter.approvers": list(decision.approvers),
        "charter.labels": list(decision.labels),
        "charter.redaction.count": len(decision.redactions),
        "charter.warning.count": len(decision.warnings),
    }
    if info is not None:
        attrs[POLICY_ID] = info.name or ""
        attrs[POLICY_VERSION] = info.version or info.digest or ""
        attrs["charter.policy.digest"] = info.digest or ""
    if latency_us is not None:
        attrs["charter.latency_us"] = latency_us
    if decision_id is not None:
        attrs["charter.decision_id"] = decision_id
    if reasons:
        from charter.runtime.audit import mask_value

        masked = mask_value(list(decision.reasons))
        attrs["charter.reasons"] = [str(r) for r in masked] if isinstance(masked, list) else []
    return attrs


class DecisionEvents:
    """Record decisions on `tracer` (an OpenTelemetry `Tracer`; the global one by default).

    `record` puts the event on the current span when one is recording (the host's
    `execute_tool` span, say); otherwise it makes an `execute_tool {gen_ai.tool.name}` span
    (kind INTERNAL) for the call, under `context` when given (a parent extracted from a
    `traceparent` header), with `error.type = charter.denied` when the call may not run.
    Never raises: telemetry must not change a decision.
    """

    def __init__(self, tracer: trace.Tracer | None = None, *, reasons: bool = False) -> None:
        self.tracer = tracer if tracer is not None else trace.get_tracer("charter")
        self.reasons = reasons

    def record(
        self,
        decision: Decision,
        request: Mapping[str, Any] | None = None,
        stage: str | None = None,
        *,
        latency_us: int | None = None,
        decision_id: str | None = None,
        call_id: str | None = None,
        context: Context | None = None,
    ) -> None:
        try:
            self._record(decision, request, stage, latency_us, decision_id, call_id, context)
        except Exception as err:  # noqa: BLE001 - never let telemetry break a host
            _LOG.warning("cannot record the decision as OpenTelemetry: %r", err)

    def _record(
        self,
        decision: Decision,
        request: Mapping[str, Any] | None,
        stage: str | None,
        latency_us: int | None,
        decision_id: str | None,
        call_id: str | None,
        context: Context | None,
    ) -> None:
        if stage is None and request is not None:
            found = request.get("stage", "tool_call")
            stage = found if isinstance(found, str) else None
        attrs = event_attributes(
            decision, stage, latency_us=latency_us, decision_id=decision_id, reasons=self.reasons
        )
        current = trace.get_current_span(context)
        if context is None and current.is_recording():
            current.add_event(EVENT, attrs)
            return
        tool = _name(request) or "unknown"
        span_attrs: dict[str, Any] = {OPERATION: "execute_tool", TOOL_NAME: tool}
        for key, value in (
            (TOOL_CALL_ID, call_id),
            (CONVERSATION_ID, _id(request, "session")),
            (AGENT_ID, _id(request, "agent")),
        ):
            if value is not None:
                span_attrs[key] = value
        with self.tracer.start_as_current_span(
            f"execute_tool {tool}",
            context=context,
            kind=SpanKind.INTERNAL,
            attributes=span_attrs,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.add_event(EVENT, attrs)
            if not decision.allowed:
                span.set_attribute(ERROR_TYPE, DENIED)
                span.set_status(Status(StatusCode.ERROR, decision.effect))
