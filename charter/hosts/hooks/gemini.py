"""Gemini CLI (spec hosts.md §2.3): `decision` allow / deny with `reason` (sent to the agent
as the tool error); `hookSpecificOutput.tool_input` merges into the model's arguments;
`AfterTool` replaces the output with `hookSpecificOutput.tool_output`, or hides it on deny.
No `ask`: an approval is a deny naming its ticket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.hosts.hooks.common import BadEvent, obj, prune, text
from charter.hosts.names import tool_object
from charter.hosts.wire import Caps, HookEvent, Verdict

AGENT = "gemini"
_EVENTS = {
    "BeforeTool": ("tool_call", Caps(block=True, rewrite_args=True)),
    "AfterTool": ("tool_result", Caps(block=False, rewrite_result=True)),
    "BeforeAgent": ("model_input", Caps(block=True)),
}


def read(event: dict[str, Any], names: str, env: Mapping[str, str]) -> HookEvent | str:
    try:
        name = text(event, "hook_event_name", AGENT)
        assert name is not None
        if name not in _EVENTS:
            return HookEvent(AGENT, name, None)
        stage, caps = _EVENTS[name]
        request: dict[str, Any] = {
            "stage": stage,
            "session": {"id": text(event, "session_id", AGENT)},
            "agent": {"id": AGENT},
        }
        if stage == "model_input":
            prompt = event.get("prompt")
            if type(prompt) is not str:
                raise BadEvent(f"{AGENT} hook event: prompt must be a string")
            request["input"] = prompt
            return HookEvent(AGENT, name, stage, request, caps)
        raw = text(event, "tool_name", AGENT)
        assert raw is not None
        context = event.get("mcp_context")
        server = context.get("server_name") if isinstance(context, dict) else None
        tool = tool_object(
            AGENT, raw, names=names, server=server if type(server) is str and server else None
        )
        request["tool"] = tool
        request["args"] = obj(event, "tool_input", AGENT)
        if stage == "tool_result":
            if "tool_response" not in event:
                raise BadEvent(f"{AGENT} hook event: tool_response missing")
            request["result"] = event["tool_response"]
        return HookEvent(
            AGENT,
            name,
            stage,
            prune(request),
            caps,
            mcp="mcp" in tool["tags"],  # type: ignore[operator]
            outcome=_outcome(event) if stage == "tool_result" else None,
        )
    except BadEvent as err:
        return str(err)


def _outcome(event: dict[str, Any]) -> str:
    """`AfterTool` of a tool that failed carries `tool_response.error`: its reservation is
    given back."""
    response = event.get("tool_response")
    failed = isinstance(response, dict) and response.get("error") not in (None, "", {})
    return "failed" if failed else "ran"


def write(event: HookEvent, v: Verdict, authoritative: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if v.warnings:
        out["systemMessage"] = "\n".join(v.warnings)
    if v.kind == "deny":
        out.update(decision="deny", reason=v.reason)
    elif v.kind == "allow" and v.rewrite == "args":
        out.update(
            decision="allow",
            hookSpecificOutput={"hookEventName": event.name, "tool_input": v.value},
        )
    elif v.kind == "allow" and v.rewrite == "result":
        value = v.value
        shown = value.get("llmContent", value) if isinstance(value, dict) else value
        out["hookSpecificOutput"] = {"hookEventName": event.name, "tool_output": shown}
    elif v.kind == "allow" and authoritative and event.stage == "tool_call":
        out["decision"] = "allow"
    return out


def block(agent: str, event_name: str | None, reason: str) -> dict[str, Any]:
    return {"decision": "deny", "reason": reason}
