"""In-process state store: the default; thread-safe, lost when the process exits."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence

from .base import (
    HISTORY_LIMIT,
    Amount,
    HistoryEntry,
    Reservation,
    ReserveResult,
    SessionCalls,
    StateQuery,
    StateSnapshot,
    bucket_of,
    decode_fields,
    encode_fields,
    from_units,
    to_units,
    window_end,
)

__all__ = ["MemoryStore"]

# (counter_id, key, bucket) identifies one window of one counter.
_Slot = tuple[str, str, int]


class MemoryStore:
    """A `Store` held in this process's memory, guarded by one lock.

    Expired windows and nonces are pruned lazily, every `prune_every` writes.
    """

    def __init__(self, *, prune_every: int = 1024) -> None:
        self._lock = threading.Lock()
        self._units: dict[_Slot, int] = {}
        self._expires: dict[_Slot, float] = {}
        # token -> [(slot, reserved units)]
        self._reservations: dict[str, list[tuple[_Slot, int]]] = {}
        self._labels: dict[str, set[str]] = {}
        self._history: dict[tuple[str, str], deque[tuple[float, bytes]]] = {}
        self._nonces: dict[str, float] = {}
        self._calls: dict[str, tuple[int, int]] = {}
        self._writes = 0
        self._prune_every = prune_every

    def read(self, query: StateQuery, now: float) -> StateSnapshot:
        """See `Store.read`."""
        with self._lock:
            usage = {}
            for ref in query.counters:
                slot = (ref.counter_id, ref.key, bucket_of(ref.window_seconds, now))
                usage[(ref.counter_id, ref.key)] = from_units(self._live_units(slot, now))
            labels = frozenset(self._labels.get(query.session_id, ())) if query.labels else None
            sid = query.session_id
            raw = {t: list(self._history.get((sid, t), ())) for t in query.history_tools}
            calls = self._calls.get(query.session_id, (0, 0))
        # Decoding happens outside the lock: it is the slow part and touches no shared state.
        history = {
            tool: tuple(HistoryEntry(at, decode_fields(data)) for at, data in entries)
            for tool, entries in raw.items()
        }
        return StateSnapshot(usage, labels or frozenset(), history, SessionCalls(*calls))

    def reserve(self, reservations: Sequence[Reservation], now: float) -> ReserveResult:
        """See `Store.reserve`."""
        plan = [
            (
                (r.counter_id, r.key, bucket_of(r.window_seconds, now)),
                window_end(r.window_seconds, bucket_of(r.window_seconds, now)),
                to_units(r.amount),
                None if r.limit is None else to_units(r.limit),
            )
            for r in reservations
        ]
        with self._lock:
            pending: dict[_Slot, int] = {}
            for (slot, _, units, limit), r in zip(plan, reservations, strict=True):
                used = pending.get(slot, self._live_units(slot, now)) + units
                if limit is not None and used > limit:
                    return ReserveResult(ok=False, failed=r.counter_id)
                pending[slot] = used
            for slot, expires, _, _ in plan:
                self._units[slot] = pending[slot]
                if expires is not None:
                    self._expires[slot] = expires
            token = secrets.token_urlsafe(16)
            self._reservations[token] = [(slot, units) for slot, _, units, _ in plan]
            self._note_write(now)
        return ReserveResult(ok=True, token=token)

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        """See `Store.settle`."""
        actual_units = {k: to_units(v) for k, v in actual.items()}
        with self._lock:
            entries = self._reservations.pop(token, None)
            if entries is None:
                return
            for slot, reserved in entries:
                new = actual_units.get((slot[0], slot[1]))
                # A window that has already rolled over is gone; its usage no longer matters.
                if new is None or slot not in self._units:
                    continue
                self._units[slot] += new - reserved

    def release(self, token: str, now: float) -> None:
        """See `Store.release`."""
        with self._lock:
            entries = self._reservations.get(token, [])
            zeros: dict[tuple[str, str], Amount] = {(s[0], s[1]): 0 for s, _ in entries}
        self.settle(token, zeros, now)

    def add_labels(self, session_id: str, labels: Collection[str]) -> None:
        """See `Store.add_labels`."""
        with self._lock:
            self._labels.setdefault(session_id, set()).update(labels)

    def record_call(
        self, session_id: str, tool: str, fields: Mapping[str, object], now: float
    ) -> None:
        """See `Store.record_call`."""
        data = encode_fields(fields)
        with self._lock:
            entries = self._history.setdefault((session_id, tool), deque(maxlen=HISTORY_LIMIT))
            entries.append((now, data))

    def use_nonce(self, nonce: str, expires_at: float) -> bool:
        """See `Store.use_nonce`."""
        with self._lock:
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = expires_at
            self._note_write(time.time())
            return True

    def is_nonce_used(self, nonce: str) -> bool:
        """See `Store.is_nonce_used`."""
        with self._lock:
            return nonce in self._nonces

    def bump_session_calls(self, session_id: str, is_tool_call: bool) -> SessionCalls:
        """See `Store.bump_session_calls`."""
        with self._lock:
            total, consecutive = self._calls.get(session_id, (0, 0))
            counts = (total + 1, consecutive + 1) if is_tool_call else (total, 0)
            self._calls[session_id] = counts
        return SessionCalls(*counts)

    def close(self) -> None:
        """Nothing to release for an in-memory store."""

    def _live_units(self, slot: _Slot, now: float) -> int:
        expires = self._expires.get(slot)
        if expires is not None and expires <= now:
            return 0
        return self._units.get(slot, 0)

    def _note_write(self, now: float) -> None:
        self._writes += 1
        if self._writes % self._prune_every:
            return
        for slot in [s for s, exp in self._expires.items() if exp <= now]:
            del self._expires[slot]
            self._units.pop(slot, None)
        # Nonces are kept a minute past expiry so clock skew between hosts cannot revive one.
        for nonce in [n for n, exp in self._nonces.items() if exp + 60 <= now]:
            del self._nonces[nonce]
