"""Issue 18 / D11: an SQLite state file deleted or replaced under an open store.

The open store used to keep counting into the unlinked file while a new store on the path
started from zero: two budgets' worth admitted. Now the open store notices that its path no
longer names the file it opened and fails closed (`StoreError`; the Guard denies).
"""

from __future__ import annotations

import os
import shutil
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import charter
from charter import Guard
from charter.runtime.state import Reservation, SQLiteStore, StateQuery, StoreError

POLICY = """
policy "unlinked" version "1"
default deny
allow tool "spend"
budget cost_usd <= 1.00 per 1d per agent.id because "daily budget of $1 reached"
"""
NOW = 1_800_000_600.0


def spend(cost: str = "0.60") -> dict[str, Any]:
    return {"tool": "spend", "args": {}, "agent": {"id": "bot"}, "session": {"id": "s"},
            "estimate": {"cost_usd": Decimal(cost)}}


def remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def guard_over(store: SQLiteStore) -> Guard:
    return Guard(charter.compile(POLICY, "unlinked.agentpolicy"), state=store, clock=lambda: NOW)


def test_deleted_file_fails_closed_instead_of_doubling_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = guard_over(SQLiteStore(path))
    assert first.check(spend()).allowed
    remove(path)
    second = guard_over(SQLiteStore(path))  # a new store on the path starts from zero
    assert second.check(spend()).allowed
    # The old store must not go on admitting into the unlinked file.
    late = first.check(spend("0.30"))
    assert not late.allowed
    assert any("state store unavailable" in r and "deleted or replaced" in r
               for r in late.reasons), late.reasons


def test_store_raises_once_its_file_is_deleted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    ok = store.reserve([Reservation("c", "k", None, Decimal(1), Decimal(5))], NOW)
    assert ok.ok
    remove(path)
    with pytest.raises(StoreError, match="the file is gone"):
        store.reserve([Reservation("c", "k", None, Decimal(1), Decimal(5))], NOW)
    with pytest.raises(StoreError, match="the file is gone"):
        store.is_nonce_used("n")
    assert not path.exists()  # failing closed does not create a fresh, empty file


def test_store_raises_when_its_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    store.add_labels("s", ["x"])
    other = tmp_path / "other.db"
    SQLiteStore(other).close()
    os.replace(other, path)  # e.g. a restore from backup under a running process
    with pytest.raises(StoreError, match="names another file"):
        store.add_labels("s", ["y"])


def test_a_new_thread_does_not_open_a_replacement_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    store.use_nonce("n1", NOW + 60)
    remove(path)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            store.use_nonce("n2", NOW + 60)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], StoreError)
    assert not path.exists()


def reopened(path: Path) -> SQLiteStore:
    """A store on `path` after another store wrote to it and closed: the file stays the same."""
    first = SQLiteStore(path)
    first.add_labels("s", ["x"])
    first.close()
    store = SQLiteStore(path)
    store.add_labels("s", ["y"])
    return store


def test_a_restored_copy_is_another_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = reopened(path)
    shutil.copy(path, tmp_path / "copy.db")
    os.replace(tmp_path / "copy.db", path)
    with pytest.raises(StoreError, match="names another file"):
        store.add_labels("s", ["z"])


def test_an_untouched_file_keeps_working_across_reopen(tmp_path: Path) -> None:
    store = reopened(tmp_path / "state.db")
    assert store.is_nonce_used("nope") is False
    assert store.read(StateQuery("s", (), (), True), NOW).labels == {"x", "y"}
