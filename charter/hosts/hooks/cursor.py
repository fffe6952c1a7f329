"""Cursor (spec hosts.md §2.2): `permission` allow / deny / ask with `user_message` and
`agent_message` on `preToolUse`, `beforeShellExecution`, `beforeMCPExecution` and
`beforeReadFile` (`updated_input` on `preToolUse` only); `beforeSubmitPrompt` answers
`continue`. After-events cannot rewrite output (documented limit: route MCP servers through
the Charter proxy). Invalid JSON from a permission hook is a block, so allow prints `{}`.
`postToolUseFailure` gives back the reservation the call's before-event made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter.hosts.hooks.common import BadEvent, obj, prune, text
from charter.hosts.names import tool_object
from charter.hosts.wire import Caps, HookEvent, Verdict
from charter.stdlib.digest import sha256

AGENT = "cursor"
_PERMISSION = Caps(block=True, ask=True)
_AFTER = Caps(block=False)
#: event -> (stage, caps, how the tool is named)
_EVENTS: dict[str, tuple[str, Caps, str]] = {
    "preToolUse": ("tool_call", Caps(block=True, ask=True, rewrite_args=True), "tool_name"),
    "beforeShellExecution": ("tool_call", _PERMISSION, "Shell"),
    "beforeMCPExecution": ("tool_call", _PERMISSION, "tool_name"),
    "beforeReadFile": ("tool_call", _PERMISSION, "Read"),
    "beforeSubmitPrompt": ("model_input", Caps(block=True), ""),
    "postToolUse": ("tool_result", _AFTER, "tool_name"),
    "postToolUseFailure": ("", _AFTER, "tool_name"),  # nothing decided: only released
    "afterShellExecution": ("tool_result", _AFTER, "Shell"),
    "afterMCPExecution": ("tool_result", _AFTER, "tool_name"),
}
_PERMISSION_EVENTS = frozenset(
    {"preToolUse", "beforeShellExecution", "beforeMCPExecution", "beforeReadFile"}
)


def read(event: dict[str, Any], names: str, env: Mapping[str, str]) -> HookEvent | str:
    try:
        name = text(event, "hook_event_name", AGENT)
        assert name is not None
        if name not in _EVENTS:
            return HookEvent(AGENT, name, None)
        stage, caps, naming = _EVENTS[name]
        request: dict[str, Any] = {
            "stage": stage,
            "session": {"id": text(event, "conversation_id", AGENT)},
            "agent": {"id": AGENT},
            "trace_id": text(event, "generation_id", AGENT, required=False),
        }
        email = text(event, "user_email", AGENT, required=False)
        if email is not None:
            request["user"] = {"id": email}
        if stage == "model_input":
            prompt = event.get("prompt")
            if type(prompt) is not str:
                raise BadEvent(f"{AGENT} hook event: prompt must be a string")
            request["input"] = prompt
            return HookEvent(AGENT, name, stage, prune(request), caps)
        if naming == "tool_name":
            raw = text(event, "tool_name", AGENT)
            assert raw is not None
            args = obj(
                event,
                "tool_input",
                AGENT,
                json_text=True,
                default={} if stage != "tool_call" else None,
            )
        elif naming == "Shell":
            raw = "Shell"
            args = {"command": text(event, "command", AGENT)}
            cwd = text(event, "cwd", AGENT, required=False)
            if cwd is not None:
                args["cwd"] = cwd
        else:
            raw = "Read"
            args = {"file_path": text(event, "file_path", AGENT)}
            if type(event.get("content")) is str:
                args["content"] = event["content"]
        tool = tool_object(AGENT, raw, names=names)
        if name.endswith("MCPExecution") and "mcp" not in tool["tags"]:  # type: ignore[operator]
            tool["tags"] = [*tool["tags"], "mcp"]  # type: ignore[misc]
        request["tool"] = tool
        request["args"] = args
        call_id = _call_id(event, raw, args)
        if not stage:
            return HookEvent(AGENT, name, None, prune(request), call_id=call_id, outcome="failed")
        if stage == "tool_result":
            request["result"] = _result(event, name)
        return HookEvent(
            AGENT,
            name,
            stage,
            prune(request),
            caps,
            call_id=call_id,
            outcome="ran" if stage == "tool_result" else None,
        )
    except BadEvent as err:
        return str(err)


def _call_id(event: dict[str, Any], raw: str, args: dict[str, Any]) -> str | None:
    """What pairs a call's before- and after-events. A shell command is named by the
    command itself: `beforeShellExecution` sends a `cwd` its after-event leaves out, so the
    arguments' digest would not pair them. Otherwise a `tool_use_id` if one is sent, else
    None (the action's digest)."""
    command = args.get("command")
    if raw == "Shell" and type(command) is str:
        return "cmd:" + sha256(command.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return text(event, "tool_use_id", AGENT, required=False)


def _result(event: dict[str, Any], name: str) -> Any:
    for key in ("tool_output", "result_json", "output"):
        if key in event:
            return event[key]
    raise BadEvent(
        f"{AGENT} hook event: the {name} event carries no tool output "
        "(tool_output, result_json or output)"
    )


def write(event: HookEvent, v: Verdict, authoritative: bool) -> dict[str, Any]:
    if event.name == "beforeSubmitPrompt":
        if v.kind in ("deny", "ask"):
            return {"continue": False, "user_message": v.reason}
        return {"continue": True}
    if event.name not in _PERMISSION_EVENTS:
        return {}
    if v.kind in ("deny", "ask"):
        return {"permission": v.kind, "user_message": v.reason, "agent_message": v.reason}
    if v.kind == "allow" and v.rewrite == "args":
        return {"permission": "allow", "updated_input": v.value}
    if v.kind == "allow" and authoritative:
        return {"permission": "allow"}
    return {}


def block(agent: str, event_name: str | None, reason: str) -> dict[str, Any]:
    if event_name == "beforeSubmitPrompt":
        return {"continue": False, "user_message": reason}
    if event_name is None or event_name in _PERMISSION_EVENTS:
        return {"permission": "deny", "user_message": reason, "agent_message": reason}
    return {}
