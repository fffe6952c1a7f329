"""Kill switches shared by every process over Redis (L-X5, L-S3's scheme).

State: `{prefix}control:switches` (a hash: switch id -> JSON) and `{prefix}control:seq`
(only increases). A write changes one switch, bumps `seq` and publishes it on
`{prefix}events` in one Lua script, so concurrent writers never lose each other's switches.
Each `RedisControl` attached to a `Live` runs a thread subscribed to the channel; on a
message, on (re)subscribing, and every `poll_interval_s` as a backstop (pub/sub is
fire-and-forget: a subscriber disconnected misses what is published meanwhile), it reads
`seq` and the switches in one transaction and applies them when `seq` is newer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from charter.runtime.live import KillSwitch, Live

if TYPE_CHECKING:
    import redis

__all__ = ["RedisControl", "follow_channel"]

_LOG = logging.getLogger("charter.live")

# KEYS: switches hash, seq, channel. ARGV: op ("kill" | "unkill"), id, switch JSON.
_WRITE = """
if ARGV[1] == 'kill' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[2])
end
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', KEYS[3], cjson.encode({kind = 'control', seq = seq}))
return seq
"""


class RedisControl:
    """Kill switches in Redis under `prefix`; `attach(live)` keeps a handle in sync.

    Without a `Live` it is a writer only (what `charter kill --redis` uses)."""

    def __init__(
        self,
        client_or_url: redis.Redis | str,
        prefix: str = "charter:",
        poll_interval_s: float = 1.0,
        timeout: float = 2.0,
    ) -> None:
        import redis as redis_mod

        if isinstance(client_or_url, str):
            client_or_url = redis_mod.Redis.from_url(
                client_or_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self._r: Any = client_or_url  # redis-py is partly untyped
        self.prefix = prefix
        self.poll_interval_s = poll_interval_s
        self.keys = (f"{prefix}control:switches", f"{prefix}control:seq", f"{prefix}events")
        self._write = self._r.register_script(_WRITE)
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()  # set once the first state was read
        self.errors = 0
        self.name = f"redis:{prefix}"
        self.last_sync: float | None = None  # when the state was last read

    # ── writing ──────────────────────────────────────────────────────────────

    def kill(self, switch: KillSwitch) -> int:
        """Store one switch everywhere; returns the new sequence number."""
        return int(
            self._write(keys=self.keys, args=["kill", switch.id, json.dumps(switch.to_dict())])
        )

    def unkill(self, switch_id: str) -> int:
        return int(self._write(keys=self.keys, args=["unkill", switch_id, ""]))

    def read(self) -> tuple[int, list[KillSwitch]]:
        """(seq, switches) as one consistent read; a malformed entry is skipped (logged)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.get(self.keys[1])
        pipe.hgetall(self.keys[0])
        raw_seq, raw = pipe.execute()
        switches = []
        for sid, data in (raw or {}).items():
            try:
                switches.append(KillSwitch.from_dict(json.loads(data)))
            except ValueError as err:
                _LOG.error("ignoring kill switch %r in Redis: %s", sid, err)
        return int(raw_seq or 0), switches

    # ── following ────────────────────────────────────────────────────────────

    def attach(self, live: Live, start: bool = True) -> RedisControl:
        """Make `live` write its kills here and follow everyone else's."""
        self._live = live
        live.remote = self
        live.on_close(self.close)
        if start:
            self._thread = threading.Thread(target=self._run, name="charter-control", daemon=True)
            self._thread.start()
        return self

    def sync(self) -> bool:
        """Read the state and apply it if newer; push switches made here that it lacks."""
        live = self._live
        if live is None:
            return False
        seq, switches = self.read()
        self.last_sync = time.time()
        live.reachable("control")
        applied = live.apply_control(switches, seq)
        self.synced.set()
        live.push_pending((s.id for s in switches), self.kill)  # writes that failed earlier
        return applied

    def _run(self) -> None:
        follow_channel(self._r, self.keys[2], self._stop, self.poll_interval_s, self.sync,
                       self._lost, f"control plane {self.prefix}")

    def _lost(self, err: Exception, unreachable: bool) -> None:
        self.errors += 1
        if unreachable and self._live is not None:
            self._live.unreachable("control", f"{self.name}: {err}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval_s + 5)


def follow_channel(r: Any, channel: str, stop: threading.Event, poll_interval_s: float,
                   sync: Callable[[], object], lost: Callable[[Exception, bool], None], what: str,
                   tick: Callable[[], None] | None = None) -> None:
    """Follow a Redis-held state until `stop`: subscribe to `channel`, `sync` (what was
    published before the subscription took), then `sync` again on every message and at
    every `poll_interval_s` without one (pub/sub is fire-and-forget: a message sent while
    disconnected is lost, the backstop poll is not), `tick` after each. A Redis or socket
    error is `lost(err, True)` (Redis is unreachable) and a reconnect after at most 0.2 s;
    anything else is logged, `lost(err, False)`, and retried after a poll interval: the
    thread never dies."""
    import redis as redis_mod

    while not stop.is_set():
        pubsub: Any = None
        try:
            pubsub = r.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel)
            sync()
            while not stop.is_set():
                pubsub.get_message(timeout=poll_interval_s)
                sync()  # a message or the poll's timeout: read the state either way
                if tick is not None:
                    tick()
        except (redis_mod.RedisError, OSError) as err:
            _LOG.warning("%s: %s; retrying", what, err)
            lost(err, True)
            if tick is not None:
                tick()
            stop.wait(min(poll_interval_s, 0.2))
        except Exception as err:  # noqa: BLE001 - keep following whatever happens
            _LOG.exception("%s", what)
            lost(err, False)
            stop.wait(poll_interval_s)
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):  # closing a broken connection
                    pubsub.close()
