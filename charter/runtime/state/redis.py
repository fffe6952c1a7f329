"""Redis state store: shared by many hosts; atomic check-and-add through Lua scripts.

Counters are Redis integers of units (see `base.SCALE`) changed only with INCRBY/DECRBY, so
all arithmetic is exact 64-bit integer arithmetic done by the server; the scripts compare
values as decimal strings and never as Lua numbers (which are doubles).  Windowed counters
live in one key per window and expire shortly after it; session-scoped keys expire after
`session_ttl` seconds without writes.

Every key of one store starts with `prefix`.  A Redis Cluster needs all keys of a script in
one slot: use a hash-tagged prefix such as ``"{charter}:"``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import secrets
import time
import weakref
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import redis

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
from .redis_wire import Script

__all__ = ["RedisStore"]

# Windows and nonces expire this long after their end, so hosts whose clocks are a little
# behind Redis still see the window they think is current.
_GRACE_SECONDS = 60.0
_NO_CALLS = SessionCalls()
_NOTHING = StateQuery("", labels=False, calls=False)
_NO_LABELS: frozenset[str] = frozenset()
_NO_HISTORY: Mapping[str, tuple[HistoryEntry, ...]] = MappingProxyType({})
_IDENTS: dict[tuple[str, str], bytes] = {}
_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()

# Compare two canonical integer strings exactly (Lua numbers would round above 2**53).
_LUA_CMP = """
local function cmp(a, b)
  if a == b then return 0 end
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then if na then return -1 else return 1 end end
  local r
  if #a ~= #b then r = (#a < #b) and -1 or 1 else r = (a < b) and -1 or 1 end
  if na then r = -r end
  return r
end
"""

# One check's read and reservation in one script: one round trip, atomic on the server.
# KEYS: reservation record, labels set, call counts hash, then `nh` history lists, `nr`
# counters to read and `nv` counters to reserve.  ARGV: record ttl ms, read labels (1/0),
# read call counts (1/0), nh, nr, then per reserved counter: amount units, limit units or
# "", expiry (> 0: PEXPIREAT in ms when the counter starts from zero, a window's end being
# fixed; < 0: PEXPIRE of -expiry ms on every write, for per-session counters), ident.
# Amounts stay decimal strings.  Replies with one flat array (no JSON either way): the
# failing reservation's index or -1, the usage of each counter read, of each reserved
# counter before the reservation, the number of labels and the labels, for each history
# list its length and entries, and the two call counts when asked.  The reservation record
# is one JSON string: (ident, counter key, units) per counter.  A typical check is three
# commands (INCRBY, SET, SMEMBERS): each call out of Lua costs more than the command.
_TAKE = (
    _LUA_CMP
    + """
-- Lua numbers are doubles: exact for integers below 2^53 (15 digits are always below it).
local BIG = 9007199254740992
local function small(n) return n < BIG and n > -BIG end
-- The usage before adding `amt`, which made it `after`.
local function before_of(after, amt, key)
  if small(after) and #amt < 16 then return after - tonumber(amt) end
  redis.call('DECRBY', key, amt)
  local before = redis.call('GET', key)
  redis.call('INCRBY', key, amt)
  return before
end
local function over(after, key, limit)
  if small(after) then
    if #limit < 16 then return after > tonumber(limit) end
    -- 17 digits or more: at least 10^16, above any small number.
    if #limit > 16 and string.byte(limit, 1) ~= 45 then return false end
  end
  return cmp(redis.call('GET', key), limit) > 0
end
local nh, nr = tonumber(ARGV[4]), tonumber(ARGV[5])
local base = 3 + nh + nr
local nv = #KEYS - base
local out = {-1}
for i = 1, nr do out[i + 1] = redis.call('GET', KEYS[3 + nh + i]) or '0' end
local failed, seen = -1, {}
for i = 1, nv do
  local j = 2 + 4 * i
  local key, amt = KEYS[base + i], ARGV[j]
  local before = seen[key]
  if failed < 0 then
    local after = redis.call('INCRBY', key, amt)
    if before == nil then
      before = before_of(after, amt, key)
      seen[key] = before
    end
    local expiry = tonumber(ARGV[j + 2])
    if expiry < 0 then
      redis.call('PEXPIRE', key, -expiry)
    elseif before == 0 or before == '0' then
      redis.call('PEXPIREAT', key, expiry)
    end
    if ARGV[j + 1] ~= '' and over(after, key, ARGV[j + 1]) then
      for k = 1, i do redis.call('DECRBY', KEYS[base + k], ARGV[2 + 4 * k]) end
      failed = i - 1
    end
  elseif before == nil then
    before = redis.call('GET', key) or '0'
    seen[key] = before
  end
  out[#out + 1] = before
end
if failed < 0 and nv > 0 then
  local rec = {}
  for i = 1, nv do
    local j = 2 + 4 * i
    rec[#rec + 1] = ARGV[j + 3]
    rec[#rec + 1] = KEYS[base + i]
    rec[#rec + 1] = ARGV[j]
  end
  redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ARGV[1])
end
out[1] = failed
if ARGV[2] == '1' then
  local labels = redis.call('SMEMBERS', KEYS[2])
  out[#out + 1] = #labels
  for i = 1, #labels do out[#out + 1] = labels[i] end
else
  out[#out + 1] = 0
end
for i = 1, nh do
  local entries = redis.call('LRANGE', KEYS[3 + i], 0, -1)
  out[#out + 1] = #entries
  for k = 1, #entries do out[#out + 1] = entries[k] end
end
if ARGV[3] == '1' then
  local calls = redis.call('HMGET', KEYS[3], 't', 'c')
  out[#out + 1] = calls[1] or '0'
  out[#out + 1] = calls[2] or '0'
end
return out
"""
)

# KEYS: reservation record.  ARGV: "zero" or "actual", then (ident, units) pairs.
# The record holds (ident, counter key, reserved units) triples: a JSON string, or a list
# as versions before 2026-12 wrote it (their reservations still settle).
_SETTLE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
local rec
if kind == 'string' then
  rec = cjson.decode(redis.call('GET', KEYS[1]))
elseif kind == 'list' then
  rec = redis.call('LRANGE', KEYS[1], 0, -1)
else
  return 0
end
redis.call('DEL', KEYS[1])
local actual = {}
for i = 2, #ARGV, 2 do actual[ARGV[i]] = ARGV[i + 1] end
for i = 1, #rec, 3 do
  local new = actual[rec[i]]
  if ARGV[1] == 'zero' then new = '0' end
  -- A window that expired meanwhile is gone: recreating it would resurrect old usage.
  if new ~= nil and new ~= rec[i + 2] and redis.call('EXISTS', rec[i + 1]) == 1 then
    if new ~= '0' then redis.call('INCRBY', rec[i + 1], new) end
    redis.call('DECRBY', rec[i + 1], rec[i + 2])
  end
end
return 1
"""


class RedisStore:
    """A `Store` in Redis, safe across threads, processes and hosts.

    `client_or_url` is a `redis.Redis` client or a ``redis://`` URL.  `reservation_ttl` is how
    long an unsettled reservation can still be settled; after that its amount simply stays
    counted (fail-safe).
    """

    def __init__(
        self,
        client_or_url: redis.Redis | str,
        prefix: str = "charter:",
        *,
        session_ttl: float = 7 * 86400,
        reservation_ttl: float = 86400,
        timeout: float = 5.0,
    ) -> None:
        if isinstance(client_or_url, str):
            client_or_url = redis.Redis.from_url(
                client_or_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self._r = client_or_url
        self.prefix = prefix
        self._session_ttl_ms = int(session_ttl * 1000)
        self._reservation_ttl_ms = int(reservation_ttl * 1000)
        self._take = Script(self._r, _TAKE)
        self._reservation_ttl = b"%d" % self._reservation_ttl_ms
        self._session_expiry = b"%d" % -self._session_ttl_ms
        # (query, reservations, their windows) -> the take's command (`take`); cleared when
        # full.
        self._commands: dict[tuple[object, ...], tuple[tuple[bytes, bytes], list[bytes],
                                                       list[bytes]]] = {}
        # A token is URL-safe text and digits: `_escape` leaves it as it is.
        self._record_prefix = (prefix + "r:").encode()
        # Tokens need only be unique: a random part per store (and per forked child) and a
        # count, which costs less than random bytes per reservation.
        self._token_base = secrets.token_urlsafe(12) + "."
        self._token_seq = itertools.count(1)
        _STORES.add(self)
        self._settle = Script(self._r, _SETTLE)

    # -- Store API ---------------------------------------------------------------------

    def take(self, query: StateQuery, reservations: Sequence[Reservation],
             now: float) -> Taken:
        """See `Store.take`; one Lua script, so one round trip."""
        token = self._new_token() if reservations else ""
        # The command but for the reservation record's key is the same for every check of a
        # session's kind of call within a window: packed once.
        if len(reservations) == 1 and not query.counters:
            shape: tuple[object, ...] = (
                query, reservations[0], bucket_of(reservations[0].window_seconds, now))
        else:
            shape = (query, *reservations,
                     *[bucket_of(c.window_seconds, now) for c in query.counters],
                     *[bucket_of(r.window_seconds, now) for r in reservations])
        command = self._commands.get(shape)
        if command is None:
            command = self._command(query, reservations, now)
            if len(self._commands) >= 4096:
                self._commands.clear()
            self._commands[shape] = command
        packed, keys, args = command
        try:
            reply = self._take.call(self._record_prefix + token.encode(), packed, keys, args)
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        counters = query.counters
        try:
            failed = reply[0]
            at = 1
            usage: dict[tuple[str, str], Amount] = {}
            for ref in counters:
                usage[(ref.counter_id, ref.key)] = amount_of(int(reply[at]))
                at += 1
            for r in reservations:
                counter = (r.counter_id, r.key)
                if counter not in usage:
                    usage[counter] = amount_of(int(reply[at]))
                at += 1
            n = reply[at]
            labels = frozenset([_text(x) for x in reply[at + 1:at + 1 + n]]) if n else _NO_LABELS
            at += 1 + n
            history: Mapping[str, tuple[HistoryEntry, ...]] = _NO_HISTORY
            if query.history_tools:
                history = {}
                for tool in query.history_tools:
                    n = reply[at]
                    history[tool] = tuple([_decode_entry(e) for e in reply[at + 1:at + 1 + n]])
                    at += 1 + n
            calls = (SessionCalls(int(reply[at]), int(reply[at + 1])) if query.calls
                     else _NO_CALLS)
            if at + (2 if query.calls else 0) != len(reply):
                raise ValueError(f"{len(reply)} items")
            return Taken(usage, labels, history, calls,
                         token if reservations and failed < 0 else None,
                         reservations[failed].counter_id if failed >= 0 else None)
        except (TypeError, ValueError, IndexError) as exc:
            raise StoreError(f"Redis state store failed: unreadable reply ({exc})") from exc

    def read(self, query: StateQuery, now: float) -> StateSnapshot:
        """See `Store.read`; one round trip."""
        got = self.take(query, (), now)
        return StateSnapshot(got.usage, got.labels, got.history, got.calls)

    def reserve(self, reservations: Sequence[Reservation], now: float) -> ReserveResult:
        """See `Store.reserve`; one Lua script."""
        got = self.take(_NOTHING, reservations, now)
        return ReserveResult(got.failed is None, got.token, got.failed)

    def settle(self, token: str, actual: Mapping[tuple[str, str], Amount], now: float) -> None:
        """See `Store.settle`; one Lua script, idempotent."""
        args = [b"actual"]
        for (cid, key), amount in actual.items():
            args += (_ident(cid, key), _units(amount))
        self._run_settle(token, args)

    def release(self, token: str, now: float) -> None:
        """See `Store.release`."""
        self._run_settle(token, [b"zero"])

    def add_labels(self, session_id: str, labels: Collection[str]) -> None:
        """See `Store.add_labels`."""
        if not labels:
            return
        key = self._key("l", session_id)
        self._pipeline(lambda p: (p.sadd(key, *labels), p.pexpire(key, self._session_ttl_ms)))

    def record_call(
        self, session_id: str, tool: str, fields: Mapping[str, object], now: float
    ) -> None:
        """See `Store.record_call`; keeps the last `HISTORY_LIMIT` calls per tool."""
        entry = repr(float(now)).encode() + b" " + encode_fields(fields)
        key = self._key("h", session_id, tool)
        self._pipeline(
            lambda p: (
                p.rpush(key, entry),
                p.ltrim(key, -HISTORY_LIMIT, -1),
                p.pexpire(key, self._session_ttl_ms),
            )
        )

    def use_nonce(self, nonce: str, expires_at: float) -> bool:
        """See `Store.use_nonce`."""
        ttl_ms = math.ceil((max(expires_at - time.time(), 0.0) + _GRACE_SECONDS) * 1000)
        try:
            return bool(self._r.set(self._key("n", nonce), b"1", nx=True, px=ttl_ms))
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    def is_nonce_used(self, nonce: str) -> bool:
        """See `Store.is_nonce_used`."""
        try:
            return bool(self._r.exists(self._key("n", nonce)))
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    def bump_session_calls(self, session_id: str, is_tool_call: bool) -> SessionCalls:
        """See `Store.bump_session_calls`."""
        key = self._key("k", session_id)

        def ops(p: Any) -> None:
            if is_tool_call:
                p.hincrby(key, "t", 1)
                p.hincrby(key, "c", 1)
            else:
                p.hincrby(key, "t", 0)
                p.hset(key, "c", 0)
            p.pexpire(key, self._session_ttl_ms)

        total, consecutive, *_ = self._pipeline(ops)
        return SessionCalls(int(total), int(consecutive) if is_tool_call else 0)

    def close(self) -> None:
        """Close the client's connections."""
        self._take.close()
        self._settle.close()
        self._r.close()

    # -- internals ---------------------------------------------------------------------

    def _key(self, kind: str, *parts: str) -> str:
        return self.prefix + kind + "".join(":" + _escape(p) for p in parts)

    def _new_token(self) -> str:
        return self._token_base + str(next(self._token_seq))

    def _command(self, query: StateQuery, reservations: Sequence[Reservation], now: float
                 ) -> tuple[tuple[bytes, bytes], list[bytes], list[bytes]]:
        """The take script's keys but the record's, and arguments: packed, and as they are."""
        sid = query.session_id
        history = query.history_tools
        keys = [self._key("l", sid).encode(), self._key("k", sid).encode(),
                *[self._key("h", sid, tool).encode() for tool in history],
                *[self._counter_key(r.counter_id, r.key, r.window_seconds, now)
                  for r in query.counters]]
        args = [self._reservation_ttl, b"1" if query.labels else b"0",
                b"1" if query.calls else b"0", b"%d" % len(history),
                b"%d" % len(query.counters)]
        for r in reservations:
            window = r.window_seconds
            keys.append(self._counter_key(r.counter_id, r.key, window, now))
            args += (_units(r.amount), b"" if r.limit is None else _units(r.limit),
                     self._session_expiry if window is None else _expire_at(window, now),
                     _ident(r.counter_id, r.key))
        return self._take.pack(keys, args), keys, args

    def _counter_key(self, cid: str, key: str, window: int | None, now: float) -> bytes:
        bucket = "s" if window is None else f"{window}:{bucket_of(window, now)}"
        return (self._key("c", cid, key) + ":" + bucket).encode()

    def _run_settle(self, token: str, args: list[bytes]) -> None:
        try:
            self._settle.call(self._key("r", token).encode(), self._settle.pack((), args), (),
                              args)
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    def _pipeline(self, ops: Any) -> list[Any]:
        try:
            pipe = self._r.pipeline(transaction=True)
            ops(pipe)
            result: list[Any] = pipe.execute()
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return result

    def _error(self, exc: Exception) -> StoreError:
        return StoreError(f"Redis state store failed: {type(exc).__name__}: {exc}")


def _escape(part: str) -> str:
    # Keeps key parts unambiguous: a ':' inside an id cannot fake a boundary.
    return part.replace("%", "%25").replace(":", "%3A")


def _ident(cid: str, key: str) -> bytes:
    """How a reservation record names a counter for `settle` (as every earlier version)."""
    found = _IDENTS.get((cid, key))
    if found is None:
        if len(_IDENTS) >= 4096:
            _IDENTS.clear()
        found = _IDENTS[(cid, key)] = json.dumps([cid, key], ensure_ascii=False).encode()
    return found


def _units(amount: Amount) -> bytes:
    return b"%d" % to_units(amount)


def _expire_at(window: int, now: float) -> bytes:
    """PEXPIREAT of a window's counter: its end and the grace, in ms since the epoch."""
    end = window_end(window, bucket_of(window, now))
    assert end is not None  # a window has an end
    return b"%d" % math.ceil((end + _GRACE_SECONDS) * 1000)


def _text(raw: bytes | str) -> str:
    return raw.decode() if type(raw) is bytes else raw  # type: ignore[return-value]


def _after_fork() -> None:
    # A child that kept counting from its parent's count would make the parent's tokens.
    for store in list(_STORES):
        store._token_base = secrets.token_urlsafe(12) + "."


def _decode_entry(raw: bytes | str) -> HistoryEntry:
    data = raw.encode() if isinstance(raw, str) else raw
    at, _, fields = data.partition(b" ")
    return HistoryEntry(float(at), decode_fields(fields))


os.register_at_fork(after_in_child=_after_fork)
