"""Kill switches in one process (issue 16, L-X2, L-X3, L-X8): deny first, from the next
decision on, on `decide` and `check`, for any request shape; unkill and expiry restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import charter
from charter.runtime.changes import read_changes
from charter.runtime.live import KillSwitch, Live

POLICY = """policy "p"
default deny
tool "email.send" (to: str)
tool "kb.read" (q: str)
@id("all")
allow tool "email.send", "kb.read"
"""
EMAIL = {"tool": "email.send", "args": {"to": "a@b.c"}}
KB = {"tool": {"name": "kb.read", "tags": []}, "args": {"q": "x"}}


def test_kill_denies_matching_tools_at_once_and_unkill_restores(tmp_path: Path) -> None:
    live = Live(charter.compile(POLICY), changes=tmp_path / "changes.jsonl")
    assert live.decide(EMAIL).allowed
    sid = live.kill("email.*", "incident 42", actor="oncall")
    d = live.decide(EMAIL)
    assert not d.allowed and d.rules == (f"kill:{sid}",)
    assert d.reasons == (f"kill switch {sid}: incident 42",)
    assert d.policy is not None and d.policy.digest == live.policy.digest
    assert live.decide(KB).allowed  # another tool
    assert not live.check(EMAIL).allowed
    assert not live.decide(json.dumps(EMAIL)).allowed  # text is read once, then routed
    assert live.decide({**EMAIL, "stage": "model_input"}).effect == "deny"  # policy's own
    assert live.decide({**EMAIL, "stage": "tool_result", "result": "ok"}).rules == (f"kill:{sid}",)
    assert live.unkill(sid, actor="oncall")
    assert live.decide(EMAIL).allowed and live.check(EMAIL).allowed
    assert live.decide == live.policy.decide  # back to no wrapper
    assert not live.unkill(sid)
    actions = [(c["action"], c["actor"]) for c in read_changes(tmp_path / "changes.jsonl")]
    assert actions == [("activate", "api"), ("kill", "oncall"), ("unkill", "oncall")]


def test_kill_star_stops_every_tool_and_malformed_requests_still_deny() -> None:
    live = Live(charter.compile(POLICY))
    live.kill("*", "stop everything")
    assert not live.decide(EMAIL).allowed and not live.decide(KB).allowed
    assert not live.check(KB).allowed
    bad = live.decide({"tool": 7})
    assert not bad.allowed and not any(r.startswith("kill:") for r in bad.rules)


def test_a_switch_expires_on_the_clock() -> None:
    now = [1000.0]
    live = Live(charter.compile(POLICY), clock=lambda: now[0])
    live.kill("email.send", "for a minute", ttl=60)
    assert not live.decide(EMAIL).allowed
    now[0] += 61
    assert live.decide(EMAIL).allowed
    assert live.switches == ()


def test_a_swap_keeps_the_switches() -> None:
    live = Live(charter.compile(POLICY))
    sid = live.kill("email.send", "x")
    live.activate(charter.compile(POLICY + "\n# v2\n"))
    assert live.decide(EMAIL).rules == (f"kill:{sid}",)
    assert live.decide(EMAIL).policy == live.policy.info


def test_control_from_elsewhere_applies_only_newer_seq() -> None:
    live = Live(charter.compile(POLICY))
    remote = KillSwitch("r1", ("email.send",), "from another host")
    assert live.apply_control([remote], 5)
    assert live.decide(EMAIL).rules == ("kill:r1",)
    assert not live.apply_control([], 5)  # not newer: a delayed message never rolls back
    assert not live.decide(EMAIL).allowed
    assert live.apply_control([], 6)
    assert live.decide(EMAIL).allowed
    mine = live.kill("email.send", "here")  # not carried by the source yet: kept
    assert live.apply_control([], 7)
    assert live.decide(EMAIL).rules == (f"kill:{mine}",)
    assert live.apply_control([KillSwitch(mine, ("email.send",), "here")], 8)
    assert live.pending == ()


def test_a_kill_deny_through_check_is_in_the_decision_log(tmp_path: Path) -> None:
    from charter.runtime import audit

    path = tmp_path / "decisions.jsonl"
    live = Live(charter.compile(POLICY), log=path)
    sid = live.kill("email.send", "incident")
    live.check({**EMAIL, "agent": {"id": "bot-1"}, "session": {"id": "s-9"}})
    live.check(KB)
    live.close()
    first, second = audit.read(path)
    assert first["kill"] == sid and first["effect"] == "deny" and first["tool"] == "email.send"
    assert first["agent_id"] == "bot-1" and first["session_id"] == "s-9"
    assert first["rules"] == [f"kill:{sid}"]
    assert second["tool"] == "kb.read" and second["effect"] == "allow" and "kill" not in second


def test_switches_survive_a_restart_through_the_control_file(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "control.json"
    first = Live(charter.compile(POLICY), control_file=path, clock=lambda: now[0])
    sid = first.kill("email.send", "kept")
    first.kill("kb.read", "short", ttl=10)
    first.close()
    now[0] += 60
    again = Live(charter.compile(POLICY), control_file=path, clock=lambda: now[0])
    assert [s.id for s in again.switches] == [sid]  # the expired one is not brought back
    assert again.decide(EMAIL).rules == (f"kill:{sid}",) and again.decide(KB).allowed
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the kill switches"):
        Live(charter.compile(POLICY), control_file=path)  # never start without them


def test_a_control_file_shares_switches_between_handles(tmp_path: Path) -> None:
    import time

    from charter.runtime.live_file import FileControl

    path = tmp_path / "shared" / "control.json"
    a, b = Live(charter.compile(POLICY)), Live(charter.compile(POLICY))
    for live in (a, b):
        FileControl(path, poll_interval_s=0.2).attach(live)
    sid = a.kill("email.*", "incident")
    end = time.monotonic() + 20
    while b.decide(EMAIL).allowed:  # liveness only: a generous deadline
        assert time.monotonic() < end, "the switch never reached the other handle"
        time.sleep(0.01)
    assert b.decide(EMAIL).rules == (f"kill:{sid}",)
    other = b.kill("kb.read", "two")  # a second writer: both switches kept
    assert {s["id"] for s in json.loads(path.read_text())["switches"]} == {sid, other}
    assert a.unkill(sid)
    end = time.monotonic() + 20
    while not b.decide(EMAIL).allowed:
        assert time.monotonic() < end, "the unkill never reached the other handle"
        time.sleep(0.01)
    path.write_text("{torn")
    end = time.monotonic() + 2
    while time.monotonic() < end:
        assert not b.decide(KB).allowed  # a broken file never drops a switch
        time.sleep(0.05)
    a.close()
    b.close()
