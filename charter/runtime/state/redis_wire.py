"""One Lua script call per store operation, sent over the client's own kind of connection.

`Script.call` sends ``EVALSHA`` already packed (RESP) on a connection of its own small
pool and reads the reply with the connection's parser (hiredis when installed). It skips
redis-py's per-command machinery (the pool's lock and health probe, retry closures,
response callbacks, observability hooks), which on a loopback server cost as much as the
round trip itself. Connections are made as the client's pool makes them (same class and
settings: host, auth, TLS, timeouts, protocol); a client whose pool is of another kind
(blocking, sentinel, client-side cache) or a single-connection client goes through
redis-py's ordinary ``evalsha`` instead, so every client works and only the common one
is fast.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

__all__ = ["Script"]

_CRLF = b"\r\n"
# Every Script, so that a forked child forgets its parent's connections (checking the pid
# on every call would cost a system call each).
_SCRIPTS: weakref.WeakSet[Script] = weakref.WeakSet()


def _after_fork() -> None:
    for script in list(_SCRIPTS):
        script._idle = []  # the parent's sockets: not to be used, nor closed, here


os.register_at_fork(after_in_child=_after_fork)


class Script:
    """A Lua script of one client, called with ``EVALSHA`` (loaded again on ``NOSCRIPT``)."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._head = b"$7\r\nEVALSHA\r\n$40\r\n" + self.sha.encode() + _CRLF
        pool = client.connection_pool
        # Only a plain pool's connections can be made here as the pool makes them.
        self._pool: Any = (
            pool
            if (
                type(pool) is redis.ConnectionPool
                and getattr(pool, "cache", None) is None
                and getattr(client, "connection", None) is None
            )
            else None
        )
        self._idle: list[Any] = []  # connections not in use (list.pop/append: atomic)
        _SCRIPTS.add(self)

    def pack(self, keys: Sequence[bytes], args: Sequence[bytes]) -> tuple[bytes, bytes]:
        """The command for `keys` and `args` as RESP (an array of bulk strings: EVALSHA,
        sha, number of keys, keys, arguments), split where its first key goes: the first
        key is left out, so that a caller can pack once and send with first keys that
        vary (`call`). Counts the first key."""
        count = b"%d" % (len(keys) + 1)
        head = b"".join(
            (
                b"*%d\r\n" % (len(keys) + len(args) + 4),
                self._head,
                b"$%d\r\n%b\r\n" % (len(count), count),
            )
        )
        return head, b"".join([b"$%d\r\n%b\r\n" % (len(p), p) for p in (*keys, *args)])

    def call(
        self,
        first: bytes,
        packed: tuple[bytes, bytes],
        keys: Sequence[bytes],
        args: Sequence[bytes],
    ) -> Any:
        """Run the script with keys `first` and `keys`, arguments `args` (`packed` is
        `pack(keys, args)`); its reply as the parser gives it (bytes, ints, lists).
        Raises redis-py's errors (`redis.RedisError`)."""
        if self._pool is None:
            return self.client.evalsha(self.sha, len(keys) + 1, first, *keys, *args)
        command = b"".join((packed[0], b"$%d\r\n" % len(first), first, _CRLF, packed[1]))
        try:
            return self._send(command)
        except NoScriptError:
            # The server lost its scripts (restart, SCRIPT FLUSH): load it and send again.
            self.client.script_load(self.source)
            return self._send(command)

    def _send(self, packed: bytes) -> Any:
        idle = self._idle
        try:
            conn, reused = idle.pop(), True  # one thread's alone: pop is atomic
        except IndexError:
            conn, reused = self._pool.connection_class(**self._pool.connection_kwargs), False
        try:
            try:
                conn.send_packed_command((packed,), check_health=False)
                reply = conn.read_response(disable_decoding=True)
            except RedisConnectionError:
                if not reused:
                    raise
                # An idle connection the server has dropped (restart, idle timeout): try
                # once on a new one. (Had the server run the script and the reply been
                # lost, a reservation runs twice: it over-counts, the safe side, until its
                # record expires.)
                conn.disconnect()
                conn = self._pool.connection_class(**self._pool.connection_kwargs)
                conn.send_packed_command((packed,), check_health=False)
                reply = conn.read_response(disable_decoding=True)
        except redis.ResponseError:
            idle.append(conn)  # an error reply leaves the connection in step
            raise
        except BaseException:
            conn.disconnect()
            raise
        idle.append(conn)
        return reply

    def close(self) -> None:
        """Disconnect the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()
