"""Pydantic AI's real `Agent` with its own `FunctionModel` (no network): three tool calls in
one turn, one allowed, one denied, one needing approval (spec hosts.md §3.3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hosts.frameworks_common import (
    Ran,
    fits,
    gate_options,
    grant,
    make_guard,
    tool_functions,
)

pytest.importorskip("pydantic_ai")
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ToolApproved  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402

from charter.hosts.adapters.pydantic_ai import CharterCapability, grant_metadata  # noqa: E402


def _script(amount: int) -> FunctionModel:
    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(
                parts=[
                    ToolCallPart("kb_read", {"q": "refunds"}, tool_call_id="c1"),
                    ToolCallPart("shell_run", {"cmd": "rm -rf /"}, tool_call_id="c2"),
                    ToolCallPart(
                        "refund_create", {"amount": amount, "customer": "cus_1"}, tool_call_id="c3"
                    ),
                ]
            )
        return ModelResponse(parts=[TextPart("done")])

    return FunctionModel(reply)


def _agent(ran: Ran, amount: int = 500) -> tuple[Agent[None, Any], Any]:
    guard = make_guard()
    agent: Agent[None, Any] = Agent(
        _script(amount),
        output_type=[str, DeferredToolRequests],
        capabilities=[CharterCapability(guard, **gate_options())],
    )

    for tool in tool_functions(ran):
        agent.tool_plain(tool)

    return agent, guard


def _returns(messages: list[ModelMessage]) -> dict[str, Any]:
    return {
        part.tool_call_id: part.content
        for m in messages
        if isinstance(m, ModelRequest)
        for part in m.parts
        if isinstance(part, ToolReturnPart)
    }


def test_allow_runs_deny_never_runs_and_approval_defers() -> None:
    ran = Ran()
    agent, _ = _agent(ran)
    result = agent.run_sync("refund cus_1")
    assert ran.names() == ["kb_read"]
    returns = _returns(result.all_messages())
    assert "[EMAIL]" in returns["c1"] and "help@example.com" not in returns["c1"]
    assert "no shell commands from this agent" in returns["c2"]
    pending = result.output
    assert isinstance(pending, DeferredToolRequests)
    assert [c.tool_call_id for c in pending.approvals] == ["c3"]
    assert pending.metadata["c3"]["approvers"] == ["finance"]
    assert pending.metadata["c3"]["reasons"] == ["refunds over $100 need finance sign-off"]


def _resume(agent: Agent[None, Any], first: Any, approval: Any, token: str | None) -> Any:
    results = DeferredToolResults(
        approvals={"c3": approval}, metadata={"c3": grant_metadata(token)} if token else {}
    )
    return agent.run_sync(message_history=first.all_messages(), deferred_tool_results=results)


def test_a_grant_runs_the_call_once_and_settles_its_cost() -> None:
    ran = Ran()
    agent, guard = _agent(ran)
    first = agent.run_sync("refund cus_1")
    assert fits(guard, "5")
    second = _resume(agent, first, ToolApproved(), grant(guard, 500))
    assert ran.names() == ["kb_read", "refund_create"]
    assert _returns(second.all_messages())["c3"] == "refunded 500 to cus_1"
    assert second.output == "done"
    assert not fits(guard, "5")  # $6 settled of the $10 session budget


@pytest.mark.parametrize("granted_amount", [None, 101])
def test_approved_without_a_valid_grant_is_refused(granted_amount: int | None) -> None:
    ran = Ran()
    agent, guard = _agent(ran)
    first = agent.run_sync("refund cus_1")
    second = _resume(
        agent, first, ToolApproved(), grant(guard, granted_amount) if granted_amount else None
    )
    assert "refund_create" not in ran.names()
    assert "approval not valid for this call" in _returns(second.all_messages())["c3"]


def test_edited_arguments_are_decided_again() -> None:
    ran = Ran()
    agent, guard = _agent(ran)
    first = agent.run_sync("refund cus_1")
    token = grant(guard, 500)
    # approved for $500, edited to $900: the old grant does not cover it
    second = _resume(
        agent, first, ToolApproved(override_args={"amount": 900, "customer": "cus_1"}), token
    )
    assert "refund_create" not in ran.names()
    assert "approval not valid" in _returns(second.all_messages())["c3"]
    # edited to $50: needs no approval, runs as itself
    third = _resume(
        agent, first, ToolApproved(override_args={"amount": 50, "customer": "cus_1"}), token
    )
    assert ("refund_create", {"amount": 50, "customer": "cus_1"}) in ran.calls
    assert _returns(third.all_messages())["c3"] == "refunded 50 to cus_1"
