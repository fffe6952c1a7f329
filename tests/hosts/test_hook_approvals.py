"""Approvals across processes: a hook parks the action, `charter approvals grant` signs it,
the identical retry goes through once; attacks are refused with the reason."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from hookrun import POLICY, SAMPLES, Hook, event

import charter
from charter.cli.hook_state import secret_for
from charter.runtime.guard import Guard
from charter.runtime.state.sqlite import SQLiteStore

TICKET = re.compile(r"\(ticket ([0-9a-f]{12})\)")


def _ticket(hook: Hook, stdin: str, agent: str = "claude-code") -> str:
    answer = hook.run(agent, stdin)
    assert answer.code == 0, answer.stderr
    out = answer.json["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    found = TICKET.search(out["permissionDecisionReason"])
    assert found is not None, out
    return found.group(1)


def _deploy(command: str = "deploy prod", session: str | None = None) -> str:
    ev = event("claude-code", "pre_approval")
    ev["tool_input"]["command"] = command
    if session is not None:
        ev["session_id"] = session
    return json.dumps(ev)


def test_grant_then_identical_retry_runs_once(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    assert _ticket(hook, _deploy()) == ticket  # asking again parks nothing new
    listed = hook.approvals("list")
    assert ticket in listed.stdout and "finance" in listed.stdout and "deploy prod" in listed.stdout
    granted = hook.approvals("grant", ticket, "--as", "alice", "--group", "finance")
    assert granted.code == 0, granted.stderr
    retry = hook.run("claude-code", _deploy(), "--authoritative")
    assert retry.json["hookSpecificOutput"]["permissionDecision"] == "allow"
    # Single use: the same call again needs a new approval (a new ticket).
    again = _ticket(hook, _deploy())
    assert again != ticket
    assert hook.approvals("list", "--all", "--json").stdout.count('"state":"used"') == 1


def test_wrong_group_is_refused(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    refused = hook.approvals("grant", ticket, "--as", "bob", "--group", "support")
    assert refused.code == 1
    assert "group 'support' cannot approve this action; approvers: finance" in refused.stderr
    assert _ticket(hook, _deploy()) == ticket  # still pending, still denied


def test_replay_of_a_used_ticket_is_refused(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    assert hook.approvals("grant", ticket, "--as", "alice", "--group", "finance").code == 0
    assert hook.run("claude-code", _deploy()).json == {}  # allowed (host rules apply)
    replay = hook.approvals("grant", ticket, "--as", "alice", "--group", "finance")
    assert replay.code == 1
    assert f"ticket {ticket} was already used (replay refused)" in replay.stderr


def test_replayed_grant_token_is_refused_by_the_guard(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    assert hook.approvals("grant", ticket, "--as", "alice", "--group", "finance").code == 0
    request = {
        "tool": {"name": "shell.run", "tags": ["host:claude-code", "raw:Bash"]},
        "args": {"command": "deploy prod", "description": "run"},
        "session": {"id": event("claude-code", "pre_approval")["session_id"]},
        "agent": {"id": "claude-code"},
        "stage": "tool_call",
    }
    path = hook.home / "request.json"
    path.write_text(json.dumps(request))
    attached = hook.approvals("attach", "--request", str(path))
    assert attached.code == 0, attached.stderr
    assert len(json.loads(attached.stdout)["approvals"]) == 1
    assert hook.run("claude-code", _deploy()).json == {}  # the hook's retry uses the grant
    # The same token, presented again by hand, is a replay to the Guard.
    state = hook.home / "state.db"
    guard = Guard(charter.load(POLICY), state=SQLiteStore(state), secret=secret_for(state))
    decision = guard.check(json.loads(attached.stdout))
    assert decision.effect == "require_approval"
    assert "approval rejected: grant was already used (replayed)" in decision.reasons


def test_edited_arguments_are_decided_again(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy("deploy prod"))
    assert hook.approvals("grant", ticket, "--as", "alice", "--group", "finance").code == 0
    edited = _ticket(hook, _deploy("deploy prod --force"))
    assert edited != ticket  # not run on the old grant: a new approval is asked for
    path = hook.home / "edited.json"
    path.write_text(
        json.dumps(
            {
                "tool": "shell.run",
                "args": {"command": "deploy prod --force"},
                "session": {"id": "x"},
            }
        )
    )
    forced = hook.approvals("attach", "--request", str(path), "--ticket", ticket)
    assert forced.code == 1
    assert f"ticket {ticket} was granted for a different action" in forced.stderr


def test_another_session_gets_no_grant(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    assert hook.approvals("grant", ticket, "--as", "alice", "--group", "finance").code == 0
    other = _ticket(hook, _deploy(session="another-session"))
    assert other != ticket
    path = hook.home / "other.json"
    ev = event("claude-code", "pre_approval")
    path.write_text(
        json.dumps(
            {
                "tool": {"name": "shell.run", "tags": ["host:claude-code", "raw:Bash"]},
                "args": ev["tool_input"],
                "session": {"id": "another-session"},
                "agent": {"id": "claude-code"},
                "stage": "tool_call",
            }
        )
    )
    forced = hook.approvals("attach", "--request", str(path), "--ticket", ticket)
    assert forced.code == 1
    assert "another tool, agent or session" in forced.stderr
    # The granted ticket is still there for its own session, unspent.
    assert hook.run("claude-code", _deploy()).json == {}


def test_denied_ticket_is_reported_on_retry(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    denied = hook.approvals("deny", ticket, "--as", "carol", "--reason", "not on a Friday")
    assert denied.code == 0
    answer = hook.run("claude-code", _deploy())
    reason = answer.json["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason == f"approval denied by carol (ticket {ticket}): not on a Friday"
    assert hook.approvals("grant", ticket, "--as", "alice", "--group", "finance").code == 1


def test_unknown_ticket_and_missing_state(hook: Hook) -> None:
    missing = hook.approvals("grant", "abc", "--as", "alice", "--group", "finance")
    assert missing.code == 2 and "no state file" in missing.stderr
    _ticket(hook, _deploy())
    unknown = hook.approvals("grant", "abc", "--as", "alice", "--group", "finance")
    assert unknown.code == 1 and "no approval ticket 'abc'" in unknown.stderr


def test_the_requester_cannot_approve_itself(hook: Hook) -> None:
    ticket = _ticket(hook, _deploy())
    # `charter approvals grant` signs it; the Guard refuses it when the retry presents it.
    assert hook.approvals("grant", ticket, "--as", "claude-code", "--group", "finance").code == 0
    answer = hook.run("claude-code", _deploy())
    reason = answer.json["hookSpecificOutput"]["permissionDecisionReason"]
    assert "approval rejected: the approver is the requester" in reason
    assert TICKET.search(reason).group(1) != ticket  # type: ignore[union-attr]


def test_copilot_calls_through_a_shell_share_a_session(hook: Hook) -> None:
    """Copilot sends no session id and runs each hook through a new shell: the session is
    the first non-shell ancestor, so a retry finds its ticket (and its grant)."""
    sample = SAMPLES / "copilot" / "pre_approval.json"
    line = f"{sys.executable} -m charter.cli hook copilot --policy {POLICY} < {sample}"
    env = hook.env()
    env.pop("CHARTER_SESSION", None)
    tickets = []
    for _ in range(2):
        proc = subprocess.run(
            ["bash", "-c", line + "; true"],
            capture_output=True,
            text=True,
            env=env,
            cwd=hook.home,
            check=True,
        )
        found = TICKET.search(json.loads(proc.stdout)["permissionDecisionReason"])
        assert found is not None, proc.stdout + proc.stderr
        tickets.append(found.group(1))
    assert tickets[0] == tickets[1]
