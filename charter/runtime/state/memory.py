"""In-process state store: the default; thread-safe, lost when the process exits."""

from __future__ import annotations

import itertools
import math
import time

# `_thread`, not `threading`: the lock and thread-local types threading re-exports, without
# importing threading (~0.6 ms of every hook process).
from _thread import allocate_lock
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

from charter.runtime.tokens import token_urlsafe

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


class _Cell:
    """One window of one counter: its units, when it ends (None: per session), its slot and
    (counter_id, key).

    One mutable cell per slot rather than a dict of units and one of expiry times: a
    reservation then looks its slot up once and adds in place, and notes the cell's own
    slot and counter tuples rather than keeping new ones (fewer objects made per check).
    `held` is the (slot, units) record of its last one-counter reservation, which the next
    one of the same amount shares: a host that never settles keeps every reservation of a
    live window, and then each costs only its entry in `MemoryStore._reservations`."""

    __slots__ = ("counter", "end", "held", "slot", "units")

    def __init__(self, units: int, end: float | None, slot: _Slot) -> None:
        self.units = units
        self.end = end
        self.slot = slot
        self.counter = (slot[0], slot[1])
        self.held = (slot, units)

_EMPTY: frozenset[str] = frozenset()
_NO_HISTORY: Mapping[str, tuple[HistoryEntry, ...]] = MappingProxyType({})
_NO_CALLS = SessionCalls()
_NOTHING = StateQuery("", labels=False, calls=False)
_floor = math.floor
_INT_UNIT = 10**SCALE
_amount = amount_of


def _decode_history(raw: dict[str, list[tuple[float, bytes]]]
                    ) -> Mapping[str, tuple[HistoryEntry, ...]]:
    """History entries read under the lock, decoded: outside it, as it is the slow part
    and touches no shared state."""
    return {tool: tuple(HistoryEntry(at, decode_fields(data)) for at, data in entries)
            for tool, entries in raw.items()}


def _used(cell: _Cell | None, now: float) -> int:
    """The units of a slot's cell: 0 when there is none or its window has ended."""
    if cell is None or (cell.end is not None and cell.end <= now):
        return 0
    return cell.units


def _end(window: int | None, bucket: int) -> float | None:
    """When window `bucket` ends (None for a per-session counter)."""
    return None if window is None else float((bucket + 1) * window)


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
        self._lock = allocate_lock()
        self._cells: dict[_Slot, _Cell] = {}
        # A reservation's number (its token is `_token_prefix` + the number) -> (slot,
        # reserved units), or ((slot, reserved units), ...) in `_multi` for several counters.
        # Keyed by the number and flat for one counter because a host that never settles
        # keeps every reservation of a live window: a string key and a nested tuple each
        # made a check over a store with a million outstanding reservations slower.
        self._reservations: dict[int, tuple[_Slot, int]] = {}
        self._multi: dict[int, Sequence[tuple[_Slot, int]]] = {}
        # Reservation tokens only mean something to this store instance: `settle`/`release`
        # look them up in `_reservations` and ignore any other string. So a token needs to
        # be unique within the instance (a counter, taken under the lock, never repeats)
        # and should not name another instance's reservation if a token is presented to the
        # wrong store: the random per-instance prefix makes that collision as unlikely as
        # guessing a random token. (Whoever holds the store can settle any of its
        # reservations anyway, so unpredictable tokens would protect nothing more; and
        # `secrets.token_urlsafe` per reservation cost a syscall on the Guard's hot path.)
        self._token_prefix = token_urlsafe(9) + "."
        self._prefix_len = len(self._token_prefix)
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
        if len(reservations) != 1 or query.counters:
            return self._take_many(query, reservations, now)
        # One reservation and no other counter (the Guard's usual call): `_check` without
        # its bookkeeping, the limit converted outside the lock.
        r = reservations[0]
        window, amount, limit = r.window_seconds, r.amount, r.limit
        amount = amount * _INT_UNIT if type(amount) is int else to_units(amount)
        cap = (None if limit is None else
               limit * _INT_UNIT if type(limit) is int else to_units(limit))
        slot = (r.counter_id, r.key, 0 if window is None else
                _floor(now / window) if window > 0 else bucket_of(window, now))
        lock = self._lock
        lock.acquire()  # not `with`: on the Guard's hot path its protocol costs as much
        try:
            cell = self._cells.get(slot)
            if cell is not None and cell.end is not None and cell.end <= now:
                cell = None  # its window is over: it begins anew
            used = 0 if cell is None else cell.units
            if cap is not None and used + amount > cap:
                failed, token = slot[0], None
                counter = (slot[0], slot[1]) if cell is None else cell.counter
            else:
                if cell is None:
                    cell = self._cells[slot] = _Cell(amount, _end(window, slot[2]), slot)
                else:
                    cell.units = used + amount
                counter = cell.counter
                held = cell.held
                if held[1] != amount:
                    held = cell.held = (cell.slot, amount)
                seq = next(self._token_seq)
                token = self._token_prefix + str(seq)
                failed = None
                self._reservations[seq] = held
                if not seq % self._prune_every:
                    self._prune(now)
            labels = self._labels.get(query.session_id, _EMPTY) if query.labels else _EMPTY
            raw = calls = None
            if query.history_tools or query.calls:
                sid = query.session_id
                if query.history_tools:
                    raw = {t: list(self._history.get((sid, t), ())) for t in query.history_tools}
                calls = self._calls.get(sid) if query.calls else None
        finally:
            lock.release()
        return Taken({counter: from_units(used) if used % _INT_UNIT else used // _INT_UNIT},
                     labels, _NO_HISTORY if raw is None else _decode_history(raw),
                     _NO_CALLS if calls is None else SessionCalls(*calls), token, failed)

    def _take_many(self, query: StateQuery, reservations: Sequence[Reservation],
                   now: float) -> Taken:
        """`take` in general: counters to read, and any number of reservations."""
        usage: dict[tuple[str, str], Amount] = {}
        sid = query.session_id
        token = failed = None
        cells = self._cells
        lock = self._lock
        lock.acquire()  # not `with`: see `take`
        try:
            for ref in query.counters:
                window = ref.window_seconds
                slot = (ref.counter_id, ref.key, 0 if window is None else _bucket(window, now))
                usage[(slot[0], slot[1])] = _amount(_used(cells.get(slot), now))
            if reservations:
                held: list[tuple[_Slot, int]] = []
                failed = self._check(reservations, usage, held, now)
                if failed is None:
                    seq = next(self._token_seq)
                    token = self._token_prefix + str(seq)
                    if len(held) == 1:
                        self._reservations[seq] = held[0]
                    else:
                        self._multi[seq] = held
                    if not seq % self._prune_every:
                        self._prune(now)
            labels = self._labels.get(sid, _EMPTY) if query.labels else _EMPTY
            raw = ({t: list(self._history.get((sid, t), ())) for t in query.history_tools}
                   if query.history_tools else None)
            calls = self._calls.get(sid) if query.calls else None
        finally:
            lock.release()
        return Taken(usage, labels, _NO_HISTORY if raw is None else _decode_history(raw),
                     _NO_CALLS if calls is None else SessionCalls(*calls), token, failed)

    def _check(self, reservations: Sequence[Reservation], usage: dict[tuple[str, str], Amount],
               held: list[tuple[_Slot, int]], now: float) -> str | None:
        """Check and add every reservation, the lock held: None when all fitted (and were
        added, noted in `held`), else the first counter that would overflow (nothing
        added). Notes each counter's usage from before in `usage`."""
        cells = self._cells
        failed = None
        # slot -> (usage after, window end or None), for counters reserved more than once
        pending: dict[_Slot, tuple[int, float | None]] = {}
        for r in reservations:
            cid, key, window, amount, limit = (
                r.counter_id, r.key, r.window_seconds, r.amount, r.limit)
            amount = amount * _INT_UNIT if type(amount) is int else to_units(amount)
            bucket = (0 if window is None else
                      _floor(now / window) if window > 0 else bucket_of(window, now))
            slot, end = (cid, key, bucket), _end(window, bucket)
            before = pending.get(slot) if pending else None
            if before is None:
                used = _used(cells.get(slot), now)
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
            cell = cells.get(slot)
            if cell is None:
                cells[slot] = _Cell(used, end, slot)
            else:
                cell.units, cell.end = used, end
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
        seq = self._seq(token)
        if seq is None:
            return  # not a token of this store
        cells = self._cells
        lock = self._lock
        lock.acquire()  # not `with`: see `take` (a host settles every allowed call)
        try:
            one = self._reservations.pop(seq, None)
            entries = (one,) if one is not None else self._multi.pop(seq, None)
            if entries is None or actual_units is None:
                return  # nothing to settle, or every counter keeps its reserved amount
            for slot, reserved in entries:
                new = actual_units.get((slot[0], slot[1]))
                if new is not None:
                    # A window that has rolled over is gone; its usage no longer matters.
                    cell = cells.get(slot)
                    if cell is not None:
                        cell.units += new - reserved
        finally:
            lock.release()

    def release(self, token: str, now: float) -> None:
        """See `Store.release`."""
        seq = self._seq(token)
        if seq is None:
            return  # not a token of this store
        cells = self._cells
        lock = self._lock
        lock.acquire()  # not `with`: see `settle`
        try:
            # `settle` with zero for every counter of the reservation.
            one = self._reservations.pop(seq, None)
            for slot, reserved in (one,) if one is not None else self._multi.pop(seq, ()):
                cell = cells.get(slot)
                if cell is not None:
                    cell.units -= reserved
        finally:
            lock.release()

    def _seq(self, token: str) -> int | None:
        """The number of a reservation token of this store, or None for any other string
        (another store's token, or one this store never made)."""
        if type(token) is str and token.startswith(self._token_prefix):
            digits = token[self._prefix_len:]
            # As made: ASCII digits without a leading zero (`int` would take more).
            if digits.isascii() and digits.isdigit() and digits[0] != "0" and len(digits) < 20:
                return int(digits)
        return None

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
        cells = self._cells
        expired = [s for s, cell in cells.items() if cell.end is not None and cell.end <= now]
        for slot in expired:
            del cells[slot]
        if expired:
            # Settling a reservation whose every window is gone does nothing (see `settle`):
            # forget it, so that unsettled reservations of past windows do not pile up.
            for seq in [n for n, (slot, _) in self._reservations.items() if slot not in cells]:
                del self._reservations[seq]
            for seq in [n for n, entries in self._multi.items()
                        if all(slot not in cells for slot, _ in entries)]:
                del self._multi[seq]
        # Nonces are kept a minute past expiry so clock skew between hosts cannot revive one.
        for nonce in [n for n, exp in self._nonces.items() if exp + 60 <= now]:
            del self._nonces[nonce]
