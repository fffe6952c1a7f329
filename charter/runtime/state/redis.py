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

import json
import math
import secrets
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import msgspec
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

__all__ = ["RedisStore"]

# Windows and nonces expire this long after their end, so hosts whose clocks are a little
# behind Redis still see the window they think is current.
_GRACE_SECONDS = 60.0
_NO_CALLS = SessionCalls()
_JSON = msgspec.json.encode
# The take script's reply; Lua's cjson writes an empty list as `{}`, hence the dicts.
_Items = list[str] | dict[str, str]
_REPLY = msgspec.json.Decoder(tuple[int, _Items, _Items, _Items, list[_Items] | dict[str, str],
                                    _Items])
_NOTHING = StateQuery("", labels=False, calls=False)

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
# counters to read and `nv` counters to reserve.  ARGV[1]: JSON [record ttl ms, read labels
# (1/0), read call counts (1/0), nh, nr, then per reserved counter [amount units, limit units
# or "", ttl ms, ident]] (one argument, and one JSON reply below: encoding a dozen arguments
# and parsing nested replies cost the client more than the server's work).  Amounts stay
# decimal strings.  Returns JSON [failing reservation index or -1, usage read, usage of each
# reserved counter before the reservation, labels, history lists, call counts].
_TAKE = (
    _LUA_CMP
    + """
local a = cjson.decode(ARGV[1])
local nh, nr = a[4], a[5]
local nv = #KEYS - 3 - nh - nr
local read, before, labels, history, calls = {}, {}, {}, {}, {}
for i = 1, nr do read[i] = redis.call('GET', KEYS[3 + nh + i]) or '0' end
local failed, seen = -1, {}
for i = 1, nv do
  local r = a[5 + i]
  local key = KEYS[3 + nh + nr + i]
  if seen[key] == nil then seen[key] = redis.call('GET', key) or '0' end
  before[i] = seen[key]
  if failed < 0 then
    redis.call('INCRBY', key, r[1])
    redis.call('PEXPIRE', key, r[3])
    if r[2] ~= '' and cmp(redis.call('GET', key), r[2]) > 0 then
      for j = 1, i do
        redis.call('DECRBY', KEYS[3 + nh + nr + j], a[5 + j][1])
      end
      failed = i - 1
    end
  end
end
if failed < 0 and nv > 0 then
  for i = 1, nv do
    local r = a[5 + i]
    redis.call('RPUSH', KEYS[1], r[4], KEYS[3 + nh + nr + i], r[1])
  end
  redis.call('PEXPIRE', KEYS[1], a[1])
end
if a[2] == 1 then labels = redis.call('SMEMBERS', KEYS[2]) end
for i = 1, nh do history[i] = redis.call('LRANGE', KEYS[3 + i], 0, -1) end
if a[3] == 1 then
  calls = redis.call('HMGET', KEYS[3], 't', 'c')
  calls = {calls[1] or '0', calls[2] or '0'}
end
return cjson.encode({failed, read, before, labels, history, calls})
"""
)

# KEYS: reservation record.  ARGV: "zero" or "actual", then (ident, units) pairs.
# The record holds (ident, counter key, reserved units) triples.
_SETTLE = """
local rec = redis.call('LRANGE', KEYS[1], 0, -1)
if #rec == 0 then return 0 end
redis.call('DEL', KEYS[1])
local actual = {}
for i = 2, #ARGV, 2 do actual[ARGV[i]] = ARGV[i + 1] end
for i = 1, #rec, 3 do
  local new = actual[rec[i]]
  if ARGV[1] == 'zero' then new = '0' end
  -- A window that expired meanwhile is gone: recreating it would resurrect old usage.
  if new ~= nil and redis.call('EXISTS', rec[i + 1]) == 1 then
    redis.call('INCRBY', rec[i + 1], new)
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
        self._take = self._r.register_script(_TAKE)
        self._settle = self._r.register_script(_SETTLE)

    # -- Store API ---------------------------------------------------------------------

    def take(self, query: StateQuery, reservations: Sequence[Reservation],
             now: float) -> Taken:
        """See `Store.take`; one Lua script, so one round trip."""
        sid = query.session_id
        token = secrets.token_urlsafe(16) if reservations else ""
        history = query.history_tools
        keys = [self._key("r", token), self._key("l", sid), self._key("k", sid),
                *(self._key("h", sid, tool) for tool in history),
                *(self._counter_key(r.counter_id, r.key, r.window_seconds, now)
                  for r in query.counters)]
        args: list[object] = [self._reservation_ttl_ms, int(query.labels), int(query.calls),
                              len(history), len(query.counters)]
        for r in reservations:
            keys.append(self._counter_key(r.counter_id, r.key, r.window_seconds, now))
            end = window_end(r.window_seconds, bucket_of(r.window_seconds, now))
            ttl_ms = (self._session_ttl_ms if end is None
                      else math.ceil((end - now + _GRACE_SECONDS) * 1000))
            limit = "" if r.limit is None else str(to_units(r.limit))
            args.append((str(to_units(r.amount)), limit, ttl_ms, _ident(r.counter_id, r.key)))
        try:
            reply = self._take(keys=keys, args=[_JSON(args)])
            failed, read, before, labels, entries, calls = _REPLY.decode(reply)
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        except msgspec.DecodeError as exc:
            raise StoreError(f"Redis state store failed: unreadable reply ({exc})") from exc
        usage: dict[tuple[str, str], Amount] = {
            (ref.counter_id, ref.key): amount_of(int(units))
            for ref, units in zip(query.counters, read or (), strict=True)}
        for r, units in zip(reservations, before or (), strict=True):
            usage.setdefault((r.counter_id, r.key), amount_of(int(units)))
        return Taken(
            usage, frozenset(labels or ()),
            {tool: tuple(_decode_entry(e) for e in found or ())
             for tool, found in zip(history, entries or (), strict=True)},
            SessionCalls(int(calls[0]), int(calls[1])) if isinstance(calls, list) and calls
            else _NO_CALLS,
            token if reservations and failed < 0 else None,
            reservations[failed].counter_id if failed >= 0 else None)

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
        args: list[str] = ["actual"]
        for (cid, key), amount in actual.items():
            args += [_ident(cid, key), str(to_units(amount))]
        self._run_settle(token, args)

    def release(self, token: str, now: float) -> None:
        """See `Store.release`."""
        self._run_settle(token, ["zero"])

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
        self._r.close()

    # -- internals ---------------------------------------------------------------------

    def _key(self, kind: str, *parts: str) -> str:
        return self.prefix + kind + "".join(":" + _escape(p) for p in parts)

    def _counter_key(self, cid: str, key: str, window: int | None, now: float) -> str:
        bucket = "s" if window is None else f"{window}:{bucket_of(window, now)}"
        return self._key("c", cid, key) + ":" + bucket

    def _run_settle(self, token: str, args: list[str]) -> None:
        try:
            self._settle(keys=[self._key("r", token)], args=args)
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


def _ident(cid: str, key: str) -> str:
    return json.dumps([cid, key], ensure_ascii=False)


def _decode_entry(raw: bytes | str) -> HistoryEntry:
    data = raw.encode() if isinstance(raw, str) else raw
    at, _, fields = data.partition(b" ")
    return HistoryEntry(float(at), decode_fields(fields))
