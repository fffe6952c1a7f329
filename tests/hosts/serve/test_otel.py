"""Decisions as OpenTelemetry, read back from the SDK's in-memory exporter: the
`gen_ai.guardrail.result` event on the host's execute_tool span (or on one Charter makes),
GenAI attribute names, rule ids rather than reason text, nothing of the request's content;
the sidecar's decisions traced under the caller's traceparent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from servekit import serving

import charter
from charter.hosts.otel import EVENT, DecisionEvents
from charter.hosts.serve import Sidecar
from charter.runtime.guard import Guard

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EMAIL = "jane.doe@example.com"
REFUND = {
    "tool": "refund.create",
    "agent": {"id": "sup-1", "team": "support"},
    "session": {"id": "s-otel", "cost_usd": 0.1},
    "args": {"amount": 250, "currency": "EUR", "order_id": "o-1", "reason": EMAIL},
}


@pytest.fixture
def traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _no_content(span: ReadableSpan) -> None:
    """No attribute of the span or its events carries the request's e-mail address."""
    everything = [dict(span.attributes or {})] + [dict(e.attributes or {}) for e in span.events]
    assert EMAIL not in json.dumps(everything, default=str)


def test_event_on_the_hosts_execute_tool_span(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    tracer = provider.get_tracer("host")
    policy = charter.load(EXAMPLES / "support")
    events = DecisionEvents(provider.get_tracer("charter"))
    with tracer.start_as_current_span("execute_tool refund.create", kind=SpanKind.INTERNAL):
        decision = policy.decide(REFUND)
        events.record(decision, REFUND, latency_us=12, decision_id="d-1")
    (span,) = exporter.get_finished_spans()  # no second span: the event is on the host's
    (event,) = span.events
    assert event.name == EVENT == "gen_ai.guardrail.result"
    a = dict(event.attributes or {})
    info = policy.info
    assert a["gen_ai.guardrail.component.name"] == "charter"
    assert a["gen_ai.guardrail.policy.id"] == info.name
    assert a["gen_ai.guardrail.policy.version"] == info.version
    assert a["gen_ai.guardrail.result.type"] == "effect"
    assert a["gen_ai.guardrail.result.value"] == "require_approval"
    assert a["gen_ai.guardrail.result.reason"] == "refund-allow,refund-approval"  # rule ids
    assert a["gen_ai.guardrail.source"] == "tool_call"
    assert a["charter.rules"] == ("refund-allow", "refund-approval")
    assert a["charter.approvers"] == ("finance",)
    assert a["charter.policy.digest"] == info.digest
    assert (a["charter.latency_us"], a["charter.decision_id"]) == (12, "d-1")
    assert "charter.reasons" not in a  # reason texts only when asked for
    _no_content(span)


def test_own_span_when_none_is_current(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    policy = charter.load(EXAMPLES / "support")
    events = DecisionEvents(provider.get_tracer("charter"), reasons=True)
    over = {**REFUND, "args": {**REFUND["args"], "amount": 5000}}
    events.record(policy.decide(over), over, call_id="toolu_1")
    (span,) = exporter.get_finished_spans()
    assert span.name == "execute_tool refund.create" and span.kind is SpanKind.INTERNAL
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "refund.create"
    assert attrs["gen_ai.tool.call.id"] == "toolu_1"
    assert attrs["gen_ai.conversation.id"] == "s-otel" and attrs["gen_ai.agent.id"] == "sup-1"
    assert attrs["error.type"] == "charter.denied"
    assert span.status.status_code is StatusCode.ERROR
    event = dict(span.events[0].attributes or {})
    assert event["gen_ai.guardrail.result.value"] == "deny"
    assert any("payments team" in r for r in event["charter.reasons"])
    _no_content(span)


def test_a_broken_tracer_does_not_break_the_decision() -> None:
    class Broken:
        def start_as_current_span(self, *a: object, **k: object) -> None:
            raise RuntimeError("exporter down")

    policy = charter.load(EXAMPLES / "support")
    DecisionEvents(Broken()).record(policy.decide(REFUND), REFUND)  # type: ignore[arg-type]


def test_sidecar_traces_each_decision_under_the_callers_traceparent(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    guard = Guard(charter.load(EXAMPLES / "support"))
    sidecar = Sidecar(guard, tracer=provider.get_tracer("charter"))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        d = http.post("/v1/decide", json=REFUND, headers={"traceparent": parent}).json()
        http.post("/v1/decide?stateless=1", content=b"{broken")
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    first, second = spans
    assert format(first.context.trace_id, "032x") == trace_id
    assert first.parent is not None and format(first.parent.span_id, "016x") == "00f067aa0ba902b7"
    event = dict(first.events[0].attributes or {})
    assert event["charter.decision_id"] == d["decision_id"]
    assert event["gen_ai.guardrail.result.value"] == "require_approval"
    assert isinstance(event["charter.latency_us"], int)
    _no_content(first)
    assert second.name == "execute_tool unknown"
    assert dict(second.events[0].attributes or {})["gen_ai.guardrail.source"] == "invalid"
