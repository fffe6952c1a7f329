"""Reservations a hook made before a tool ran, kept until the host says how it went.

A coding agent's hook is a fresh process per event: the `PreToolUse` process reserves the
call's budgets and limits (`Guard.check`), and the `PostToolUse` (or failure) process must
settle or release that reservation. Between the two, the reservation token waits here,
under the call's key: the host's tool-use id where it sends one (Claude Code, Codex), else
the digest of the action as it will run (session, tool name, arguments; Cursor, Gemini CLI,
Copilot). Two identical calls in flight share a key and are settled oldest first.

`SQLiteHeld` keeps them in the hook's state file (its own table), so the processes of one
host share them; `MemoryHeld` serves a warm process (`charter serve`). A token nobody
collects (the host never reported the outcome: the user declined the call, the host
crashed) stays counted, which errs on the safe side; after `MAX_AGE` its row is dropped.
"""

from __future__ import annotations

import os
import time

# `_thread`, not `threading`: the lock and thread-local types threading re-exports, without
# importing threading (~0.6 ms of every hook process).
from _thread import allocate_lock
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from charter.stdlib.digest import sha256

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

__all__ = ["MAX_AGE", "Held", "MemoryHeld", "SQLiteHeld", "call_key"]

#: Seconds after which an uncollected token is forgotten (its reservation stays counted).
MAX_AGE: Final = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charter_held (
    key TEXT NOT NULL,
    token TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS charter_held_key ON charter_held (key, at);
"""
_CANONICAL: Final = msgspec.json.Encoder(order="deterministic", decimal_format="number")


def call_key(agent: str, request: Mapping[str, Any], call_id: str | None) -> str:
    """The key one tool call's reservation waits under: the host's tool-use id in its
    session, else the digest of session, tool name and arguments (the arguments as the
    host runs them: redacted ones when the hook rewrote them)."""
    session = request.get("session")
    sid = session.get("id") if isinstance(session, Mapping) else None
    if call_id:
        return f"id:{agent}:{sid}:{call_id}"
    tool = request.get("tool")
    name = tool.get("name") if isinstance(tool, Mapping) else tool
    data = _CANONICAL.encode([agent, sid, name, request.get("args")])
    return "action:" + sha256(data).hexdigest()


class Held(Protocol):
    """Where reservation tokens wait between a tool call's hook events."""

    def hold(self, key: str, token: str) -> None:
        """Keep `token` under `key` (beside any other held there)."""
        ...

    def take(self, key: str) -> str | None:
        """The oldest token under `key`, removed; None when there is none."""
        ...


class MemoryHeld:
    """Tokens in this process (a warm `charter serve` answers both events of a call)."""

    def __init__(self) -> None:
        self._tokens: dict[str, list[tuple[float, str]]] = {}
        self._lock = allocate_lock()

    def hold(self, key: str, token: str) -> None:
        now = time.time()
        with self._lock:
            if len(self._tokens) > 4096:  # forget what no outcome came for
                self._tokens = {
                    k: kept
                    for k, v in self._tokens.items()
                    if (kept := [(at, t) for at, t in v if now - at < MAX_AGE])
                }
            self._tokens.setdefault(key, []).append((now, token))

    def take(self, key: str) -> str | None:
        with self._lock:
            waiting = self._tokens.get(key)
            if not waiting:
                return None
            _, token = waiting.pop(0)
            if not waiting:
                del self._tokens[key]
            return token


class SQLiteHeld:
    """Tokens in an SQLite file (the hook's state file serves: the table is its own)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self._file = os.fspath(path)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The file (kept as text: importing pathlib is ~3 ms of every hook call)."""
        from pathlib import Path

        return Path(self._file)

    def _connection(self) -> sqlite3.Connection:
        # Opened on first use: most hook events hold or take nothing, and a fresh process
        # per event pays for every connection it opens.
        if self._conn is None:
            import sqlite3  # here: a hook event that holds nothing never loads SQLite

            conn = sqlite3.connect(self._file, timeout=self._timeout, isolation_level=None)
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def hold(self, key: str, token: str) -> None:
        conn = self._connection()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM charter_held WHERE at < ?", (now - MAX_AGE,))
            conn.execute("INSERT INTO charter_held VALUES (?, ?, ?)", (key, token, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def take(self, key: str) -> str | None:
        conn = self._connection()
        # One statement picks and removes the oldest row, so two processes settling two
        # identical calls each get their own token.
        row = conn.execute(
            "DELETE FROM charter_held WHERE rowid = (SELECT rowid FROM charter_held "
            "WHERE key = ? ORDER BY at, rowid LIMIT 1) RETURNING token",
            (key,),
        ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the connection (if one was opened)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
