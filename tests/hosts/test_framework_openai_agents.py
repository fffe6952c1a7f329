"""The OpenAI Agents SDK's real `Runner` with its own `ScriptedModel` (no network): three
tool calls in one turn, one allowed, one denied, one needing approval (hosts.md §3.3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hosts.frameworks_common import (
    Ran,
    fits,
    gate_options,
    make_guard,
    tool_functions,
)

pytest.importorskip("agents")
from agents import Agent, Runner, set_tracing_disabled  # noqa: E402
from agents.items import ToolCallOutputItem  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from charter.hosts.adapters.openai_agents import CharterTools  # noqa: E402

set_tracing_disabled(True)  # no trace export: the tests run offline


def _agent(ran: Ran, amount: int = 500) -> tuple[Agent[Any], CharterTools]:
    tools = CharterTools(make_guard(), **gate_options())

    kb_read, shell_run, refund_create = (tools.tool(f) for f in tool_functions(ran))

    model = ScriptedModel(
        [
            [
                function_call("kb_read", {"q": "refunds"}, call_id="c1"),
                function_call("shell_run", {"cmd": "rm -rf /"}, call_id="c2"),
                function_call(
                    "refund_create", {"amount": amount, "customer": "cus_1"}, call_id="c3"
                ),
            ],
            [assistant_message("done")],
        ]
    )
    agent: Agent[Any] = Agent(
        name="support", model=model, tools=[kb_read, shell_run, refund_create]
    )
    return agent, tools


def _outputs(result: Any) -> dict[str, Any]:
    return {
        item.raw_item["call_id"]
        if isinstance(item.raw_item, dict)
        else item.raw_item.call_id: item.output
        for item in result.new_items
        if isinstance(item, ToolCallOutputItem)
    }


def test_allow_runs_deny_never_runs_and_approval_interrupts() -> None:
    ran = Ran()
    agent, _ = _agent(ran)
    result = Runner.run_sync(agent, "refund cus_1")
    assert ran.names() == ["kb_read"]
    outputs = _outputs(result)
    assert "[EMAIL]" in outputs["c1"] and "help@example.com" not in outputs["c1"]
    assert "no shell commands from this agent" in outputs["c2"]
    assert [item.tool_name for item in result.interruptions] == ["refund_create"]


def test_a_grant_runs_the_call_once_and_settles_its_cost() -> None:
    ran = Ran()
    agent, tools = _agent(ran)
    first = Runner.run_sync(agent, "refund cus_1")
    state = first.to_state()
    assert fits(tools.gate.guard, "5")
    tools.approve(state, first.interruptions[0], by="alice", group="finance")
    second = Runner.run_sync(agent, state)
    assert ran.names() == ["kb_read", "refund_create"]
    assert _outputs(second)["c3"] == "refunded 500 to cus_1"
    assert second.final_output == "done"
    assert not fits(tools.gate.guard, "5")  # $6 settled of the $10 session budget


def test_the_wrong_group_cannot_approve() -> None:
    ran = Ran()
    agent, tools = _agent(ran)
    first = Runner.run_sync(agent, "refund cus_1")
    with pytest.raises(ValueError, match="cannot approve"):
        tools.approve(first.to_state(), first.interruptions[0], by="bob", group="support")


def test_approved_in_the_sdk_without_a_grant_is_refused() -> None:
    ran = Ran()
    agent, _ = _agent(ran)
    first = Runner.run_sync(agent, "refund cus_1")
    state = first.to_state()
    state.approve(first.interruptions[0])  # the SDK's own approval, no Charter grant
    second = Runner.run_sync(agent, state)
    assert "refund_create" not in ran.names()
    assert "approval required from finance" in _outputs(second)["c3"]
