"""In-process state store: the default; thread-safe, lost when the process exits."""

from __future__ import annotations

import itertools
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal

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
    bucket_of,
    decode_fields,
    encode_fields,
    from_units,
    to_units,
)

__all__ = ["CounterUnits", "MemoryStore"]

# (counter_id, key, bucket) identifies one window of one counter.
_Slot = tuple[str, str, int]

CounterUnits = tuple[str, str, int | None, int, int | None]
"""A reservation in store units: (counter_id, key, window_seconds, units, limit units or
None), as `MemoryStore.reserve_units` takes it."""

_INT_UNIT = 10**SCALE
_EMPTY: frozenset[str] = frozenset()
_floor = math.floor


def _bucket(window: int, now: float) -> int:
    """`bucket_of` for a window that is not None."""
    if window > 0:
        return _floor(now / window)
    return bucket_of(window, now)  # raises


def _usage(units: int) -> Decimal:
    """`from_units`, with a shortcut for whole amounts (call counts, integral costs)."""
    whole, frac = divmod(units, _INT_UNIT)
    return Decimal(whole) if not frac else from_units(units)


class MemoryStore:
    """A `Store` held in this process's memory, guarded by one lock.

    Expired windows and nonces are pruned lazily, every `prune_every` writes.
    """

    def __init__(self, *, prune_every: int = 1024) -> None:
        self._lock = threading.Lock()
        self._units: dict[_Slot, int] = {}
        self._expires: dict[_Slot, float] = {}
        # token number -> ((slot, reserved units), ...); the token is `_token_prefix` + number
        self._reservations: dict[int, tuple[tuple[_Slot, int], ...]] = {}
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

    def read(self, query: StateQuery, now: float) -> StateSnapshot:
        """See `Store.read`."""
        with self._lock:
            usage = {}
            for ref in query.counters:
                slot = (ref.counter_id, ref.key, bucket_of(ref.window_seconds, now))
                usage[(ref.counter_id, ref.key)] = _usage(self._live_units(slot, now))
            labels = self._labels.get(query.session_id, _EMPTY) if query.labels else _EMPTY
            sid = query.session_id
            raw = {t: list(self._history.get((sid, t), ())) for t in query.history_tools}
            calls = self._calls.get(query.session_id, (0, 0))
        # Decoding happens outside the lock: it is the slow part and touches no shared state.
        history = {
            tool: tuple(HistoryEntry(at, decode_fields(data)) for at, data in entries)
            for tool, entries in raw.items()
        }
        return StateSnapshot(usage, labels, history, SessionCalls(*calls))

    def read_counters(
        self, counters: Sequence[tuple[str, str, int | None]], session_id: str, labels: bool,
        now: float,
    ) -> tuple[dict[tuple[str, str], Decimal], frozenset[str]]:
        """The usage and labels parts of `read` for (counter_id, key, window_seconds)
        counters, without a query or a snapshot object: the Guard's hot path.

        Returns the same values as `read(StateQuery(session_id, counters, (), labels), now)`.
        """
        usage: dict[tuple[str, str], Decimal] = {}
        with self._lock:
            units = self._units
            expires = self._expires
            for cid, key, window in counters:
                slot = (cid, key, 0 if window is None else _bucket(window, now))
                exp = expires.get(slot)
                usage[(cid, key)] = _usage(
                    units.get(slot, 0) if exp is None or exp > now else 0)
            found = self._labels.get(session_id, _EMPTY) if labels else _EMPTY
        return usage, found

    def read_key(
        self, counters: Sequence[tuple[str, int | None]], key: str, labels: bool, now: float,
        whole_as_int: bool = False,
    ) -> tuple[dict[tuple[str, str], Decimal | int], frozenset[str]]:
        """`read_counters` for (counter_id, window_seconds) counters all keyed by `key`, and
        the labels of session `key`. With `whole_as_int`, a whole usage comes as an `int`
        (equal to the `Decimal`; the caller knows that is the same to it)."""
        usage: dict[tuple[str, str], Decimal | int] = {}
        units = self._units
        expires = self._expires
        lock = self._lock
        lock.acquire()  # not `with`: on this path its protocol costs as much as the lock
        try:
            for cid, window in counters:
                if window is None:
                    used = units.get((cid, key, 0), 0)
                else:
                    slot = (cid, key, _floor(now / window) if window > 0
                            else bucket_of(window, now))
                    exp = expires.get(slot)
                    used = units.get(slot, 0) if exp is None or exp > now else 0
                whole, frac = divmod(used, _INT_UNIT)
                usage[(cid, key)] = (from_units(used) if frac else whole if whole_as_int
                                     else Decimal(whole))
            found = self._labels.get(key, _EMPTY) if labels else _EMPTY
        finally:
            lock.release()
        return usage, found

    def reserve(self, reservations: Sequence[Reservation], now: float) -> ReserveResult:
        """See `Store.reserve`."""
        items: list[CounterUnits] = [
            (r.counter_id, r.key, r.window_seconds, to_units(r.amount),
             None if r.limit is None else to_units(r.limit))
            for r in reservations
        ]
        ok, token_or_failed = self.reserve_units(items, now)
        if ok:
            return ReserveResult(ok=True, token=token_or_failed)
        return ReserveResult(ok=False, failed=token_or_failed)

    def reserve_units(self, items: Sequence[CounterUnits], now: float) -> tuple[bool, str]:
        """`reserve` with amounts and limits already in units (`to_units`, rounded up):
        atomically add every amount if all stay within their limits, else add none.

        Returns (True, token) or (False, the counter_id of the first counter that would
        overflow). Tokens are made of ASCII letters, digits, "-", "_" and ".".
        """
        with self._lock:
            return self._reserve_locked(items, now)

    def _reserve_locked(self, items: Sequence[CounterUnits], now: float) -> tuple[bool, str]:
        """`reserve_units`, the lock already held."""
        pending: dict[_Slot, int] = {}
        planned: list[tuple[_Slot, float | None, int]] = []
        for cid, key, window, amount, limit in items:
            if window is None:
                slot, end = (cid, key, 0), None
            else:
                bucket = _bucket(window, now)
                slot, end = (cid, key, bucket), float((bucket + 1) * window)
            used = pending.get(slot)
            if used is None:
                used = self._live_units(slot, now)
            used += amount
            if limit is not None and used > limit:
                return False, cid
            pending[slot] = used
            planned.append((slot, end, amount))
        return True, self._commit(pending, planned, now)

    def take_key(
        self, items: Sequence[tuple[str, int | None, int, int | None]], key: str, labels: bool,
        now: float, whole_as_int: bool = False,
    ) -> tuple[str | None, str | None, dict[tuple[str, str], Decimal | int], frozenset[str]]:
        """`read_key` and `reserve_units` as one atomic step, for a caller that reserves
        before it decides and releases when the decision is not an allow.

        `items` are (counter_id, window_seconds, units, limit units) with distinct
        counter ids, all keyed by `key`. Returns (token, None, usage, labels) when every
        amount was added within its limit, else (None, the counter_id of the first that
        would overflow, usage, labels) with nothing added. `usage` is as `read_key` gives
        it, from before this reservation.
        """
        if len(items) != 1:
            return self._take_many(items, key, labels, now, whole_as_int)
        # One counter (the usual case), inline.
        cid, window, amount, limit = items[0]
        units = self._units
        lock = self._lock
        token: str | None = None
        failed: str | None = None
        lock.acquire()  # not `with`: see `read_key`
        try:
            end: float | None = None
            if window is None:
                slot = (cid, key, 0)
                used = units.get(slot, 0)
            else:
                bucket = _floor(now / window) if window > 0 else bucket_of(window, now)
                slot = (cid, key, bucket)
                exp = self._expires.get(slot)
                if exp is None or exp <= now:
                    used, end = 0, float((bucket + 1) * window)
                else:
                    used = units.get(slot, 0)
            found = self._labels.get(key, _EMPTY) if labels else _EMPTY
            if limit is not None and used + amount > limit:
                failed = cid
            else:
                units[slot] = used + amount
                if end is not None:
                    self._expires[slot] = end
                seq = next(self._token_seq)
                token = self._token_prefix + str(seq)
                self._reservations[seq] = ((slot, amount),)
                if not seq % self._prune_every:
                    self._prune(now)
        finally:
            lock.release()
        whole, frac = divmod(used, _INT_UNIT)
        return token, failed, {(cid, key): from_units(used) if frac else whole if whole_as_int
                               else Decimal(whole)}, found

    def _take_many(
        self, items: Sequence[tuple[str, int | None, int, int | None]], key: str, labels: bool,
        now: float, whole_as_int: bool,
    ) -> tuple[str | None, str | None, dict[tuple[str, str], Decimal | int], frozenset[str]]:
        """`take_key` for any number of counters: `read_key` and `reserve_units` under one
        hold of the lock."""
        usage: dict[tuple[str, str], Decimal | int] = {}
        with self._lock:
            for cid, window, _, _ in items:
                used = self._live_units((cid, key, 0 if window is None else _bucket(window, now)),
                                        now)
                usage[(cid, key)] = (used // _INT_UNIT if whole_as_int and not used % _INT_UNIT
                                     else _usage(used))
            found = self._labels.get(key, _EMPTY) if labels else _EMPTY
            ok, got = self._reserve_locked(
                [(cid, key, window, amount, limit) for cid, window, amount, limit in items], now)
        return (got, None, usage, found) if ok else (None, got, usage, found)

    def _commit(self, pending: dict[_Slot, int], planned: list[tuple[_Slot, float | None, int]],
                now: float) -> str:
        """Apply a checked reservation (under the lock) and return its token."""
        for slot, end, _ in planned:
            self._units[slot] = pending[slot]
            if end is not None:
                self._expires[slot] = end
        seq = next(self._token_seq)
        token = self._token_prefix + str(seq)
        self._reservations[seq] = tuple((slot, amount) for slot, _, amount in planned)
        if not seq % self._prune_every:
            self._prune(now)
        return token

    def _token_number(self, token: str) -> int | None:
        """The number of a token of this store, None for any other string."""
        prefix = self._token_prefix
        if not token.startswith(prefix):
            return None
        digits = token[len(prefix):]
        return int(digits) if digits.isascii() and digits.isdigit() else None

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        """See `Store.settle`."""
        seq = self._token_number(token)
        if seq is None:
            return
        actual_units = {k: to_units(v) for k, v in actual.items()} if actual else None
        units = self._units
        lock = self._lock
        lock.acquire()  # not `with`: see `read_key` (a host settles every allowed call)
        try:
            entries = self._reservations.pop(seq, None)
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
        seq = self._token_number(token)
        if seq is None:
            return
        units = self._units
        lock = self._lock
        lock.acquire()  # not `with`: see `settle`
        try:
            # `settle` with zero for every counter of the reservation.
            for slot, reserved in self._reservations.pop(seq, ()):
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

    def _live_units(self, slot: _Slot, now: float) -> int:
        expires = self._expires.get(slot)
        if expires is not None and expires <= now:
            return 0
        return self._units.get(slot, 0)

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
            for seq in [n for n, entries in self._reservations.items()
                        if all(slot not in units for slot, _ in entries)]:
                del self._reservations[seq]
        # Nonces are kept a minute past expiry so clock skew between hosts cannot revive one.
        for nonce in [n for n, exp in self._nonces.items() if exp + 60 <= now]:
            del self._nonces[nonce]
