"""Every host's recorded hook events (tests/hosts/samples, from the formats of
specs/hosts.md §2) through the real `charter hook` process: stdout and exit code for allow,
deny, ask, approval, redacted input, redacted output and malformed events."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hookrun import Hook

TICKET = re.compile(r"approval required from (\w+) \(ticket ([0-9a-f]{12})\)")
EMAIL_ARGS = {"command": "echo mail [EMAIL]", "description": "run"}
CARD = "card [CARD]"


def _claude(decision: str, reason: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"hookEventName": "PreToolUse", "permissionDecision": decision}
    if reason is not None:
        out["permissionDecisionReason"] = reason
    out.update(more)
    return {"hookSpecificOutput": out}


# (agent, sample, extra args, exit code, exact stdout JSON)
EXACT: list[tuple[str, str, tuple[str, ...], int, Any]] = [
    # Claude Code
    ("claude-code", "pre_allow", (), 0, {}),
    (
        "claude-code",
        "pre_allow",
        ("--authoritative",),
        0,
        _claude("allow", "charter: allowed by policy"),
    ),
    ("claude-code", "pre_deny", (), 0, _claude("deny", "no rm in this project")),
    (
        "claude-code",
        "pre_unlisted",
        (),
        0,
        _claude("deny", 'no rule allows tool "file.write" (default deny)'),
    ),
    (
        "claude-code",
        "pre_ask",
        ("--ask-group", "user"),
        0,
        _claude("ask", "pushing needs the user's ok"),
    ),
    (
        "claude-code",
        "pre_redact",
        (),
        0,
        _claude("allow", "charter: arguments redacted by policy", updatedInput=EMAIL_ARGS),
    ),
    ("claude-code", "pre_mcp", (), 0, {}),
    (
        "claude-code",
        "post_redact",
        (),
        0,
        {
            "hookSpecificOutput": {
                "hookEventName": "PostToolUse",
                "updatedToolOutput": {
                    "stdout": CARD,
                    "stderr": "",
                    "interrupted": False,
                    "isImage": False,
                    "noOutputExpected": False,
                },
            }
        },
    ),
    (
        "claude-code",
        "post_mcp_redact",
        (),
        0,
        {
            "hookSpecificOutput": {
                "hookEventName": "PostToolUse",
                "updatedMCPToolOutput": [{"type": "text", "text": CARD}],
            }
        },
    ),
    ("claude-code", "prompt_allow", (), 0, {}),
    (
        "claude-code",
        "prompt_deny",
        (),
        0,
        {"decision": "block", "reason": "no credentials in prompts"},
    ),
    ("claude-code", "session_start", (), 0, {}),
    # Cursor
    ("cursor", "pre_allow", (), 0, {}),
    ("cursor", "pre_allow", ("--authoritative",), 0, {"permission": "allow"}),
    (
        "cursor",
        "pre_deny",
        (),
        0,
        {
            "permission": "deny",
            "user_message": "no rm in this project",
            "agent_message": "no rm in this project",
        },
    ),
    (
        "cursor",
        "shell_deny",
        (),
        0,
        {
            "permission": "deny",
            "user_message": "no rm in this project",
            "agent_message": "no rm in this project",
        },
    ),
    (
        "cursor",
        "pre_ask",
        ("--ask-group", "user"),
        0,
        {
            "permission": "ask",
            "user_message": "pushing needs the user's ok",
            "agent_message": "pushing needs the user's ok",
        },
    ),
    (
        "cursor",
        "pre_redact",
        (),
        0,
        {
            "permission": "allow",
            "updated_input": {"command": "echo mail [EMAIL]", "cwd": "/home/dev/proj"},
        },
    ),
    ("cursor", "mcp_string_input", (), 0, {}),
    ("cursor", "read_file", (), 0, {}),
    ("cursor", "prompt_allow", (), 0, {"continue": True}),
    (
        "cursor",
        "prompt_deny",
        (),
        0,
        {"continue": False, "user_message": "no credentials in prompts"},
    ),
    ("cursor", "post_redact", (), 0, {}),  # cannot rewrite output: said on stderr (below)
    # Gemini CLI
    ("gemini", "pre_allow", (), 0, {}),
    ("gemini", "pre_deny", (), 0, {"decision": "deny", "reason": "no rm in this project"}),
    (
        "gemini",
        "pre_redact",
        (),
        0,
        {
            "decision": "allow",
            "hookSpecificOutput": {"hookEventName": "BeforeTool", "tool_input": EMAIL_ARGS},
        },
    ),
    ("gemini", "pre_mcp", (), 0, {}),
    (
        "gemini",
        "post_redact",
        (),
        0,
        {"hookSpecificOutput": {"hookEventName": "AfterTool", "tool_output": CARD}},
    ),
    ("gemini", "prompt_deny", (), 0, {"decision": "deny", "reason": "no credentials in prompts"}),
    # Codex
    ("codex", "pre_allow", ("--authoritative",), 0, {}),  # Codex acts only on deny
    ("codex", "pre_deny", (), 0, _claude("deny", "no rm in this project")),
    (
        "codex",
        "pre_patch",
        (),
        0,
        _claude("deny", 'no rule allows tool "file.edit" (default deny)'),
    ),
    # Copilot
    ("copilot", "pre_allow", (), 0, {}),
    ("copilot", "pre_view", (), 0, {}),
    (
        "copilot",
        "pre_deny",
        (),
        0,
        {"permissionDecision": "deny", "permissionDecisionReason": "no rm in this project"},
    ),
    ("copilot", "post_redact", (), 0, {}),
]


@pytest.mark.parametrize(
    ("agent", "sample", "args", "code", "stdout"),
    EXACT,
    ids=[f"{a}-{s}{'-' + '-'.join(x) if x else ''}" for a, s, x, _, _ in EXACT],
)
def test_recorded_event(
    hook: Hook, agent: str, sample: str, args: tuple[str, ...], code: int, stdout: Any
) -> None:
    answer = hook.sample(agent, sample, *args)
    assert (answer.code, answer.json) == (code, stdout), answer.stderr


def _reason(agent: str, out: dict[str, Any]) -> str:
    if agent in ("claude-code", "codex"):
        hso = out["hookSpecificOutput"]
        assert hso["permissionDecision"] == "deny"
        return str(hso["permissionDecisionReason"])
    if agent == "cursor":
        assert out["permission"] == "deny"
        assert out["user_message"] == out["agent_message"]
        return str(out["agent_message"])
    if agent == "gemini":
        assert out["decision"] == "deny"
        return str(out["reason"])
    assert out["permissionDecision"] == "deny"
    return str(out["permissionDecisionReason"])


AGENTS = ["claude-code", "cursor", "gemini", "codex", "copilot"]


@pytest.mark.parametrize("agent", AGENTS)
def test_approval_is_a_deny_naming_the_ticket(hook: Hook, agent: str) -> None:
    answer = hook.sample(agent, "pre_approval")
    assert answer.code == 0
    found = TICKET.search(_reason(agent, answer.json))
    assert found is not None and found.group(1) == "finance"
    assert "charter approvals grant " + found.group(2) in _reason(agent, answer.json)


@pytest.mark.parametrize("agent", ["gemini", "codex", "copilot"])
def test_hosts_without_ask_get_a_ticket_instead(hook: Hook, agent: str) -> None:
    """Gemini has no `ask`; Codex and Copilot ignore it and run the call."""
    answer = hook.sample(agent, "pre_ask", "--ask-group", "user")
    assert answer.code == 0
    assert "approval required from user (ticket " in _reason(agent, answer.json)


@pytest.mark.parametrize("agent", ["claude-code", "cursor"])
def test_ask_only_for_the_keyboard_groups(hook: Hook, agent: str) -> None:
    answer = hook.sample(agent, "pre_ask")  # no --ask-group: "user" is an approver group
    assert "approval required from user (ticket " in _reason(agent, answer.json)


@pytest.mark.parametrize(
    ("agent", "sample"),
    [("codex", "pre_redact"), ("copilot", "pre_redact"), ("cursor", "shell_redact")],
)
def test_input_redaction_the_host_cannot_apply_is_a_deny(
    hook: Hook, agent: str, sample: str
) -> None:
    answer = hook.sample(agent, sample)
    assert answer.code == 0
    assert "refused rather than run unredacted" in _reason(agent, answer.json)


@pytest.mark.parametrize("agent", ["cursor", "codex", "copilot"])
def test_output_redaction_the_host_cannot_apply_is_reported(hook: Hook, agent: str) -> None:
    answer = hook.sample(agent, "post_redact")
    assert answer.code == 0
    assert "cannot rewrite tool output" in answer.stderr
    if agent == "codex":
        assert "cannot rewrite tool output" in answer.json["systemMessage"]


@pytest.mark.parametrize(
    ("agent", "sample", "field"),
    [
        ("claude-code", "malformed_tool_input", "tool_input must be an object"),
        ("claude-code", "malformed_no_session", "session_id missing"),
        ("cursor", "malformed_mcp_input", "tool_input is not valid JSON"),
        ("gemini", "malformed_tool_input", "tool_input must be an object"),
        ("codex", "malformed_tool_input", "tool_input missing"),
        ("copilot", "malformed_tool_args", "toolArgs is not valid JSON"),
    ],
)
def test_malformed_event_blocks_naming_the_field(
    hook: Hook, agent: str, sample: str, field: str
) -> None:
    answer = hook.sample(agent, sample)
    assert answer.code == 2
    assert field in answer.stderr
    assert field in _reason(agent, answer.json)


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("stdin", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b'{"a": 1'])
def test_unreadable_stdin_blocks(hook: Hook, agent: str, stdin: bytes) -> None:
    answer = hook.run(agent, stdin)
    assert answer.code == 2
    assert answer.stderr.startswith("charter: ")
    assert _reason(agent, answer.json)
