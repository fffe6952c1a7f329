"""The state-store contract shared by the memory, SQLite and Redis stores.

A store keeps what a decision needs beyond the request itself: usage counters for budgets and
limits, session labels, the history of earlier allowed calls, single-use grant nonces and the
loop-guard call counts.  The `Guard` reads what one decision needs *and* reserves what the call
would be charged in one atomic step (`Store.take`), gives the reservation back when the
decision is not an allow (`Store.release`) and settles actual usage afterwards
(`Store.settle`).  `read` and `reserve` are the two halves of `take` on their own.

Amounts are kept as integers of *units* of 10**-9 (`SCALE`), so that every store is exact,
including Redis whose scripts only see 64-bit integers.  An amount with finer precision is
rounded up to the next unit: a budget may over-count by a nano-unit, never under-count.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Protocol, runtime_checkable

import msgspec

__all__ = [
    "HISTORY_LIMIT",
    "SCALE",
    "Amount",
    "CounterRef",
    "HistoryEntry",
    "Reservation",
    "ReserveResult",
    "SessionCalls",
    "StateQuery",
    "StateSnapshot",
    "Store",
    "StoreError",
    "Taken",
    "amount_of",
    "bucket_of",
    "decode_fields",
    "encode_fields",
    "from_units",
    "to_units",
    "window_end",
]

Amount = Decimal | int
"""A counter amount: `Decimal` for costs, `int` for tokens and calls."""

SCALE = 9
"""Amounts are stored as integers of 10**-SCALE units."""

HISTORY_LIMIT = 1000
"""Past calls kept per (session, tool); older entries are dropped first."""

_UNIT = Decimal(10) ** SCALE
_INT_UNIT: int = 10**SCALE
# Decimal amounts already converted (limits and estimates repeat): converting costs ~2 us.
_UNITS: dict[Decimal, int] = {}


class StoreError(Exception):
    """The store is unreachable or broken.

    The Guard turns this into a fail-closed deny; a store never answers "allowed" when it
    cannot tell.
    """


# The value types are msgspec Structs rather than frozen dataclasses: the Guard builds a
# query and its reservations on every stateful check, and a Struct costs a sixth as much.
# `Taken`, made on every check, is not tracked by the garbage collector (`gc=False`): it
# holds plain data that never refers back to it, so it can be in no reference cycle.


class CounterRef(msgspec.Struct, frozen=True):
    """One counter: a budget or limit (`counter_id`) for one value of its key path (`key`).

    `window_seconds=None` means per session: the counter never expires by time.
    """

    counter_id: str
    key: str
    window_seconds: int | None = None


class StateQuery(msgspec.Struct, frozen=True):
    """What one decision reads from the store.

    `calls=False` skips the loop-guard counts (a store may then report zeros)."""

    session_id: str
    counters: tuple[CounterRef, ...] = ()
    history_tools: tuple[str, ...] = ()
    labels: bool = True
    calls: bool = True


class HistoryEntry(msgspec.Struct, frozen=True):
    """One earlier allowed call: when it happened and the fields the policy records."""

    time: float
    fields: Mapping[str, object]


class SessionCalls(msgspec.Struct, frozen=True):
    """Loop-guard counts of a session: all tool calls, and tool calls since the last
    non-tool step (model input/output)."""

    tool_calls: int = 0
    consecutive_tool_calls: int = 0


_NO_CALLS = SessionCalls()


class StateSnapshot(msgspec.Struct, frozen=True):
    """The answer to a `StateQuery`.

    `usage` maps `(counter_id, key)` to the amount used in the current window, outstanding
    reservations included (`amount_of`: an `int` when whole, else a `Decimal`).  `history`
    maps each requested tool name to its past calls in this session, oldest first.
    """

    usage: Mapping[tuple[str, str], Amount] = {}
    labels: frozenset[str] = frozenset()
    history: Mapping[str, tuple[HistoryEntry, ...]] = {}
    calls: SessionCalls = _NO_CALLS


class Taken(msgspec.Struct, frozen=True, gc=False):
    """The answer to `Store.take`: a `StateSnapshot` read in the same atomic step as the
    reservation, and the reservation's outcome.

    `usage` covers the query's counters and every reserved counter, as they were *before*
    this reservation.  `token` is set when there were reservations and all fitted (settle
    or release it); `failed` names the first counter that would have overflowed (then
    nothing was added).  Both are None when nothing was to be reserved.
    """

    usage: Mapping[tuple[str, str], Amount] = {}
    labels: frozenset[str] = frozenset()
    history: Mapping[str, tuple[HistoryEntry, ...]] = {}
    calls: SessionCalls = _NO_CALLS
    token: str | None = None
    failed: str | None = None


class Reservation(msgspec.Struct, frozen=True):
    """Add `amount` to a counter, but only if the result stays `<= limit`.

    `limit=None` adds without checking (usage that some rule reads but nothing caps here).
    """

    counter_id: str
    key: str
    window_seconds: int | None
    amount: Amount
    limit: Amount | None = None

    def __post_init__(self) -> None:
        # A negative reservation would let one call buy headroom for another.
        if self.amount < 0:
            raise ValueError(f"reservation amount must not be negative: {self.amount}")


class ReserveResult(msgspec.Struct, frozen=True):
    """Outcome of `Store.reserve`: a token to settle with, or the counter that would overflow."""

    ok: bool
    token: str | None = None
    failed: str | None = None


@runtime_checkable
class Store(Protocol):
    """A state store.  Every method raises `StoreError` when the backend fails."""

    def take(self, query: StateQuery, reservations: Sequence[Reservation],
             now: float) -> Taken:
        """Read `query` and reserve `reservations` in one atomic step: one lock, one
        transaction or one script.  Every amount is added if all stay within their limits
        (reservations of one counter add up), else none is; the usage returned is from
        before the reservation, so a caller that decides on it decides as if it had read
        first and reserved after."""
        ...

    def read(self, query: StateQuery, now: float) -> StateSnapshot:
        """Usage of the requested counters, the session's labels, history and call counts
        (`take` with nothing to reserve)."""
        ...

    def reserve(self, reservations: Sequence[Reservation], now: float) -> ReserveResult:
        """Atomically add every amount if all stay within their limits, else add none
        (`take` with nothing to read)."""
        ...

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        """Replace reserved amounts by actual ones; counters absent from `actual` keep their
        reserved amount.  Unknown or already settled tokens are ignored."""
        ...

    def release(self, token: str, now: float) -> None:
        """Undo a reservation whose action did not run (settle every counter with zero)."""
        ...

    def add_labels(self, session_id: str, labels: Collection[str]) -> None:
        """Add labels to a session; labels are never removed."""
        ...

    def record_call(
        self, session_id: str, tool: str, fields: Mapping[str, object], now: float
    ) -> None:
        """Remember an allowed call and the fields the policy asks `previously` about."""
        ...

    def use_nonce(self, nonce: str, expires_at: float) -> bool:
        """True the first time a nonce is used, False on every later use."""
        ...

    def is_nonce_used(self, nonce: str) -> bool:
        """Whether a nonce was already used (without using it)."""
        ...

    def bump_session_calls(self, session_id: str, is_tool_call: bool) -> SessionCalls:
        """Count one agent step: a tool call increments both counts, any other step resets
        the consecutive count.  Returns the counts after the step."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


def to_units(amount: Amount) -> int:
    """Convert an amount to integer units of 10**-SCALE, rounding up."""
    if isinstance(amount, bool):
        raise TypeError("amount must be a Decimal or int, not bool")
    if isinstance(amount, int):
        return amount * _INT_UNIT
    found = _UNITS.get(amount) if type(amount) is Decimal else None
    if found is not None:
        return found
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise TypeError(f"amount must be a finite Decimal or int, got {amount!r}")
    with localcontext() as ctx:
        # Enough digits that scaling never rounds before the explicit ceiling below.
        ctx.prec = max(28, len(amount.as_tuple().digits) + SCALE + 2)
        units = int((amount * _UNIT).to_integral_value(rounding=ROUND_CEILING))
    if len(_UNITS) >= 4096:
        _UNITS.clear()
    # Equal decimals (0.5, 0.50) share an entry: they are the same number of units.
    _UNITS[amount] = units
    return units


def from_units(units: int) -> Decimal:
    """Convert integer units back to a `Decimal` (exact, trailing zeros stripped)."""
    whole, frac = divmod(abs(units), _INT_UNIT)
    text = str(whole)
    if frac:
        text += "." + str(frac).rjust(SCALE, "0").rstrip("0")
    return Decimal("-" + text if units < 0 else text)


def amount_of(units: int) -> Amount:
    """Units as the amount a store reports: an `int` when whole (call counts, whole costs;
    the policy compares it exactly as the equal `Decimal`), else an exact `Decimal`."""
    whole, frac = divmod(units, _INT_UNIT)
    return whole if not frac else from_units(units)


def bucket_of(window_seconds: int | None, now: float) -> int:
    """Index of the fixed, epoch-aligned window containing `now` (0 for per-session)."""
    if window_seconds is None:
        return 0
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    return math.floor(now / window_seconds)


def window_end(window_seconds: int | None, bucket: int) -> float | None:
    """When a window's counter expires (None for per-session counters)."""
    if window_seconds is None:
        return None
    return float((bucket + 1) * window_seconds)


# Recorded fields keep exact numbers: decimals go out as JSON numbers and come back as
# Decimal, so `previously call ... with {amount: 100}` compares exactly after a round trip.
_FIELDS_ENCODER = msgspec.json.Encoder(decimal_format="number")
_FIELDS_DECODER = msgspec.json.Decoder(dict[str, object], float_hook=Decimal)


def encode_fields(fields: Mapping[str, object]) -> bytes:
    """Encode recorded call fields as JSON (exact numbers)."""
    try:
        return _FIELDS_ENCODER.encode(dict(fields))
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValueError(f"call fields are not JSON-encodable: {exc}") from exc


def decode_fields(data: bytes | str) -> dict[str, object]:
    """Decode fields written by `encode_fields`."""
    return _FIELDS_DECODER.decode(data)
