"""The wire module's Charter JSON operations and the pending-approval store, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import charter
from charter.hosts.approvals import ApprovalError, PendingApprovals, SQLitePending
from charter.hosts.names import tool_object
from charter.hosts.wire import (
    HookEvent,
    approve_json,
    check_json,
    decide_json,
    read_event,
    settle_json,
)
from charter.runtime.guard import Guard
from charter.runtime.state.sqlite import SQLiteStore

POLICY = """
policy "wire" version "1"
default deny
allow tool "pay"
require approval from "finance" tool "pay" when args.amount > 100 because "big payment"
limit calls(tool "pay") <= 3 per session because "three payments a session"
"""


@pytest.fixture
def guard() -> Guard:
    return Guard(charter.compile(POLICY), secret=b"k" * 32)


def _pay(amount: int, session: str = "s1") -> dict[str, object]:
    return {"tool": "pay", "args": {"amount": amount}, "session": {"id": session}}


def test_decide_and_check_json_never_raise(guard: Guard) -> None:
    assert json.loads(decide_json(guard.policy, json.dumps(_pay(5))))["effect"] == "allow"
    bad = json.loads(decide_json(guard.policy, b"[1]"))
    assert bad["effect"] == "deny" and "must be a JSON object" in bad["reasons"][0]
    checked = json.loads(check_json(guard, json.dumps(_pay(500))))
    assert checked["effect"] == "require_approval" and checked["action"]
    assert json.loads(check_json(guard, b"{"))["effect"] == "deny"


def test_settle_json(guard: Guard) -> None:
    decision = json.loads(check_json(guard, json.dumps(_pay(5))))
    assert decision["reservation"]
    body = {"reservation": decision["reservation"], "cost_usd": 0.5}
    assert json.loads(settle_json(guard, json.dumps(body))) == {"ok": True}
    release = {"reservation": decision["reservation"], "release": True}
    assert json.loads(settle_json(guard, json.dumps(release)))["ok"] in (True, False)
    for raw, field in [
        (b"{}", "reservation"),
        (b'{"reservation": "t", "cost_usd": "1"}', "cost_usd"),
        (b'{"reservation": "t", "tokens": 1.5}', "tokens"),
        (b"x", "JSON"),
    ]:
        out = json.loads(settle_json(guard, raw))
        assert out["ok"] is False and field in out["error"]


def test_approve_json_binds_the_action(guard: Guard) -> None:
    decision = json.loads(check_json(guard, json.dumps(_pay(500))))
    wrong = {"decision": decision, "by": "bob", "group": "support"}
    assert (
        "cannot approve this action" in json.loads(approve_json(guard, json.dumps(wrong)))["error"]
    )
    missing = json.loads(approve_json(guard, b'{"by": "", "ttl": -1}'))["error"]
    assert all(f in missing for f in ("action", "by", "group", "ttl"))
    ok = json.loads(
        approve_json(guard, json.dumps({"decision": decision, "by": "alice", "group": "finance"}))
    )
    assert ok["grant"].startswith("cg1.")
    retry = {**_pay(500), "approvals": [ok["grant"]]}
    assert json.loads(check_json(guard, json.dumps(retry)))["effect"] == "allow"
    edited = {**_pay(501), "approvals": [ok["grant"]]}
    out = json.loads(check_json(guard, json.dumps(edited)))
    assert out["effect"] == "require_approval"
    assert any("transplanted" in r for r in out["reasons"])


def test_pending_round_trip_over_sqlite(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    guard = Guard(charter.compile(POLICY), state=SQLiteStore(state), secret=b"k" * 32)
    pending = PendingApprovals(guard, SQLitePending(state))
    request = _pay(500)
    decision = guard.check(request)
    ticket = pending.park(decision, request)
    assert pending.park(decision, request).id == ticket.id
    assert [t.id for t in pending.list("pending")] == [ticket.id]
    with pytest.raises(ApprovalError, match="cannot approve"):
        pending.grant(ticket.id, by="bob", group="support")
    # Another process (a second store over the same file) grants it.
    other = PendingApprovals(guard, SQLitePending(state))
    other.grant(ticket.id, by="alice", group="finance")
    retry = pending.attach(request)
    assert len(retry["approvals"]) == 1
    allowed = guard.check(retry)
    assert allowed.allowed
    assert [t.state for t in pending.settle(retry, allowed)] == ["used"]
    assert "approvals" not in pending.attach(request)  # single use
    with pytest.raises(ApprovalError, match="already used"):
        pending.grant(ticket.id, by="alice", group="finance")
    with pytest.raises(ApprovalError, match="not granted"):
        pending.attach(request, ticket=ticket.id)
    with pytest.raises(ApprovalError, match="no approval ticket"):
        pending.get("nope")


def test_park_refuses_what_is_not_an_approval(guard: Guard) -> None:
    pending = PendingApprovals(guard)
    with pytest.raises(ApprovalError):
        pending.park(guard.check(_pay(5)), _pay(5))


@pytest.mark.parametrize(
    ("agent", "raw", "name", "server"),
    [
        ("claude-code", "Bash", "shell.run", None),
        ("claude-code", "mcp__git__git_status", "mcp.git.git_status", "git"),
        ("cursor", "MCP:fs:read_file", "mcp.fs.read_file", "fs"),
        ("gemini", "run_shell_command", "shell.run", None),
        ("codex", "apply_patch", "file.edit", None),
        ("copilot", "view", "file.read", None),
        ("claude-code", "SomethingNew", "SomethingNew", None),
        ("claude-code", "mcp__broken", "mcp__broken", None),
    ],
)
def test_tool_names(agent: str, raw: str, name: str, server: str | None) -> None:
    tool = tool_object(agent, raw)
    assert tool["name"] == name and tool.get("server") == server
    assert tool["tags"][:2] == [f"host:{agent}", f"raw:{raw}"]
    assert tool_object(agent, raw, names="raw")["name"] == raw


def test_read_event_never_raises() -> None:
    assert "unknown agent" in str(read_event("vim", b"{}"))
    big = b'{"a": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    assert "larger than" in str(read_event("claude-code", big))
    event = read_event(
        "copilot",
        b'{"toolName": "bash", "toolArgs": "{}", "cwd": "/"}',
        env={"CHARTER_SESSION": "fixed"},
    )
    assert isinstance(event, HookEvent) and event.request["session"] == {"id": "fixed"}
