"""In-process state store: the default; thread-safe, lost when the process exits."""

from __future__ import annotations

import itertools
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

from .base import (
    HISTORY_LIMIT,
    SCALE,
    Amount,
    HistoryEntry,
    Reservation,
    ReserveResult,
    SessionCalls,
    StateQuery,
    StateSnapshot,
    Taken,
    amount_of,
    bucket_of,
    decode_fields,
    encode_fields,
    from_units,
    to_units,
)

__all__ = ["MemoryStore"]

# (counter_id, key, bucket) identifies one window of one counter.
_Slot = tuple[str, str, int]

_EMPTY: frozenset[str] = frozenset()
_NO_HISTORY: Mapping[str, tuple[HistoryEntry, ...]] = MappingProxyType({})
_NO_CALLS = SessionCalls()
_NOTHING = StateQuery("", labels=False, calls=False)
_floor = math.floor
_INT_UNIT = 10**SCALE
_amount = amount_of


def _bucket(window: int, now: float) -> int:
    """`bucket_of` for a window that is not None."""
    if window > 0:
        return _floor(now / window)
    return bucket_of(window, now)  # raises


class MemoryStore:
    """A `Store` held in this process's memory, guarded by one lock.

    Expired windows and nonces are pruned lazily, every `prune_every` writes.
    """

    def __init__(self, *, prune_every: int = 1024) -> None:
        self._lock = threading.Lock()
        self._units: dict[_Slot, int] = {}
        self._expires: dict[_Slot, float] = {}
        # token -> ((slot, reserved units), ...); a token is `_token_prefix` + a number
        self._reservations: dict[str, Sequence[tuple[_Slot, int]]] = {}
        # Reservation tokens only mean something to this store instance: `settle`/`release`
        # look them up in `_reservations` and ignore any other string. So a token needs to
        # be unique within the instance (a counter, taken under the lock, never repeats)
        # and should not name another instance's reservation if a token is presented to the
        # wrong store: the random per-instance prefix makes that collision as unlikely as
        # guessing a random token. (Whoever holds the store can settle any of its
        # reservations anyway, so unpredictable tokens would protect nothing more; and
        # `secrets.token_urlsafe` per reservation cost a syscall on the Guard's hot path.)
        self._token_prefix = secrets.token_urlsafe(9) + "."
        self._token_seq = itertools.count(1)
        # Stored frozen and replaced on change, so reads share them without copying.
        self._labels: dict[str, frozenset[str]] = {}
        self._history: dict[tuple[str, str], deque[tuple[float, bytes]]] = {}
        self._nonces: dict[str, float] = {}
        self._calls: dict[str, tuple[int, int]] = {}
        self._writes = 0
        self._prune_every = prune_every

    def take(self, query: StateQuery, reservations: Sequence[Reservation],
             now: float) -> Taken:
        """See `Store.take`: one hold of the lock."""
        usage: dict[tuple[str, str], Amount] = {}
        sid = query.session_id
        token = failed = None
        units = self._units
        expires = self._expires
        lock = self._lock
        lock.acquire()  # not `with`: on the Guard's hot path its protocol costs as much
        try:
            for ref in query.counters:
                window = ref.window_seconds
                slot = (ref.counter_id, ref.key, 0 if window is None else _bucket(window, now))
                exp = expires.get(slot)
                usage[(slot[0], slot[1])] = _amount(
                    units.get(slot, 0) if exp is None or exp > now else 0)
            if len(reservations) == 1:
                # One counter (the usual case), inline: `_check` without its bookkeeping.
                r = reservations[0]
                cid, key, window, amount, limit = (
                    r.counter_id, r.key, r.window_seconds, r.amount, r.limit)
                amount = amount * _INT_UNIT if type(amount) is int else to_units(amount)
                end: float | None = None
                if window is None:
                    slot = (cid, key, 0)
                    used = units.get(slot, 0)
                else:
                    bucket = _floor(now / window) if window > 0 else bucket_of(window, now)
                    slot = (cid, key, bucket)
                    exp = expires.get(slot)
                    if exp is None or exp <= now:
                        used, end = 0, float((bucket + 1) * window)
                    else:
                        used = units.get(slot, 0)
                counter = (cid, key)
                if counter not in usage:
                    whole, frac = divmod(used, _INT_UNIT)
                    usage[counter] = from_units(used) if frac else whole
                if limit is not None and used + amount > (
                        limit * _INT_UNIT if type(limit) is int else to_units(limit)):
                    failed = cid
                else:
                    units[slot] = used + amount
                    if end is not None:
                        expires[slot] = end
                    seq = next(self._token_seq)
                    token = self._token_prefix + str(seq)
                    self._reservations[token] = ((slot, amount),)
                    if not seq % self._prune_every:
                        self._prune(now)
            elif reservations:
                held: list[tuple[_Slot, int]] = []
                failed = self._check(reservations, usage, held, now)
                if failed is None:
                    seq = next(self._token_seq)
                    token = self._token_prefix + str(seq)
                    self._reservations[token] = held
                    if not seq % self._prune_every:
                        self._prune(now)
            labels = self._labels.get(sid, _EMPTY) if query.labels else _EMPTY
            raw = ({t: list(self._history.get((sid, t), ())) for t in query.history_tools}
                   if query.history_tools else None)
            calls = self._calls.get(sid) if query.calls else None
        finally:
            lock.release()
        # Decoding happens outside the lock: it is the slow part and touches no shared state.
        history = {tool: tuple(HistoryEntry(at, decode_fields(data)) for at, data in entries)
                   for tool, entries in raw.items()} if raw is not None else _NO_HISTORY
        return Taken(usage, labels, history,
                     _NO_CALLS if calls is None else SessionCalls(*calls), token, failed)

    def _check(self, reservations: Sequence[Reservation], usage: dict[tuple[str, str], Amount],
               held: list[tuple[_Slot, int]], now: float) -> str | None:
        """Check and add every reservation, the lock held: None when all fitted (and were
        added, noted in `held`), else the first counter that would overflow (nothing
        added). Notes each counter's usage from before in `usage`."""
        units = self._units
        expires = self._expires
        failed = None
        # slot -> (usage after, window end or None), for counters reserved more than once
        pending: dict[_Slot, tuple[int, float | None]] = {}
        for r in reservations:
            cid, key, window, amount, limit = (
                r.counter_id, r.key, r.window_seconds, r.amount, r.limit)
            amount = amount * _INT_UNIT if type(amount) is int else to_units(amount)
            if window is None:
                slot, end = (cid, key, 0), None
            else:
                bucket = _floor(now / window) if window > 0 else bucket_of(window, now)
                slot, end = (cid, key, bucket), float((bucket + 1) * window)
            before = pending.get(slot) if pending else None
            if before is None:
                exp = expires.get(slot)
                used = units.get(slot, 0) if exp is None or exp > now else 0
                if (cid, key) not in usage:
                    whole, frac = divmod(used, _INT_UNIT)
                    usage[(cid, key)] = from_units(used) if frac else whole
            else:
                used = before[0]
            used += amount
            if failed is None and limit is not None and used > (
                    limit * _INT_UNIT if type(limit) is int else to_units(limit)):
                failed = cid  # go on: every reserved counter's usage is reported
            pending[slot] = (used, end)
            held.append((slot, amount))
        if failed is not None:
            return failed
        for slot, (used, end) in pending.items():
            units[slot] = used
            if end is not None:
                expires[slot] = end
        return None

    def read(self, query: StateQuery, now: float) -> StateSnapshot:
        """See `Store.read`."""
        got = self.take(query, (), now)
        return StateSnapshot(got.usage, got.labels, got.history, got.calls)

    def reserve(self, reservations: Sequence[Reservation], now: float) -> ReserveResult:
        """See `Store.reserve`."""
        got = self.take(_NOTHING, reservations, now)
        return ReserveResult(got.failed is None, got.token, got.failed)

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        """See `Store.settle`."""
        actual_units = {k: to_units(v) for k, v in actual.items()} if actual else None
        units = self._units
        lock = self._lock
        lock.acquire()  # not `with`: see `take` (a host settles every allowed call)
        try:
            entries = self._reservations.pop(token, None)
            if entries is None or actual_units is None:
                return  # nothing to settle, or every counter keeps its reserved amount
            for slot, reserved in entries:
                new = actual_units.get((slot[0], slot[1]))
                # A window that has already rolled over is gone; its usage no longer matters.
                if new is not None and slot in units:
                    units[slot] += new - reserved
        finally:
            lock.release()

    def release(self, token: str, now: float) -> None:
        """See `Store.release`."""
        units = self._units
        lock = self._lock
        lock.acquire()  # not `with`: see `settle`
        try:
            # `settle` with zero for every counter of the reservation.
            for slot, reserved in self._reservations.pop(token, ()):
                if slot in units:
                    units[slot] -= reserved
        finally:
            lock.release()

    def add_labels(self, session_id: str, labels: Collection[str]) -> None:
        """See `Store.add_labels`."""
        with self._lock:
            old = self._labels.get(session_id, _EMPTY)
            new = old.union(labels)
            if len(new) != len(old):
                self._labels[session_id] = new

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

    def _note_write(self, now: float) -> None:
        self._writes += 1
        if not self._writes % self._prune_every:
            self._prune(now)

    def _prune(self, now: float) -> None:
        expired = {s for s, exp in self._expires.items() if exp <= now}
        for slot in expired:
            del self._expires[slot]
            self._units.pop(slot, None)
        if expired:
            # Settling a reservation whose every window is gone does nothing (see `settle`):
            # forget it, so that unsettled reservations of past windows do not pile up.
            units = self._units
            for token in [t for t, entries in self._reservations.items()
                          if all(slot not in units for slot, _ in entries)]:
                del self._reservations[token]
        # Nonces are kept a minute past expiry so clock skew between hosts cannot revive one.
        for nonce in [n for n, exp in self._nonces.items() if exp + 60 <= now]:
            del self._nonces[nonce]
