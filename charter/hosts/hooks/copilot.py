"""GitHub Copilot CLI and cloud agent (spec hosts.md §2.5): `preToolUse` gets `toolName` and
`toolArgs` as a JSON *string*, and answers `permissionDecision` — of which only `deny` is
processed. No session id in the payload: `CHARTER_SESSION`, else one id per Copilot process
(its pid and start time) and working directory. `postToolUse` output is ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from charter.hosts.hooks.common import BadEvent, obj, text
from charter.hosts.names import tool_object
from charter.hosts.wire import Caps, HookEvent, Verdict

AGENT = "copilot"
_EVENTS = {
    "preToolUse": ("tool_call", Caps(block=True)),
    "postToolUse": ("tool_result", Caps(block=False)),
}


_SHELLS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "fish",
        "pwsh",
        "powershell",
        "env",
        "timeout",
        "charter",
        "python",
        "python3",
    }
)


def _proc(pid: int) -> tuple[str, int, str] | None:
    """(command name, parent pid, start time) of a process, from /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        return name, int(fields[1]), fields[19]
    except (OSError, ValueError, IndexError):
        return None


def session_id(cwd: str, env: Mapping[str, str]) -> str:
    """`CHARTER_SESSION`, else the Copilot process that ran the hook — the first ancestor
    that is not a shell or a launcher (Copilot runs the hook's `bash` line through a shell,
    a new one per call) — by pid and start time (so a reused pid is another session), in
    `cwd`."""
    given = env.get("CHARTER_SESSION")
    if given:
        return given
    import os

    pid, started = os.getppid(), ""
    for _ in range(6):
        info = _proc(pid)
        if info is None:
            break
        name, parent, started = info
        if name.split(".")[0] not in _SHELLS or parent <= 1:
            break
        pid = parent
    digest = hashlib.sha256(f"{cwd}\0{pid}\0{started}".encode()).hexdigest()[:16]
    return f"copilot-{digest}"


def read(event: dict[str, Any], names: str, env: Mapping[str, str]) -> HookEvent | str:
    try:
        # Copilot names the event only by which hook ran: `charter hook copilot EVENT`
        # passes it in `hook_event_name` (default preToolUse); a `toolResult` means post.
        name = event.get("hook_event_name") or (
            "postToolUse" if "toolResult" in event else "preToolUse"
        )
        if name not in _EVENTS:
            return HookEvent(AGENT, str(name), None)
        stage, caps = _EVENTS[name]
        cwd = text(event, "cwd", AGENT, required=False) or ""
        raw = text(event, "toolName", AGENT)
        assert raw is not None
        request: dict[str, Any] = {
            "stage": stage,
            "tool": tool_object(AGENT, raw, names=names),
            "args": obj(event, "toolArgs", AGENT, json_text=True),
            "session": {"id": session_id(cwd, env)},
            "agent": {"id": AGENT},
        }
        if stage == "tool_result":
            if "toolResult" not in event:
                raise BadEvent(f"{AGENT} hook event: toolResult missing")
            request["result"] = event["toolResult"]
            result = event["toolResult"]
            kind = result.get("resultType") if isinstance(result, dict) else None
            # A call that failed or that Copilot denied did not spend what it reserved.
            outcome = "failed" if kind in ("failure", "denied") else "ran"
            return HookEvent(AGENT, name, stage, request, caps, outcome=outcome)
        return HookEvent(AGENT, name, stage, request, caps)
    except BadEvent as err:
        return str(err)


def write(event: HookEvent, v: Verdict, authoritative: bool) -> dict[str, Any]:
    if event.stage == "tool_call" and v.kind == "deny":
        return {"permissionDecision": "deny", "permissionDecisionReason": v.reason}
    return {}


def block(agent: str, event_name: str | None, reason: str) -> dict[str, Any]:
    return {"permissionDecision": "deny", "permissionDecisionReason": reason}
