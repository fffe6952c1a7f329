"""SQLite state store: one file shared by every process on one machine; survives restarts.

The database runs in WAL mode so readers never block the writer.  Each write that must be
atomic (`reserve`, `settle`, ...) runs in a `BEGIN IMMEDIATE` transaction, which takes the
database's write lock up front: two processes racing for the last unit of a budget are
serialised by SQLite itself.  Amounts are stored as decimal strings of integer units, so
they are exact and unbounded.
"""

from __future__ import annotations

import itertools
import os
import time

# `_thread`, not `threading`: the lock and thread-local types threading re-exports, without
# importing threading (~0.6 ms of every hook process).
from _thread import _local as thread_local
from _thread import allocate_lock
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from charter.runtime.tokens import token_urlsafe

from .base import (
    HISTORY_LIMIT,
    Amount,
    HistoryEntry,
    Reservation,
    ReserveResult,
    SessionCalls,
    StateQuery,
    StateSnapshot,
    StoreError,
    Taken,
    amount_of,
    bucket_of,
    decode_fields,
    encode_fields,
    to_units,
    window_end,
)

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")
# A reservation as one transaction applies it: (counter_id, key, bucket, window end or None,
# units, limit units or None).
_Planned = tuple[str, str, int, float | None, int, int | None]
_NOTHING = StateQuery("", labels=False, calls=False)
_ENTRIES = msgspec.json.encode  # a reservation's [counter_id, key, bucket, units] entries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    counter_id TEXT NOT NULL, key TEXT NOT NULL, bucket INTEGER NOT NULL,
    units TEXT NOT NULL, expires_at REAL,
    PRIMARY KEY (counter_id, key, bucket)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counters_expiry ON counters (expires_at);
CREATE TABLE IF NOT EXISTS reservations (
    token TEXT PRIMARY KEY, created_at REAL NOT NULL, entries TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS labels (
    session_id TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (session_id, label)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL, tool TEXT NOT NULL, at REAL NOT NULL, fields BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS history_session ON history (session_id, tool, id);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS session_calls (
    session_id TEXT PRIMARY KEY, tool_calls INTEGER NOT NULL, consecutive INTEGER NOT NULL
);
"""

# Nonces outlive their grant by this much so clock skew between hosts cannot revive one.
_NONCE_GRACE = 60.0
# Paths SQLite opens as a private in-memory database: there is no file to watch.
_IN_MEMORY = frozenset({":memory:", ""})


class SQLiteStore:
    """A `Store` in an SQLite file, safe across threads and processes of one machine.

    Each thread (and each forked process) gets its own connection.  `timeout` is how long a
    writer waits for the lock before the call fails with `StoreError`.  With `lazy`, the
    file is opened (and its tables made) by the first call that reads or writes state, not
    here: a hook process whose decision touches no counter never loads SQLite, and a file
    that cannot be opened is that first call's `StoreError` (a deny), not this one's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        prune_every: int = 256,
        lazy: bool = False,
    ) -> None:
        self._file = os.fspath(path)
        self._timeout = timeout
        self._prune_every = prune_every
        self._local = thread_local()
        self._writes = 0
        self._closed = False
        self._all: list[sqlite3.Connection] = []
        self._all_lock = allocate_lock()
        # (st_dev, st_ino) of the file opened, once known; None for in-memory databases.
        self._identity: tuple[int, int] | None = None
        self._opened = False
        if not lazy:
            self._open()
        elif self._file not in _IN_MEMORY:
            self._precheck()

    def _precheck(self) -> None:
        """What a lazy store can see of its file without SQLite: a directory, another kind
        of file or one that is not an SQLite database fails here, as opening it would."""
        try:
            with open(self._file, "rb") as f:
                head = f.read(16)
        except FileNotFoundError:
            if os.path.isdir(os.path.dirname(self._file) or "."):
                return  # SQLite makes it on first use
            raise StoreError(f"SQLite state store {self._file!r}: no such directory") from None
        except OSError as exc:
            raise StoreError(f"SQLite state store {self._file!r} failed: {exc}") from exc
        if head and head != b"SQLite format 3\x00":
            raise StoreError(f"SQLite state store {self._file!r} is not an SQLite database")

    def _open(self) -> None:
        """WAL mode and the tables (idempotent: two threads' first calls may both run it)."""

        def init(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")

        self._opened = True
        try:
            self._run(init)
            if self._file not in _IN_MEMORY:
                self._identity = self._file_identity()
        except BaseException:
            self._opened = False
            raise

    @property
    def path(self) -> Path:
        """The file (kept as text: importing pathlib is ~3 ms of every hook call)."""
        from pathlib import Path

        return Path(self._file)

    # -- Store API ---------------------------------------------------------------------

    def take(self, query: StateQuery, reservations: Sequence[Reservation],
             now: float) -> Taken:
        """See `Store.take`; one transaction (`BEGIN IMMEDIATE` when it reserves)."""
        plan = [
            (r.counter_id, r.key, bucket, window_end(r.window_seconds, bucket),
             to_units(r.amount), None if r.limit is None else to_units(r.limit))
            for r in reservations
            for bucket in (bucket_of(r.window_seconds, now),)
        ]

        def run(conn: sqlite3.Connection) -> Taken:
            # The write lock up front when reserving: the read and the check-and-add see one
            # state, and racing processes are serialised by SQLite itself.
            with _transaction(conn, "BEGIN IMMEDIATE" if plan else "BEGIN"):
                usage: dict[tuple[str, str], Amount] = {}
                for ref in query.counters:
                    bucket = bucket_of(ref.window_seconds, now)
                    usage[(ref.counter_id, ref.key)] = amount_of(
                        _live_units(conn, ref.counter_id, ref.key, bucket, now))
                token, failed = self._reserve(conn, plan, usage, now) if plan else (None, None)
                sid = query.session_id
                labels: frozenset[str] = frozenset()
                if query.labels:
                    rows = conn.execute("SELECT label FROM labels WHERE session_id = ?", (sid,))
                    labels = frozenset(r[0] for r in rows)
                history = {}
                for tool in query.history_tools:
                    rows = conn.execute(
                        "SELECT at, fields FROM history WHERE session_id = ? AND tool = ?"
                        " ORDER BY id", (sid, tool))
                    history[tool] = tuple(HistoryEntry(at, decode_fields(f)) for at, f in rows)
                row = conn.execute(
                    "SELECT tool_calls, consecutive FROM session_calls WHERE session_id = ?",
                    (sid,)).fetchone() if query.calls else None
            return Taken(usage, labels, history, SessionCalls(*(row or (0, 0))), token, failed)

        return self._run(run)

    def read(self, query: StateQuery, now: float) -> StateSnapshot:
        """See `Store.read`; one read transaction."""
        got = self.take(query, (), now)
        return StateSnapshot(got.usage, got.labels, got.history, got.calls)

    def reserve(self, reservations: Sequence[Reservation], now: float) -> ReserveResult:
        """See `Store.reserve`; one `BEGIN IMMEDIATE` transaction."""
        got = self.take(_NOTHING, reservations, now)
        return ReserveResult(got.failed is None, got.token, got.failed)

    def _reserve(self, conn: sqlite3.Connection, plan: list[_Planned],
                 usage: dict[tuple[str, str], Amount], now: float
                 ) -> tuple[str | None, str | None]:
        """Check and add `plan` inside the caller's write transaction: (token, None), or
        (None, the first counter that would overflow) with nothing added. Notes each
        counter's usage from before in `usage`."""
        pending: dict[tuple[str, str, int], int] = {}
        live: set[tuple[str, str, int]] = set()  # slots whose row stays as it is but units
        failed: str | None = None
        for cid, key, bucket, expires, units, limit in plan:
            slot = (cid, key, bucket)
            if slot not in pending:
                row = conn.execute(
                    "SELECT units, expires_at FROM counters"
                    " WHERE counter_id = ? AND key = ? AND bucket = ?", slot).fetchone()
                if row is None or (row[1] is not None and row[1] <= now):
                    pending[slot] = 0
                else:
                    pending[slot] = int(row[0])
                    if row[1] == expires:
                        live.add(slot)
                usage.setdefault((cid, key), amount_of(pending[slot]))
            pending[slot] += units
            if failed is None and limit is not None and pending[slot] > limit:
                failed = cid  # go on: every reserved counter's usage is reported
        if failed is not None:
            return None, failed
        for cid, key, bucket, expires, _, _ in plan:
            slot = (cid, key, bucket)
            if slot in live:
                # Only `units` changes: the expiry index is left alone (a page less to write).
                conn.execute("UPDATE counters SET units = ? WHERE counter_id = ? AND key = ?"
                             " AND bucket = ?", (str(pending[slot]), cid, key, bucket))
            else:
                conn.execute(
                    "INSERT INTO counters VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                    " SET units = excluded.units, expires_at = excluded.expires_at",
                    (cid, key, bucket, str(pending[slot]), expires))
        token = (_token_base or _new_token_base()) + str(next(_token_seq))
        entries = [(cid, key, bucket, str(units)) for cid, key, bucket, _, units, _ in plan]
        conn.execute("INSERT INTO reservations VALUES (?, ?, ?)",
                     (token, now, _ENTRIES(entries)))
        self._maybe_prune(conn, now)
        return token, None

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        """See `Store.settle`; idempotent."""
        actual_units = {k: to_units(v) for k, v in actual.items()}
        self._run(lambda conn: self._settle(conn, token, actual_units, zero_all=False))

    def release(self, token: str, now: float) -> None:
        """See `Store.release`."""
        self._run(lambda conn: self._settle(conn, token, {}, zero_all=True))

    def add_labels(self, session_id: str, labels: Collection[str]) -> None:
        """See `Store.add_labels`."""

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn, "BEGIN IMMEDIATE"):
                conn.executemany(
                    "INSERT OR IGNORE INTO labels VALUES (?, ?)",
                    [(session_id, label) for label in labels],
                )

        self._run(run)

    def record_call(
        self, session_id: str, tool: str, fields: Mapping[str, object], now: float
    ) -> None:
        """See `Store.record_call`; keeps the last `HISTORY_LIMIT` calls per tool."""
        data = encode_fields(fields)

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn, "BEGIN IMMEDIATE"):
                conn.execute(
                    "INSERT INTO history (session_id, tool, at, fields) VALUES (?, ?, ?, ?)",
                    (session_id, tool, now, data),
                )
                conn.execute(
                    "DELETE FROM history WHERE session_id = ? AND tool = ? AND id <= ?",
                    (session_id, tool, _cutoff(conn, session_id, tool)),
                )

        self._run(run)

    def use_nonce(self, nonce: str, expires_at: float) -> bool:
        """See `Store.use_nonce`."""

        def run(conn: sqlite3.Connection) -> bool:
            with _transaction(conn, "BEGIN IMMEDIATE"):
                cur = conn.execute(
                    "INSERT OR IGNORE INTO nonces VALUES (?, ?)", (nonce, expires_at)
                )
                return cur.rowcount == 1

        return self._run(run)

    def is_nonce_used(self, nonce: str) -> bool:
        """See `Store.is_nonce_used`."""
        return self._run(
            lambda conn: (
                conn.execute("SELECT 1 FROM nonces WHERE nonce = ?", (nonce,)).fetchone()
                is not None
            )
        )

    def bump_session_calls(self, session_id: str, is_tool_call: bool) -> SessionCalls:
        """See `Store.bump_session_calls`."""
        inc = 1 if is_tool_call else 0

        def run(conn: sqlite3.Connection) -> SessionCalls:
            with _transaction(conn, "BEGIN IMMEDIATE"):
                row = conn.execute(
                    "INSERT INTO session_calls VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET"
                    " tool_calls = tool_calls + ?,"
                    " consecutive = CASE WHEN ? THEN consecutive + 1 ELSE 0 END"
                    " RETURNING tool_calls, consecutive",
                    (session_id, inc, inc, inc, inc),
                ).fetchone()
            return SessionCalls(*row)

        return self._run(run)

    def close(self) -> None:
        """Close every connection this store opened."""
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    # -- internals ---------------------------------------------------------------------

    def _settle(
        self,
        conn: sqlite3.Connection,
        token: str,
        actual: Mapping[tuple[str, str], int],
        *,
        zero_all: bool,
    ) -> None:
        import json  # here: only a settle needs it; a hook call's allow pays ~1.4 ms otherwise

        with _transaction(conn, "BEGIN IMMEDIATE"):
            row = conn.execute(
                "DELETE FROM reservations WHERE token = ? RETURNING entries", (token,)
            ).fetchone()
            if row is None:
                return
            for cid, key, bucket, reserved in json.loads(row[0]):
                new = 0 if zero_all else actual.get((cid, key))
                if new is None:
                    continue
                # A rolled-over window may be pruned already; then there is nothing to fix.
                cur = conn.execute(
                    "SELECT units FROM counters WHERE counter_id = ? AND key = ? AND bucket = ?",
                    (cid, key, bucket),
                ).fetchone()
                if cur is None:
                    continue
                conn.execute(
                    "UPDATE counters SET units = ? WHERE counter_id = ? AND key = ? AND bucket = ?",
                    (str(int(cur[0]) + new - int(reserved)), cid, key, bucket),
                )

    def _maybe_prune(self, conn: sqlite3.Connection, now: float) -> None:
        self._writes += 1
        if self._writes % self._prune_every:
            return
        conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (time.time() - _NONCE_GRACE,))

    def _file_identity(self) -> tuple[int, int]:
        try:
            st = os.stat(self._file)
        except FileNotFoundError:
            raise self._lost("the file is gone") from None
        except OSError as exc:
            raise StoreError(f"SQLite state store {self._file!r} failed: {exc}") from exc
        return st.st_dev, st.st_ino

    def _check_file(self) -> None:
        """Fail closed when the path no longer names the file this store opened.

        An open connection keeps reading and writing a deleted (or renamed-over) file, which
        no other store sees: a store opened on the path afterwards starts from zero, and the
        two would each admit a full budget.  While this store holds the file open its inode
        cannot be reused, so a different (st_dev, st_ino) at the path is another file.
        """
        if self._identity is not None and self._file_identity() != self._identity:
            raise self._lost("the path now names another file")

    def _lost(self, what: str) -> StoreError:
        return StoreError(f"SQLite state store {self._file!r} failed: the database file "
                          f"was deleted or replaced while in use ({what}); refusing to count "
                          "into a file other stores do not see")

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("SQLite store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A connection must never cross a fork: the child opens its own.
        if conn is None or getattr(self._local, "forks", None) != _forks:
            # Not onto a fresh, empty file where the store's file was: connect would make one.
            self._check_file()
            import sqlite3  # here: see `lazy` (after the first call, a dict lookup)

            conn = sqlite3.connect(
                self._file, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.forks = conn, _forks
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if not self._opened:
            self._open()
        import sqlite3

        try:
            result = fn(self._connection())
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite state store {self._file!r} failed: {exc}") from exc
        # After the work, not before: what was read or written counts only if the file was
        # still the store's when it finished (a write into a deleted file is harmless).
        self._check_file()
        return result


def _live_units(conn: sqlite3.Connection, cid: str, key: str, bucket: int, now: float) -> int:
    row = conn.execute(
        "SELECT units, expires_at FROM counters WHERE counter_id = ? AND key = ? AND bucket = ?",
        (cid, key, bucket),
    ).fetchone()
    if row is None or (row[1] is not None and row[1] <= now):
        return 0
    return int(row[0])


def _cutoff(conn: sqlite3.Connection, session_id: str, tool: str) -> int:
    """Largest history id that falls outside the newest `HISTORY_LIMIT` entries (or -1)."""
    row = conn.execute(
        "SELECT id FROM history WHERE session_id = ? AND tool = ? ORDER BY id DESC"
        " LIMIT 1 OFFSET ?",
        (session_id, tool, HISTORY_LIMIT),
    ).fetchone()
    return -1 if row is None else int(row[0])


class _transaction:  # noqa: N801 - used as `with _transaction(...)`, like a function
    """`BEGIN` (or `BEGIN IMMEDIATE`) now, `COMMIT` on leaving, `ROLLBACK` on an error.

    A class rather than a `contextmanager` generator: every check runs one, and the
    generator protocol cost a few microseconds of the SQLite store's ~30."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection, begin: str) -> None:
        conn.execute(begin)
        self._conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self._conn.execute("COMMIT")
        # The transaction may already be gone (e.g. COMMIT failed after SQLite rolled back).
        elif self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


# Forks into this process so far (0 in the first): a connection made before the last fork
# is not this process's. A counter rather than `os.getpid()` on every call: that is a
# system call each time.
_forks = 0
# Reservation tokens need only be unique: a random part per process, made again in a forked
# child, and a count; random bytes per reservation cost more. The random part is made by the
# first reservation, not at import: a hook call that reserves nothing never pays for it
# (nor for binascii). Two threads that both make it still make unique tokens: no two
# reservations of a process share a count.
_token_base = ""
_token_seq = itertools.count(1)


def _new_token_base() -> str:
    global _token_base
    _token_base = token_urlsafe(12) + "."
    return _token_base


def _forked() -> None:
    global _forks, _token_base, _token_seq
    _forks += 1
    _token_base = ""
    _token_seq = itertools.count(1)


os.register_at_fork(after_in_child=_forked)
