"""Redis as the policy source of every host (L-S3): bundles pushed under a key, the change
announced on pub/sub, a backstop poll.

Keys: `{prefix}bundle:{bundle digest}` holds a bundle's bytes (the newest `keep`, default
5, listed in `{prefix}bundles`); `{prefix}active` holds `{"seq", "digest", "bundle",
"source_digest", "key_id", "actor", "at"}`; `{prefix}active:seq` is the sequence number,
which only increases; `{prefix}events` is the channel (shared with `RedisControl`)
announcing `{"kind": "active", "seq"}`. A push stores the bundle, trims the old ones, bumps
`seq`, writes `active` and publishes in one Lua script, so hosts never see an `active`
naming a bundle that is not there yet.

A following host applies `active` when its `seq` exceeds the last one it applied — on a
message, and every `poll_interval_s` as a backstop (pub/sub is fire-and-forget: a
subscriber that is disconnected misses what is published meanwhile) — so a delayed message
or an older `active` written back never rolls a host back. Each bundle is verified
(`runtime.bundle.verify_bundle`) before it is served; a refused one leaves the active
version serving. On Redis Cluster use a hash-tagged prefix (`{charter}:`): the scripts name
bundle keys they compute, which must share the prefix's slot.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.runtime.bundle import BundleError, manifest_of
from charter.runtime.changes import ChangeLog
from charter.runtime.live import Live
from charter.runtime.live_bundle import BundleFollower, bundle_digest
from charter.runtime.live_redis import follow_channel

if TYPE_CHECKING:
    import redis

__all__ = ["RedisSource", "StreamedChangeLog", "follow_redis", "manifest_of"]

_LOG = logging.getLogger("charter.live")
KEEP = 5
#: change records kept in the stream `{prefix}changes` (approximately: MAXLEN ~)
STREAM_LENGTH = 10000

# KEYS: bundle key, active, events, bundles list, seq, changes stream, epoch.
# ARGV: bytes, bundle digest, policy digest, source digest, key id, actor, at, keep, prefix,
# change stream length, a fresh epoch. The epoch changes exactly when the seq counter is
# created anew (a flushed or replaced Redis): hosts then know the count restarted.
_PUSH = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LREM', KEYS[4], 0, ARGV[2])
redis.call('LPUSH', KEYS[4], ARGV[2])
while redis.call('LLEN', KEYS[4]) > tonumber(ARGV[8]) do
  local old = redis.call('RPOP', KEYS[4])
  redis.call('DEL', ARGV[9] .. 'bundle:' .. old)
end
if redis.call('EXISTS', KEYS[5]) == 0 or redis.call('EXISTS', KEYS[7]) == 0 then
  redis.call('SET', KEYS[7], ARGV[11])
end
local epoch = redis.call('GET', KEYS[7])
local seq = redis.call('INCR', KEYS[5])
local active = cjson.encode({seq = seq, epoch = epoch, digest = ARGV[3], bundle = ARGV[2],
  source_digest = ARGV[4], key_id = ARGV[5], actor = ARGV[6], at = tonumber(ARGV[7])})
redis.call('SET', KEYS[2], active)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[10], '*', 'action', 'push', 'record', active)
redis.call('PUBLISH', KEYS[3], cjson.encode({kind = 'active', seq = seq}))
return seq
"""

# KEYS: active. ARGV: prefix. Returns {active JSON or false, bundle bytes or false}: one
# consistent read, so a push between the two GETs cannot pair a state with another bundle.
_READ = """
local a = redis.call('GET', KEYS[1])
if not a then return {false, false} end
local ok, st = pcall(cjson.decode, a)
if not ok or type(st) ~= 'table' or type(st.bundle) ~= 'string' then return {a, false} end
return {a, redis.call('GET', ARGV[1] .. 'bundle:' .. st.bundle)}
"""


class StreamedChangeLog(ChangeLog):
    """A change log that also appends each record to a Redis stream (`XADD`, trimmed to
    about `STREAM_LENGTH`), as `{"action", "host", "record"}`. The file is written first;
    a stream that cannot be reached loses its copy, never the change."""

    def __init__(self, path: str | os.PathLike[str] | None, client: Any, stream: str) -> None:
        self._local = path is not None
        super().__init__(path if path is not None else os.devnull, fsync=path is not None)
        self._r = client
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        if self._local:
            super().write(record)
        try:
            self._r.xadd(
                self.stream,
                {
                    "action": str(record.get("action") or ""),
                    "host": str(record.get("host") or ""),
                    "record": json.dumps(record, default=str, separators=(",", ":")),
                },
                maxlen=STREAM_LENGTH,
                approximate=True,
            )
        except Exception as err:  # noqa: BLE001 - the stream is a copy; the change stands
            _LOG.warning("cannot append to %s: %s", self.stream, err)


class RedisSource:
    """Bundles in Redis under `prefix`: `push` (what `charter push` runs) and, with
    `follow(...)` or `attach(follower)`, a thread keeping a `Live` handle on the active one.

    `client_or_url`: a `redis.Redis` (not decoding responses: bundles are bytes) or a URL."""

    def __init__(
        self,
        client_or_url: redis.Redis | str,
        prefix: str = "charter:",
        poll_interval_s: float = 1.0,
        timeout: float = 2.0,
        keep: int = KEEP,
    ) -> None:
        import redis as redis_mod

        if isinstance(client_or_url, str):
            client_or_url = redis_mod.Redis.from_url(
                client_or_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        r: Any = client_or_url  # redis-py is partly untyped
        pool = getattr(r, "connection_pool", None)
        if getattr(pool, "connection_kwargs", {}).get("decode_responses"):
            raise ValueError("RedisSource needs a client without decode_responses (bytes)")
        if keep < 1:
            raise ValueError("keep at least one bundle")
        self._r = r
        self.prefix = prefix
        self.poll_interval_s = poll_interval_s
        self.keep = keep
        self.active_key = f"{prefix}active"
        self.channel = f"{prefix}events"
        self.changes_key = f"{prefix}changes"
        self._push = r.register_script(_PUSH)
        self._read = r.register_script(_READ)
        self.follower: BundleFollower | None = None
        self.seq = 0  # the last `active` seq applied (or refused) here
        self.epoch: str | None = None  # the epoch that seq counts in
        self._missing: int | None = None  # a seq whose bundle was absent (logged once)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()
        self.errors = 0

    # ── writing ──────────────────────────────────────────────────────────────

    def push(self, data: bytes, *, actor: str = "api") -> tuple[int, str]:
        """Store a bundle and make it active everywhere; (new seq, bundle digest). The
        manifest is read for the record only: every host verifies the bundle itself."""
        manifest = manifest_of(data)
        digest = bundle_digest(data)
        seq = self._push(
            keys=[
                f"{self.prefix}bundle:{digest}",
                self.active_key,
                self.channel,
                f"{self.prefix}bundles",
                f"{self.prefix}active:seq",
                self.changes_key,
                f"{self.prefix}active:epoch",
            ],
            args=[
                data,
                digest,
                str(manifest.get("policy_digest") or ""),
                str(manifest.get("source_digest") or ""),
                str(manifest.get("key_id") or ""),
                actor,
                repr(time.time()),
                self.keep,
                self.prefix,
                STREAM_LENGTH,
                uuid.uuid4().hex[:16],
            ],
        )
        return int(seq), digest

    def kept(self) -> list[dict[str, Any]]:
        """The bundles kept in Redis, newest first: `bundle` (its digest), `active`, and
        from its manifest `digest`, `source_digest`, `key_id`, `builder`, `built_at`."""
        active, _ = self.read()
        current = active.get("bundle") if active else None
        out = []
        for raw in self._r.lrange(f"{self.prefix}bundles", 0, -1):
            digest = raw.decode() if isinstance(raw, bytes) else str(raw)
            data = self._r.get(f"{self.prefix}bundle:{digest}")
            row: dict[str, Any] = {"bundle": digest, "active": digest == current}
            if data is not None:
                try:
                    m = manifest_of(data)
                except BundleError as err:
                    row["error"] = str(err)
                else:
                    for k in ("policy_digest", "source_digest", "key_id", "builder", "built_at"):
                        row["digest" if k == "policy_digest" else k] = m.get(k)
            out.append(row)
        return out

    def activate(self, to: str | None = None, *, actor: str = "api") -> tuple[int, str]:
        """Make a kept bundle active again (OPA's "re-serve an older bundle"): `to` is its
        bundle digest or policy digest, or a unique prefix of one; None is the kept bundle
        before the active one (a rollback). It is pushed again: a new, higher seq, so every
        host verifies and applies it. Raises ValueError when no kept bundle matches."""
        kept = self.kept()
        if to is None:
            at = next((i for i, k in enumerate(kept) if k["active"]), -1)
            older = kept[at + 1 :] if at >= 0 else []
            if not older:
                raise ValueError(f"no kept bundle before the active one under {self.prefix}")
            chosen = older[0]
        else:
            found = [
                k
                for k in kept
                if str(k["bundle"]).startswith(to) or str(k.get("digest") or "").startswith(to)
            ]
            if len(found) != 1:
                names = ", ".join(f"{k['bundle']} ({k.get('digest')})" for k in kept) or "none"
                why = "matches no" if not found else "matches more than one"
                raise ValueError(f"{to!r} {why} kept bundle; kept: {names}")
            chosen = found[0]
        data = self._r.get(f"{self.prefix}bundle:{chosen['bundle']}")
        if data is None:
            raise ValueError(f"bundle {chosen['bundle']} is no longer kept")
        return self.push(data, actor=actor)

    def read(self) -> tuple[dict[str, Any] | None, bytes | None]:
        """(active state, its bundle's bytes), read together; (None, None) before any push."""
        raw, data = self._read(keys=[self.active_key], args=[self.prefix])
        if raw is None:
            return None, None
        try:
            active = json.loads(raw)
        except ValueError:
            active = None
        if not isinstance(active, dict):
            raise ValueError(f"{self.active_key} is not an active state")
        return active, data

    # ── following ────────────────────────────────────────────────────────────

    def follow(
        self,
        keys: Mapping[str, Any] | None = None,
        *,
        allow_unsigned: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        start: bool = True,
        **live: Any,
    ) -> Live:
        """A `Live` handle on the active bundle, kept on it by a thread. When Redis cannot be
        read or holds no bundle yet, the last bundle kept in `state_dir` is served (status
        DEGRADED) until it can; with none, `BundleError`."""
        if state_dir is not None:
            Path(state_dir).mkdir(parents=True, exist_ok=True)
            live.setdefault("control_file", Path(state_dir) / "control.json")
        if "changes" not in live:
            # Every host's change records in one place as well (L-U1: streams persist,
            # pub/sub does not), beside the host's own file.
            local = Path(state_dir) / "changes.jsonl" if state_dir is not None else None
            live["changes"] = StreamedChangeLog(local, self._r, self.changes_key)
        follower = BundleFollower(
            keys,
            allow_unsigned=allow_unsigned,
            state_dir=state_dir,
            origin=f"redis:{self.prefix}",
        )
        data: bytes | None = None
        why = ""
        seq = 0
        epoch: object = None
        try:
            active, data = self.read()
            if active is None:
                why = f"no bundle was pushed to {self.active_key}"
            elif data is None:
                why = f"the active bundle {active.get('bundle')} is not in Redis"
            else:
                seq = int(active.get("seq") or 0)
                epoch = active.get("epoch")
        except Exception as err:  # noqa: BLE001 - Redis down at start: the kept bundle
            why = f"cannot read {self.active_key}: {err}"
        handle = follower.start(data, why, **live)
        self.seq = seq if not follower.degraded else 0
        self.epoch = str(epoch) if isinstance(epoch, str) and not follower.degraded else None
        if follower.degraded and data is None:
            handle.unreachable("source", why)
        self.attach(follower, start=start)
        return handle

    def attach(self, follower: BundleFollower, start: bool = True) -> RedisSource:
        """Keep `follower`'s handle on the active bundle (a thread, unless `start=False`:
        then call `sync()`)."""
        if follower.live is None:
            raise ValueError("the follower has no Live handle yet (start it first)")
        self.follower = follower
        follower.pull = self.sync
        follower.reset = self._forget
        follower.live.on_close(self.close)
        if start:
            self._thread = threading.Thread(target=self._run, name="charter-source", daemon=True)
            self._thread.start()
        return self

    def _forget(self) -> None:
        self.seq = 0  # after an unpin: offer the active bundle again, whatever its seq

    def sync(self) -> bool:
        """Read `active` and offer its bundle when its seq is newer than the last applied;
        True when a new version went live."""
        follower = self.follower
        if follower is None:
            return False
        active, data = self.read()
        self.synced.set()
        if follower.live is not None:
            follower.live.reachable("source")
        if active is None:
            return False
        seq = int(active.get("seq") or 0)
        epoch = active.get("epoch")
        epoch = epoch if isinstance(epoch, str) else None
        if epoch != self.epoch and epoch is not None:
            # The counter was created anew (Redis flushed or replaced): without this a host
            # would ignore every push until the new count passed its old one, silently.
            if self.epoch is not None:
                _LOG.warning(
                    "%s: the sequence restarted (epoch %s -> %s); following it",
                    self.prefix,
                    self.epoch,
                    epoch,
                )
            self.epoch, self.seq = epoch, 0
        if seq <= self.seq:
            return False  # an older or replayed state never rolls back
        if data is None:
            if self._missing != seq:
                self._missing = seq
                _LOG.error(
                    "active seq %d names bundle %s, which is not in Redis",
                    seq,
                    active.get("bundle"),
                )
            return False
        self.seq = seq
        return follower.offer(data, active_seq=seq, pushed_by=active.get("actor")) is not None

    def _heartbeat(self) -> None:
        if self.follower is not None:
            self.follower.follow_commands()  # `charter rollback --state-dir`, at each tick
            self.follower.write_status()

    def _run(self) -> None:
        follow_channel(
            self._r,
            self.channel,
            self._stop,
            self.poll_interval_s,
            self.sync,
            self._lost,
            f"policy source {self.prefix}",
            tick=self._heartbeat,
        )

    def _lost(self, err: Exception, unreachable: bool) -> None:
        self.errors += 1
        live = self.follower.live if self.follower is not None else None
        if unreachable and live is not None:  # STALE after the handle's stale_after_s
            live.unreachable("source", f"redis:{self.prefix}: {err}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval_s + 5)


def follow_redis(
    client_or_url: redis.Redis | str,
    *,
    prefix: str = "charter:",
    keys: Mapping[str, Any] | None = None,
    allow_unsigned: bool = False,
    state_dir: str | os.PathLike[str] | None = None,
    poll_interval_s: float = 1.0,
    start: bool = True,
    **live: Any,
) -> Live:
    """A `Live` handle on the bundle active in Redis under `prefix` (see `RedisSource`)."""
    source = RedisSource(client_or_url, prefix=prefix, poll_interval_s=poll_interval_s)
    return source.follow(
        keys, allow_unsigned=allow_unsigned, state_dir=state_dir, start=start, **live
    )
