"""Budgets settle across hook processes: the reservation a before-tool event makes is
settled by the call's after-event and given back when the call failed or the answer stopped
it, so a limit of N calls spends exactly the calls that ran. Every event is its own real
`charter hook` process over one SQLite state file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hookrun import Hook

POLICY = """\
policy "settle" version "1.0.0"
use pii
default deny
allow tool "shell.run"
limit calls(tool "shell.run") <= 3 per session because "three shell calls per session"
redact pii.email in args
on tool_result allow tool "shell.run"
"""
LIMIT = "three shell calls per session"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    (d / "policy.agentpolicy").write_text(POLICY)
    return d


def _run(hook: Hook, policy: Path, agent: str, event: dict[str, Any], *args: str) -> Any:
    answer = hook.run(agent, json.dumps(event), *args, policy=policy)
    assert answer.code == 0, answer
    assert "cannot" not in answer.stderr, answer.stderr  # nothing failed settling
    return answer.json


def _rows(hook: Hook, table: str) -> int:
    with sqlite3.connect(hook.home / "state.db") as conn:
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(n)


def _claude(name: str, n: int, command: str = "echo hi", **extra: Any) -> dict[str, Any]:
    return {
        "session_id": "s1",
        "transcript_path": "/t.jsonl",
        "cwd": "/proj",
        "hook_event_name": name,
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_use_id": f"toolu_{n}",
        **extra,
    }


def _claude_denied(answer: Any) -> bool:
    hso = answer.get("hookSpecificOutput", {})
    return hso.get("permissionDecision") == "deny" and LIMIT in hso["permissionDecisionReason"]


def test_claude_code_spends_exactly_the_calls_that_ran(hook: Hook, policy: Path) -> None:
    ran = 0
    for n in range(1, 6):
        pre = _run(hook, policy, "claude-code", _claude("PreToolUse", n))
        assert not _claude_denied(pre), (n, pre)
        if n % 2 == 0:  # calls 2 and 4 fail: their reservations go back
            post = _claude("PostToolUseFailure", n, error="exit 1")
        else:
            post = _claude("PostToolUse", n, tool_response={"stdout": "hi", "stderr": ""})
            ran += 1
        _run(hook, policy, "claude-code", post)
    assert ran == 3
    # Three ran: the limit is spent (had the failures kept their reservations, the fourth
    # call would already have been refused).
    assert _claude_denied(_run(hook, policy, "claude-code", _claude("PreToolUse", 6)))
    assert _rows(hook, "reservations") == 0  # every reservation settled or released
    assert _rows(hook, "charter_held") == 0


def test_a_call_never_reported_stays_counted(hook: Hook, policy: Path) -> None:
    for n in range(1, 4):  # three calls, no after-events: the host may still run them
        assert not _claude_denied(_run(hook, policy, "claude-code", _claude("PreToolUse", n)))
    assert _claude_denied(_run(hook, policy, "claude-code", _claude("PreToolUse", 4)))
    # A late after-event of a call Charter refused has nothing to settle.
    _run(hook, policy, "claude-code", _claude("PostToolUseFailure", 4))
    assert _rows(hook, "charter_held") == 3


def test_a_call_the_answer_stops_gives_its_reservation_back(hook: Hook, policy: Path) -> None:
    # Codex cannot take rewritten input: a call whose arguments the policy redacts is
    # refused there, after the Guard reserved it. Refused four times: nothing spent.
    event = {
        "session_id": "s1",
        "turn_id": "1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "mail a@b.co"},
        "tool_use_id": "call_x",
    }
    for _ in range(4):
        answer = _run(hook, policy, "codex", event)
        assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
        assert (
            "cannot apply rewritten args"
            in answer["hookSpecificOutput"]["permissionDecisionReason"]
        )
    assert _rows(hook, "reservations") == 0
    for n in range(3):
        ok = _run(hook, policy, "codex", {**event, "tool_input": {"command": f"ls {n}"}})
        assert ok == {}
    refused = _run(hook, policy, "codex", {**event, "tool_input": {"command": "ls 9"}})
    assert LIMIT in refused["hookSpecificOutput"]["permissionDecisionReason"]


def test_redacted_call_settles_under_the_arguments_that_ran(hook: Hook, policy: Path) -> None:
    # Gemini has no tool-use id: the action's digest pairs the events, and the after-event
    # reports the redacted arguments the hook made the model's call run with.
    pre = {
        "session_id": "g1",
        "hook_event_name": "BeforeTool",
        "tool_name": "run_shell_command",
        "tool_input": {"command": "mail a@b.co"},
    }
    answer = _run(hook, policy, "gemini", pre)
    redacted = answer["hookSpecificOutput"]["tool_input"]
    assert redacted["command"] != "mail a@b.co"
    assert _rows(hook, "charter_held") == 1
    post = {
        **pre,
        "hook_event_name": "AfterTool",
        "tool_input": redacted,
        "tool_response": {"llmContent": "", "returnDisplay": "", "error": "command failed"},
    }
    _run(hook, policy, "gemini", post)
    assert _rows(hook, "charter_held") == 0
    assert _rows(hook, "reservations") == 0
    # The failed call was given back: three more still fit.
    for n in range(3):
        assert _run(hook, policy, "gemini", {**pre, "tool_input": {"command": f"ls {n}"}}) == {}
    refused = _run(hook, policy, "gemini", {**pre, "tool_input": {"command": "ls"}})
    assert refused["decision"] == "deny"
    assert LIMIT in refused["reason"]


def test_copilot_and_cursor_pair_events_without_an_id(hook: Hook, policy: Path) -> None:
    pre = {"timestamp": 1, "cwd": "/proj", "toolName": "bash", "toolArgs": '{"command": "ls"}'}
    env = {"CHARTER_SESSION": "c1"}
    for kind in ("failure", "denied", "success"):
        answer = hook.run("copilot", json.dumps(pre), "preToolUse", policy=policy, **env)
        assert answer.code == 0 and answer.json == {}, answer
        post = {**pre, "toolResult": {"resultType": kind, "textResultForLlm": "x"}}
        answer = hook.run("copilot", json.dumps(post), "postToolUse", policy=policy, **env)
        assert answer.code == 0, answer
    assert _rows(hook, "charter_held") == 0
    # One ran (success); failure and denied were given back: two more fit, then no more.
    for command in ("a", "b", "c"):
        args = json.dumps({"command": command})
        answer = hook.run(
            "copilot", json.dumps({**pre, "toolArgs": args}), "preToolUse", policy=policy, **env
        )
        assert (LIMIT in answer.stdout) == (command == "c"), answer

    # Cursor: the shell before-event sends a cwd its after-event does not; the command
    # pairs them.
    before = {
        "conversation_id": "k1",
        "hook_event_name": "beforeShellExecution",
        "command": "ls",
        "cwd": "/proj",
    }
    after = {
        "conversation_id": "k1",
        "hook_event_name": "afterShellExecution",
        "command": "ls",
        "output": "a b",
    }
    waiting = _rows(hook, "charter_held")  # Copilot's a and b: no after-event yet
    assert waiting == 2
    assert _run(hook, policy, "cursor", before) == {}
    assert _rows(hook, "charter_held") == waiting + 1
    _run(hook, policy, "cursor", after)
    assert _rows(hook, "charter_held") == waiting
    assert _rows(hook, "reservations") == waiting
