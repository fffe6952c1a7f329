"""`may_have_granted`: the stores' cheap answer that lets `PendingApprovals.attach` skip the
action digest when no ticket is granted, without ever missing a grant."""

from __future__ import annotations

from pathlib import Path

import charter
from charter.hosts.approvals import MemoryPending, PendingApprovals, SQLitePending
from charter.runtime.guard import Guard
from charter.runtime.state.sqlite import SQLiteStore

POLICY = """
policy "probe" version "1"
default deny
allow tool "pay"
require approval from "finance" tool "pay" when args.amount > 100 because "big payment"
"""
BIG = {"tool": "pay", "args": {"amount": 500}, "session": {"id": "s1"}}


def test_memory_store_knows_when_a_grant_exists() -> None:
    guard = Guard(charter.compile(POLICY), secret=b"k" * 32)
    store = MemoryPending()
    pending = PendingApprovals(guard, store)
    assert not store.may_have_granted()
    ticket = pending.park(guard.check(BIG), BIG)
    assert not store.may_have_granted()  # parked is not granted
    assert "approvals" not in pending.attach(BIG)
    pending.grant(ticket.id, by="alice", group="finance")
    assert store.may_have_granted()
    retry = pending.attach(BIG)
    assert len(retry["approvals"]) == 1
    decision = guard.check(retry)
    assert decision.allowed
    pending.settle(retry, decision)
    assert not store.may_have_granted()  # used: nothing to attach any more
    assert "approvals" not in pending.attach(BIG)


def test_sqlite_store_sees_a_grant_made_by_another_process(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    guard = Guard(charter.compile(POLICY), state=SQLiteStore(state), secret=b"k" * 32)
    store = SQLitePending(state)
    pending = PendingApprovals(guard, store)
    ticket = pending.park(guard.check(BIG), BIG)
    # the answer "nothing granted" is remembered ...
    assert "approvals" not in pending.attach(BIG)
    assert not store.may_have_granted()
    # ... until another connection (the `charter approvals grant` process) commits
    PendingApprovals(guard, SQLitePending(state)).grant(ticket.id, by="alice", group="finance")
    assert store.may_have_granted()
    retry = pending.attach(BIG)
    assert len(retry["approvals"]) == 1
    decision = guard.check(retry)
    assert decision.allowed
    pending.settle(retry, decision)  # our own write: forgotten, read again
    assert not store.may_have_granted()
    assert "approvals" not in pending.attach(BIG)


def test_sqlite_probe_opens_nothing_until_a_ticket_is_granted(tmp_path: Path) -> None:
    """`<state>.granted` is made before the first grant is written, so while it is absent
    the probe answers without opening the database (a hook's every call asks)."""
    state = tmp_path / "state.db"
    marker = tmp_path / "state.db.granted"
    store = SQLitePending(state)
    assert not store.may_have_granted()
    assert not state.exists()  # not opened, not made
    guard = Guard(charter.compile(POLICY), state=SQLiteStore(state, lazy=True), secret=b"k" * 32)
    pending = PendingApprovals(guard, store)
    ticket = pending.park(guard.check(BIG), BIG)
    assert state.exists() and not marker.exists()
    assert not store.may_have_granted()
    PendingApprovals(guard, SQLitePending(state)).grant(ticket.id, by="alice", group="finance")
    assert marker.exists()
    assert store.may_have_granted()
    assert len(pending.attach(BIG)["approvals"]) == 1
