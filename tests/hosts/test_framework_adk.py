"""Google ADK's real `InMemoryRunner` with a scripted `BaseLlm` (no network): three tool
calls in one turn, one allowed, one denied, one needing approval (hosts.md §3.3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
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

pytest.importorskip("google.adk")
from google.adk.agents import LlmAgent  # noqa: E402
from google.adk.apps import App  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_request import LlmRequest  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner  # noqa: E402
from google.genai import types  # noqa: E402

from charter.hosts.adapters.adk import CharterPlugin, confirmation_payload  # noqa: E402


class ScriptedLlm(BaseLlm):
    """First turn: the three calls; afterwards: "done"."""

    amount: int = 500
    turns: int = 0

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.turns += 1
        if self.turns == 1:
            calls = [
                ("kb_read", {"q": "refunds"}, "c1"),
                ("shell_run", {"cmd": "rm -rf /"}, "c2"),
                ("refund_create", {"amount": self.amount, "customer": "cus_1"}, "c3"),
            ]
            parts = [
                types.Part(function_call=types.FunctionCall(name=n, args=a, id=i))
                for n, a, i in calls
            ]
        else:
            parts = [types.Part(text="done")]
        yield LlmResponse(content=types.Content(role="model", parts=parts))


def _runner(ran: Ran) -> tuple[InMemoryRunner, Any]:
    guard = make_guard()
    agent = LlmAgent(
        name="support",
        model=ScriptedLlm(model="scripted"),
        tools=tool_functions(ran),
    )
    app = App(
        name="charter_test", root_agent=agent, plugins=[CharterPlugin(guard, **gate_options())]
    )
    runner = InMemoryRunner(app=app)
    return runner, guard


async def _run(runner: InMemoryRunner, session_id: str, message: types.Content) -> list[Any]:
    return [
        event
        async for event in runner.run_async(
            user_id="u1", session_id=session_id, new_message=message
        )
    ]


def _start(runner: InMemoryRunner) -> tuple[str, list[Any]]:
    async def go() -> tuple[str, list[Any]]:
        session = await runner.session_service.create_session(app_name="charter_test", user_id="u1")
        text = types.Content(role="user", parts=[types.Part(text="refund cus_1")])
        return session.id, await _run(runner, session.id, text)

    return asyncio.run(go())


def _responses(events: list[Any]) -> dict[str, Any]:
    return {r.id: r.response for e in events for r in e.get_function_responses()}


def _confirmation(events: list[Any]) -> Any:
    asks = [
        c for e in events for c in e.get_function_calls() if c.name == "adk_request_confirmation"
    ]
    assert len(asks) == 1
    return asks[0]


def _confirm(runner: InMemoryRunner, session_id: str, ask: Any, payload: Any) -> list[Any]:
    answer = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    name="adk_request_confirmation",
                    id=ask.id,
                    response={"confirmed": True, "payload": payload},
                )
            )
        ],
    )
    return asyncio.run(_run(runner, session_id, answer))


def test_allow_runs_deny_never_runs_and_approval_asks_for_confirmation() -> None:
    ran = Ran()
    runner, _ = _runner(ran)
    _, events = _start(runner)
    assert ran.names() == ["kb_read"]
    responses = _responses(events)
    assert "[EMAIL]" in str(responses["c1"]) and "help@example.com" not in str(responses["c1"])
    assert "no shell commands from this agent" in responses["c2"]["error"]
    ask = _confirmation(events)
    payload = ask.args["toolConfirmation"]["payload"]
    assert payload["approvers"] == ["finance"]
    assert payload["reasons"] == ["refunds over $100 need finance sign-off"]
    assert ask.args["originalFunctionCall"]["name"] == "refund_create"


def test_a_grant_runs_the_call_once_and_settles_its_cost() -> None:
    ran = Ran()
    runner, guard = _runner(ran)
    session_id, events = _start(runner)
    assert fits(guard, "5")
    after = _confirm(
        runner, session_id, _confirmation(events), confirmation_payload(grant(guard, 500))
    )
    assert ran.names() == ["kb_read", "refund_create"]
    assert "refunded 500 to cus_1" in str(_responses(after)["c3"])
    assert not fits(guard, "5")  # $6 settled of the $10 session budget


@pytest.mark.parametrize("granted_amount", [None, 101])
def test_confirmed_without_a_valid_grant_is_refused(granted_amount: int | None) -> None:
    ran = Ran()
    runner, guard = _runner(ran)
    session_id, events = _start(runner)
    payload = confirmation_payload(grant(guard, granted_amount)) if granted_amount else {}
    after = _confirm(runner, session_id, _confirmation(events), payload)
    assert "refund_create" not in ran.names()
    assert "approval not valid for this call" in _responses(after)["c3"]["error"]
