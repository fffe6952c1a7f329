"""Claude Code (spec hosts.md §2.1) and Codex CLI (§2.4), which speaks the same format.

Claude Code: `PreToolUse` answers `hookSpecificOutput.permissionDecision` allow / deny / ask
with `updatedInput` for redacted arguments; `PostToolUse` answers `updatedToolOutput` (or
`updatedMCPToolOutput`) in the tool's own shape (a plain string is ignored for `Bash`, Run);
`UserPromptSubmit` blocks with `decision: "block"`. Codex acts only on `deny`: it gets no
`allow`, no `ask` (it rejects `ask` and runs the call) and no rewritten input or output, so
an approval or an input redaction is a deny there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.hosts.hooks.common import BadEvent, obj, prune, text
from charter.hosts.names import tool_object
from charter.hosts.wire import Caps, HookEvent, Verdict

_CLAUDE_CAPS = {
    "PreToolUse": ("tool_call", Caps(block=True, ask=True, rewrite_args=True)),
    "PostToolUse": ("tool_result", Caps(block=False, rewrite_result=True)),
    "UserPromptSubmit": ("model_input", Caps(block=True)),
}
_CODEX_CAPS = {
    "PreToolUse": ("tool_call", Caps(block=True)),
    "PostToolUse": ("tool_result", Caps(block=False)),
}


def read_claude(event: dict[str, Any], names: str, env: Mapping[str, str]) -> HookEvent | str:
    return _read("claude-code", _CLAUDE_CAPS, event, names)


def read_codex(event: dict[str, Any], names: str, env: Mapping[str, str]) -> HookEvent | str:
    return _read("codex", _CODEX_CAPS, event, names)


def _read(
    agent: str, table: dict[str, tuple[str, Caps]], event: dict[str, Any], names: str
) -> HookEvent | str:
    try:
        name = text(event, "hook_event_name", agent)
        assert name is not None
        if name == "PostToolUseFailure":
            return _failed(agent, name, event, names)
        if name not in table:
            return HookEvent(agent, name, None)
        stage, caps = table[name]
        session = text(event, "session_id", agent)
        kind = text(event, "agent_type", agent, required=False) or agent
        sub = text(event, "agent_id", agent, required=False)
        agent_part: dict[str, Any] = {"id": kind}
        if sub is not None:
            agent_part["labels"] = {"subagent": sub}
        request: dict[str, Any] = {"stage": stage, "session": {"id": session}, "agent": agent_part}
        if stage == "model_input":
            prompt = event.get("prompt")
            if type(prompt) is not str:
                raise BadEvent(f"{agent} hook event: prompt must be a string")
            request["input"] = prompt
            return HookEvent(agent, name, stage, request, caps)
        tool_name = text(event, "tool_name", agent)
        assert tool_name is not None
        server = None
        mcp_server = event.get("mcp_server")
        if isinstance(mcp_server, dict) and type(mcp_server.get("name")) is str:
            server = mcp_server["name"]
        tool = tool_object(agent, tool_name, names=names, server=server)
        request["tool"] = tool
        request["args"] = obj(event, "tool_input", agent)
        call_id = text(event, "tool_use_id", agent, required=False)
        request["trace_id"] = call_id
        if stage == "tool_result":
            key = "tool_response" if "tool_response" in event else "tool_output"
            if key not in event:
                raise BadEvent(f"{agent} hook event: tool_response missing")
            request["result"] = event[key]
        return HookEvent(
            agent,
            name,
            stage,
            prune(request),
            caps,
            mcp="mcp" in tool["tags"],  # type: ignore[operator]
            call_id=call_id,
            outcome="ran" if stage == "tool_result" else None,
        )
    except BadEvent as err:
        return str(err)


def _failed(agent: str, name: str, event: dict[str, Any], names: str) -> HookEvent:
    """`PostToolUseFailure`: nothing to decide (the tool did not produce its output); the
    reservation its `PreToolUse` made is given back. Raises BadEvent."""
    session = text(event, "session_id", agent)
    tool_name = text(event, "tool_name", agent)
    assert tool_name is not None
    request = {
        "session": {"id": session},
        "tool": tool_object(agent, tool_name, names=names),
        "args": obj(event, "tool_input", agent, default={}),
    }
    call_id = text(event, "tool_use_id", agent, required=False)
    return HookEvent(agent, name, None, request, call_id=call_id, outcome="failed")


def write(event: HookEvent, v: Verdict, authoritative: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if v.warnings:
        out["systemMessage"] = "\n".join(v.warnings)
    if event.stage == "tool_call":
        hso: dict[str, Any] = {"hookEventName": "PreToolUse"}
        if v.kind in ("deny", "ask"):
            hso.update(permissionDecision=v.kind, permissionDecisionReason=v.reason)
        elif v.kind == "allow" and v.rewrite == "args":
            hso.update(
                permissionDecision="allow",
                updatedInput=v.value,
                permissionDecisionReason="charter: arguments redacted by policy",
            )
        elif v.kind == "allow" and authoritative and event.agent == "claude-code":
            hso.update(
                permissionDecision="allow", permissionDecisionReason="charter: allowed by policy"
            )
        if len(hso) > 1:
            out["hookSpecificOutput"] = hso
    elif event.stage == "tool_result":
        if v.rewrite == "result":
            key = "updatedMCPToolOutput" if event.mcp else "updatedToolOutput"
            out["hookSpecificOutput"] = {"hookEventName": "PostToolUse", key: v.value}
        if v.kind == "deny":
            out.update(decision="block", reason=v.reason)
    elif event.stage == "model_input" and v.kind in ("deny", "ask"):
        out.update(decision="block", reason=v.reason)
    return out


def block(agent: str, event_name: str | None, reason: str) -> dict[str, Any]:
    if event_name in (None, "PreToolUse"):
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": reason,
            }
        }
    if agent == "codex":
        return {"systemMessage": reason}
    return {"decision": "block", "reason": reason}
