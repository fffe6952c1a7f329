"""LangChain's real `create_agent` with a scripted fake chat model (no network): three tool
calls in one turn, one allowed, one denied, one needing approval (spec hosts.md §3.3)."""

from __future__ import annotations

import uuid
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

pytest.importorskip("langchain")
from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import StructuredTool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.types import Command  # noqa: E402

from charter.hosts.adapters.langchain import CharterMiddleware  # noqa: E402


class ScriptedModel(GenericFakeChatModel):
    """The fake chat model, made to accept tools (its replies are scripted anyway)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def _tools(ran: Ran) -> list[StructuredTool]:
    return [StructuredTool.from_function(f, description=f.__name__) for f in tool_functions(ran)]


def _agent(ran: Ran, amount: int = 500) -> tuple[Any, Any, dict[str, Any]]:
    calls = [
        {"name": "kb_read", "args": {"q": "refunds"}, "id": "c1"},
        {"name": "shell_run", "args": {"cmd": "rm -rf /"}, "id": "c2"},
        {"name": "refund_create", "args": {"amount": amount, "customer": "cus_1"}, "id": "c3"},
    ]
    model = ScriptedModel(
        messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="done")])
    )
    guard = make_guard()
    agent = create_agent(
        model,
        _tools(ran),
        middleware=[CharterMiddleware(guard, **gate_options())],
        checkpointer=InMemorySaver(),
    )
    return agent, guard, {"configurable": {"thread_id": str(uuid.uuid4())}}


def _tool_messages(state: dict[str, Any]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in state["messages"] if isinstance(m, ToolMessage)}


def _pause(agent: Any, config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    state = agent.invoke({"messages": [("user", "refund cus_1")]}, config)
    interrupts = state.get("__interrupt__") or ()
    assert len(interrupts) == 1
    return state, interrupts[0]


def test_allow_runs_deny_never_runs_and_approval_pauses() -> None:
    ran = Ran()
    agent, guard, config = _agent(ran)
    state, pause = _pause(agent, config)
    assert ran.names() == ["kb_read"]  # shell never ran; the refund waits
    messages = _tool_messages(state)
    assert messages["c1"].status != "error"
    assert "[EMAIL]" in messages["c1"].content and "help@example.com" not in messages["c1"].content
    assert messages["c2"].status == "error"
    assert "no shell commands from this agent" in messages["c2"].content
    assert pause.value["approvers"] == ["finance"]
    assert pause.value["reasons"] == ["refunds over $100 need finance sign-off"]
    assert pause.value["tool"] == "refund_create" and pause.value["action"]


def test_a_grant_runs_the_call_once_and_settles_its_cost() -> None:
    ran = Ran()
    agent, guard, config = _agent(ran)
    _pause(agent, config)
    assert fits(guard, "5")
    state = agent.invoke(Command(resume={"type": "approve", "grant": grant(guard, 500)}), config)
    assert ran.names() == ["kb_read", "refund_create"]  # the sibling did not run again
    assert _tool_messages(state)["c3"].content == "refunded 500 to cus_1"
    assert state["messages"][-1].content == "done"
    assert not fits(guard, "5")  # $6 settled of the $10 session budget


def test_a_grant_for_other_arguments_is_refused() -> None:
    ran = Ran()
    agent, guard, config = _agent(ran)
    _pause(agent, config)
    state = agent.invoke(Command(resume={"type": "approve", "grant": grant(guard, 101)}), config)
    # the grant does not match this call: it is asked again, and never runs
    assert "refund_create" not in ran.names()
    assert state.get("__interrupt__")


def test_an_edited_call_is_decided_again() -> None:
    ran = Ran()
    agent, guard, config = _agent(ran)
    _pause(agent, config)
    edit = {
        "type": "edit",
        "edited_action": {"name": "refund_create", "args": {"amount": 50, "customer": "cus_1"}},
    }
    state = agent.invoke(Command(resume=edit), config)
    # $50 needs no approval: the edited call runs as itself, not on the $500 question
    assert ("refund_create", {"amount": 50, "customer": "cus_1"}) in ran.calls
    assert _tool_messages(state)["c3"].content == "refunded 50 to cus_1"


def test_a_rejection_reaches_the_model() -> None:
    ran = Ran()
    agent, guard, config = _agent(ran)
    _pause(agent, config)
    state = agent.invoke(Command(resume={"type": "reject", "message": "not today"}), config)
    assert "refund_create" not in ran.names()
    message = _tool_messages(state)["c3"]
    assert message.status == "error" and "not today" in message.content
