"""`Live`: a policy handle whose active version can change while agents run (issue 16).

The active version is one reference to an immutable `Version` (a policy, its Guard, a
generation number); a swap is one attribute store, so a decision reads the reference once
and finishes on the version it started with — no decision ever mixes rules of two versions
(L-C1 of live-control-analysis.md). With no kill switch, canary or shadow active,
`Live.decide` *is* the active `Policy.decide` and `Live.check` the active `Guard.check`
(rebound at each swap, L-C2): a handle costs nothing while nothing else is going on.

Control state (kill switches, canary, shadow) lives beside the version in one immutable
`Control` and can only tighten decisions or choose between two gated versions (L-X1).
What needs the compiler (the gate, the directory watcher, last-known-good) is in
`charter.control`; this module only swaps what it is given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from charter.engine.decision import Decision
from charter.engine.snapshot import Snapshot
from charter.runtime.approvals import Grant
from charter.runtime.approvers import Directory
from charter.runtime.audit import AuditLog
from charter.runtime.changes import ChangeLog
from charter.runtime.guard import Guard
from charter.runtime.live_canary import CanaryGuard, CanaryStats, judge
from charter.runtime.live_status import (
    CANARY_ABORTED,
    CONFIGURATION_CHANGED,
    CONTROL_CHANGED,
    DEGRADED,
    ERROR,
    NOT_READY,
    READY,
    STALE,
    ActiveStatus,
    AttemptStatus,
    CanaryStatus,
    ControlStatus,
    EventQueue,
    LiveEvent,
    LiveStatus,
    ShadowStatus,
    SourceStatus,
    Unreachable,
    rule_diff,
)
from charter.runtime.policy import Policy
from charter.runtime.request import Call, read
from charter.runtime.state import MemoryStore, Store
from charter.stdlib.files import replace_file
from charter.stdlib.globs import name_matches

__all__ = [
    "Canary",
    "CanaryGuard",
    "CanaryStats",
    "Control",
    "KillSwitch",
    "Live",
    "LiveError",
    "Version",
    "bucket",
]

_LOG = logging.getLogger("charter.live")
#: kill switches match these stages unless told otherwise (L-X2)
DEFAULT_STAGES = ("tool_call", "tool_result")
Decide = Callable[..., Decision]
#: change record action -> the event it is (L-H2); any other action is CONTROL_CHANGED
_EVENT_OF = {
    "activate": CONFIGURATION_CHANGED,
    "rollback": CONFIGURATION_CHANGED,
    "reject": ERROR,
    "canary_aborted": CANARY_ABORTED,
}


class LiveError(RuntimeError):
    """Nothing safe to serve (the source fails the gate and no last-known-good exists), or
    a rollback with nothing to roll back to."""


@dataclass(frozen=True, slots=True)
class Version:
    """One active version: never changed after it is made, so reading `Live._active`
    once gives a consistent policy, Guard and generation."""

    policy: Policy
    guard: Guard | None
    generation: int
    source_digest: str | None
    since: float
    actor: str
    decide: Decide
    check: Callable[[Any], Decision]

    @property
    def digest(self) -> str:
        return self.policy.digest


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """Deny the calls whose tool matches one of `tools` (Charter globs; `"*"` alone is
    every tool) at one of `stages`, before the policy runs (L-X2, L-X3)."""

    id: str
    tools: tuple[str, ...]
    reason: str
    stages: tuple[str, ...] = DEFAULT_STAGES
    actor: str = ""
    created_at: float = 0.0
    expires_at: float | None = None

    def matches(self, stage: str, name: str) -> bool:
        return stage in self.stages and any(t == "*" or name_matches(t, name) for t in self.tools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tools": list(self.tools),
            "reason": self.reason,
            "stages": list(self.stages),
            "actor": self.actor,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KillSwitch:
        """A switch from `to_dict` output; raises ValueError (naming the field) otherwise."""
        try:
            tools = tuple(str(t) for t in data["tools"])
            stages = tuple(str(s) for s in data.get("stages") or DEFAULT_STAGES)
            expires = data.get("expires_at")
            return cls(
                str(data["id"]),
                tools,
                str(data.get("reason") or ""),
                stages,
                str(data.get("actor") or ""),
                float(data.get("created_at") or 0.0),
                None if expires is None else float(expires),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not a kill switch: {err}") from None


def bucket(salt: str, value: object) -> int | None:
    """The canary bucket (0..9999) of a key value (L-N1): SHA-256 of `salt:value`, never
    Python's `hash()` (randomized per process). Strings and integers are bucketable;
    anything else (absent, null, booleans, decimals, lists, maps) is None: stable."""
    if type(value) is str:
        text = value
    elif type(value) is int:
        text = str(value)
    else:
        return None
    digest = hashlib.sha256(f"{salt}:{text}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % 10000


@dataclass(frozen=True, slots=True)
class Canary:
    """A candidate version serving the requests whose key falls in buckets `[0, percent
    * 100)` (L-N1..N3); the other cohort stays on the active version."""

    candidate: Version
    percent: float
    key: tuple[str, ...] = ("session", "id")
    salt: str = ""

    guard: CanaryGuard | None = None
    stats: CanaryStats = field(default_factory=CanaryStats, compare=False)
    #: key value -> in the canary cohort (bounded; the hash is most of a canary's cost)
    cohort: dict[object, bool] = field(default_factory=dict, compare=False)

    @property
    def cut(self) -> int:
        return round(self.percent * 100)

    def takes(self, value: object) -> bool:
        """Whether a request with this key value goes to the candidate."""
        try:
            return self.cohort[value]
        except (KeyError, TypeError):
            b = bucket(self.salt, value)
            found = b is not None and b < self.cut
            if type(value) in (str, int) and len(self.cohort) < 65536:
                self.cohort[value] = found
            return found


@dataclass(slots=True)
class Stats:
    """Counts a shadow or canary gathers: decisions per cohort and divergences (old effect
    -> candidate effect), the live twin of `charter replay`'s transition table."""

    decisions: dict[str, int] = field(default_factory=dict)
    divergence: dict[str, int] = field(default_factory=dict)
    changed_rules: int = 0


@dataclass(frozen=True, slots=True)
class Control:
    """Everything besides the active version that decides how a request is answered."""

    seq: int = 0
    switches: tuple[KillSwitch, ...] = ()
    canary: Canary | None = None
    shadow: Version | None = None
    #: (stage, tool name) -> the first matching switch or None (filled as calls come)
    hits: dict[tuple[str, str], KillSwitch | None] = field(default_factory=dict, compare=False)
    #: the earliest expiry of a switch (computed once, read on every decision)
    expires: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        times = [s.expires_at for s in self.switches if s.expires_at is not None]
        object.__setattr__(self, "expires", min(times) if times else None)

    @property
    def idle(self) -> bool:
        return not self.switches and self.canary is None and self.shadow is None

    def switch_for(self, stage: str, name: str) -> KillSwitch | None:
        key = (stage, name)
        try:
            return self.hits[key]
        except KeyError:
            found = next((s for s in self.switches if s.matches(stage, name)), None)
            if len(self.hits) < 4096:
                self.hits[key] = found
            return found


class Live:
    """A policy handle hosts use in place of a fixed `Policy` (and `Guard`).

    `decide(request, state=None)` has `Policy.decide`'s contract and `check(request)`
    `Guard.check`'s; both read the active version once. `state`, `log`, `secret`,
    `clock` and `approvers` are the Guard's and shared by every version, so budgets,
    grants and reservations carry across swaps. `changes`: a path or `ChangeLog` that
    gets one record per change (activation, rejection, kill, unkill, expiry...), L-U1.
    `on_event`: called with each `LiveEvent` (L-H2) on an event thread of its own, never on
    a decision. `stale_after_s`: how long the source or the control plane may be
    unreachable before the state is STALE (L-H1).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        state: Store | None = None,
        log: str | os.PathLike[str] | AuditLog | None = None,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        approvers: Directory | None = None,
        changes: str | os.PathLike[str] | ChangeLog | None = None,
        source_digest: str | None = None,
        actor: str = "api",
        host: str | None = None,
        shadow_log: str | os.PathLike[str] | AuditLog | None = None,
        shadow_log_all: bool = False,
        control_file: str | os.PathLike[str] | None = None,
        on_event: Callable[[LiveEvent], object] | None = None,
        stale_after_s: float = 10.0,
    ) -> None:
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be a positive number of seconds: {stale_after_s}")
        self.stale_after_s = stale_after_s
        self.events = EventQueue()
        if on_event is not None:
            self.events.listen(on_event)
        #: what is unreachable now ("source", "control") and since when (L-H1 STALE)
        self._unreachable: dict[str, Unreachable] = {}
        self._stale_told: set[str] = set()
        self._closed = False
        self.store: Store = state if state is not None else MemoryStore()
        self._own_log = log is not None and not isinstance(log, AuditLog)
        self.log = log if isinstance(log, AuditLog) or log is None else AuditLog(log)
        self.secret = secret if secret else secrets.token_bytes(32)
        self.clock = clock
        self.approvers = approvers
        self.changes = (
            changes if isinstance(changes, ChangeLog) or changes is None else ChangeLog(changes)
        )
        self.host = host or f"{os.uname().nodename}:{os.getpid()}"
        #: where shadow decisions are written (the decision log unless given); only those
        #: that differ from the enforced one unless `shadow_log_all`
        self._own_shadow_log = shadow_log is not None and not isinstance(shadow_log, AuditLog)
        self.shadow_log = (
            shadow_log
            if isinstance(shadow_log, AuditLog)
            else AuditLog(shadow_log)
            if shadow_log is not None
            else self.log
        )
        self.shadow_log_all = shadow_log_all
        self._lock = threading.RLock()
        self._generation = 0
        #: where the kill switches are kept across restarts (`watch` puts it in state_dir)
        self.control_file = Path(control_file) if control_file is not None else None
        self._control = self._load_control()
        self._closers: list[Callable[[], None]] = []
        #: what feeds this handle new versions (`charter.control.DirectoryWatcher`), if any
        self.watcher: Any = None
        #: a control source shared by processes (`runtime.live_redis.RedisControl`), if any
        self.remote: Any = None
        self.remote_seq = 0  # the source's sequence number last applied
        self._pending: dict[str, KillSwitch] = {}
        self.shadow_stats = Stats()
        self._active = self.version(policy, source_digest, actor)
        self.decide: Decide = self._active.decide
        self.check: Callable[[Any], Decision] = self._active.check
        self._rebind()
        self.record(
            "activate",
            to_digest=policy.digest,
            actor=actor,
            source_digest=source_digest,
            reason="start",
        )

    # ── versions ─────────────────────────────────────────────────────────────

    @property
    def active(self) -> Version:
        """The active version (one read of one reference)."""
        return self._active

    @property
    def policy(self) -> Policy:
        return self._active.policy

    @property
    def control(self) -> Control:
        return self._control

    def version(
        self, policy: Policy, source_digest: str | None = None, actor: str = "api"
    ) -> Version:
        """A version of `policy` with its own Guard over the shared store and log (made off
        the hot path: a swap only stores the reference)."""
        guard = Guard(
            policy,
            state=self.store,
            log=self.log,
            secret=self.secret,
            clock=self.clock,
            approvers=self.approvers,
        )
        with self._lock:
            self._generation += 1
            generation = self._generation
        return Version(
            policy, guard, generation, source_digest, time.time(), actor, policy.decide, guard.check
        )

    def activate(
        self,
        policy: Policy | Version,
        *,
        source_digest: str | None = None,
        actor: str = "api",
        reason: str = "",
        action: str = "activate",
        **record: Any,
    ) -> Version:
        """Make `policy` the active version: one reference swap. Decisions already running
        finish on the version they read; the next read sees this one. One change record
        (`action`: `activate`, or `rollback` for a kept version) with the rule diff."""
        new = policy if isinstance(policy, Version) else self.version(policy, source_digest, actor)
        with self._lock:
            old = self._active
            self._active = new
            self._rebind()
        _LOG.info("policy %s active (was %s)", new.digest, old.digest)
        diff = None
        if self.changes is not None or self.events.listeners:
            try:
                diff = rule_diff(old.policy.ir, new.policy.ir)
            except Exception:  # noqa: BLE001 - the diff only describes; the swap is done
                _LOG.exception("cannot diff %s and %s", old.digest, new.digest)
        self.record(
            action,
            from_digest=old.digest,
            to_digest=new.digest,
            actor=actor,
            source_digest=new.source_digest,
            reason=reason,
            diff=diff,
            **record,
        )
        return new

    def rollback(self, to: str | None = None, *, actor: str = "api", reason: str = "") -> str:
        """Activate a kept version of the watched source (`to`: its policy digest; default
        the newest other than the active one) without compiling, and pin it until the source
        changes or `unpin()` (L-K3). Returns the digest; `LiveError` when there is nothing
        to roll back to or no watched source with a `state_dir` feeds this handle."""
        watcher = self.watcher
        if watcher is None or not hasattr(watcher, "rollback"):
            raise LiveError(
                "rollback needs a watched source with kept versions "
                "(charter.control.watch(path, state_dir=...))"
            )
        return str(watcher.rollback(to, actor=actor, reason=reason))

    def unpin(self, *, actor: str = "api") -> None:
        """End a rollback's pin: the source as it is now is gated and, if it passes, active."""
        watcher = self.watcher
        if watcher is None or not hasattr(watcher, "unpin"):
            raise LiveError("unpin needs a watched source (charter.control.watch)")
        watcher.unpin(actor=actor)

    # ── kill switches ────────────────────────────────────────────────────────

    def kill(
        self,
        tools: str | Iterable[str] = "*",
        reason: str = "",
        *,
        stages: Iterable[str] = DEFAULT_STAGES,
        ttl: float | None = None,
        actor: str = "api",
        switch_id: str | None = None,
    ) -> str:
        """Deny every call to a tool matching `tools` (globs; `"*"` is every tool), before
        the policy runs, from the next decision on; returns the switch id. `ttl`: seconds
        until the switch expires."""
        globs = (tools,) if isinstance(tools, str) else tuple(tools)
        if not globs:
            raise ValueError("kill needs at least one tool glob (or '*' for every tool)")
        now = self.clock()
        switch = KillSwitch(
            switch_id or uuid.uuid4().hex[:8],
            globs,
            reason,
            tuple(stages),
            actor,
            now,
            None if ttl is None else now + ttl,
        )
        with self._lock:
            ctl = self._control
            kept = tuple(s for s in ctl.switches if s.id != switch.id)
            self._pending[switch.id] = switch  # until a remote state carries it
            self._set_control(replace(ctl, seq=ctl.seq + 1, switches=(*kept, switch), hits={}))
        remote = self.remote
        if remote is not None:
            try:
                remote.kill(switch)
            except Exception:  # noqa: BLE001 - it holds here; the sync pushes it again
                _LOG.exception("kill switch %s holds in this process only for now", switch.id)
        self.record("kill", actor=actor, reason=reason, control={"kill": switch.to_dict()})
        return switch.id

    def unkill(self, switch_id: str, *, actor: str = "api") -> bool:
        """Remove a kill switch (here and, with a remote control, everywhere); False when
        no switch has that id here."""
        with self._lock:
            ctl = self._control
            self._pending.pop(switch_id, None)
            kept = tuple(s for s in ctl.switches if s.id != switch_id)
            found = len(kept) != len(ctl.switches)
            if found:
                self._set_control(replace(ctl, seq=ctl.seq + 1, switches=kept, hits={}))
        if self.remote is not None:
            try:
                self.remote.unkill(switch_id)
                found = True
            except Exception:  # noqa: BLE001 - other hosts keep denying: the safe side
                _LOG.exception("cannot remove kill switch %s everywhere", switch_id)
        if found:
            self.record("unkill", actor=actor, control={"unkill": switch_id})
        return found

    @property
    def switches(self) -> tuple[KillSwitch, ...]:
        return self._control.switches

    @property
    def pending(self) -> tuple[KillSwitch, ...]:
        """Switches made here that no remote state has carried back yet."""
        return tuple(self._pending.values())

    def push_pending(self, carried: Iterable[str], write: Callable[[KillSwitch], object]) -> None:
        """Write each switch made here that the control source does not carry (a write that
        failed earlier), under the lock and only while it is still pending: an unkill made
        between the source's read and this push waits for the write and then wins, instead
        of being undone by it."""
        have = set(carried)
        for switch in self.pending:
            if switch.id in have:
                continue
            with self._lock:
                if switch.id in self._pending:
                    write(switch)

    def apply_control(self, switches: Iterable[KillSwitch], seq: int) -> bool:
        """Take the switches of a control source (Redis, a file): applied only when `seq`
        exceeds the last one applied, so a delayed message never rolls back. Switches
        made here and not yet carried by the source are kept (only tighten). Each switch
        that appears or goes is one change record (`kill`, `unkill`, or `kill_expired`)
        with the actor that wrote it (L-U1): a `charter kill` is in every host's log."""
        now = self.clock()
        with self._lock:
            if seq <= self.remote_seq:
                return False
            self.remote_seq = seq
            remote = {s.id: s for s in switches if s.expires_at is None or s.expires_at > now}
            for sid in [k for k in self._pending if k in remote]:
                del self._pending[sid]
            merged = (*remote.values(), *(s for k, s in self._pending.items() if k not in remote))
            ctl = self._control
            if merged == ctl.switches:
                return True
            had = {s.id: s for s in ctl.switches}
            self._set_control(replace(ctl, seq=ctl.seq + 1, switches=merged, hits={}))
        source = str(getattr(self.remote, "name", None) or "control")
        for s in merged:
            if s.id not in had:
                self.record(
                    "kill",
                    actor=s.actor or source,
                    reason=s.reason,
                    source=source,
                    control={"kill": s.to_dict()},
                )
        now_ids = {s.id for s in merged}
        for sid, gone in had.items():
            if sid not in now_ids:
                expired = gone.expires_at is not None and gone.expires_at <= now
                self.record(
                    "kill_expired" if expired else "unkill",
                    actor="control" if expired else source,
                    source=source,
                    control={"unkill": sid},
                )
        return True

    def _set_control(self, ctl: Control) -> None:
        self._control = ctl
        self._rebind()
        self._save_control(ctl)

    def _save_control(self, ctl: Control) -> None:
        """Keep the switches in `control_file` (tmp+rename), so they survive a restart even
        when the control plane is down at start (L-X5)."""
        path = self.control_file
        if path is None:
            return
        data = {"seq": ctl.seq, "switches": [s.to_dict() for s in ctl.switches]}
        try:
            replace_file(path, json.dumps(data).encode(), fsync=False)
        except OSError:
            _LOG.exception("cannot keep the kill switches in %s", path)

    def _load_control(self) -> Control:
        path = self.control_file
        if path is None or not path.exists():
            return Control()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            now = self.clock()
            switches = tuple(
                s
                for s in (KillSwitch.from_dict(d) for d in data.get("switches") or ())
                if s.expires_at is None or s.expires_at > now
            )
            return Control(seq=int(data.get("seq") or 0), switches=switches)
        except (OSError, ValueError, TypeError, AttributeError) as err:
            # Starting without switches someone set would loosen: refuse, and say where.
            raise ValueError(
                f"cannot read the kill switches in {path}: {err}; fix or remove the file"
            ) from None

    def _expire(self, now: float) -> None:
        with self._lock:
            ctl = self._control
            gone = [s for s in ctl.switches if s.expires_at is not None and s.expires_at <= now]
            if not gone:
                return
            kept = tuple(s for s in ctl.switches if s not in gone)
            self._set_control(replace(ctl, switches=kept, hits={}))
        for s in gone:
            self.record("kill_expired", control={"unkill": s.id})

    # ── canary and shadow ────────────────────────────────────────────────────

    def canary(
        self,
        candidate: Policy | Version,
        percent: float,
        *,
        key: str = "session.id",
        salt: str | None = None,
        actor: str = "api",
        guard: CanaryGuard | None = None,
    ) -> Version:
        """Serve `candidate` to the requests whose `key` (a request path) falls in the
        first `percent` % of buckets; the salt is kept when only the percentage changes,
        so raising it only adds buckets (L-N3, L-N4)."""
        if not 0 <= percent <= 100:
            raise ValueError("percent is between 0 and 100")
        with self._lock:
            ctl = self._control
            old = ctl.canary
            version = (
                candidate
                if isinstance(candidate, Version)
                else (
                    old.candidate
                    if old is not None and old.candidate.policy is candidate
                    else self.version(candidate, actor=actor)
                )
            )
            same = old is not None and old.candidate is version
            chosen = salt or (old.salt if same and old is not None else secrets.token_hex(4))
            kept = old.guard if same and old is not None and guard is None else guard
            stats = old.stats if same and old is not None else CanaryStats()
            canary = Canary(version, percent, tuple(key.split(".")), chosen, kept, stats)
            self._set_control(replace(ctl, seq=ctl.seq + 1, canary=canary))
        self.record(
            "canary",
            actor=actor,
            to_digest=version.digest,
            control={
                "canary": {"digest": version.digest, "percent": percent, "key": key, "salt": chosen}
            },
        )
        return version

    def _judge(
        self,
        canary: Canary,
        stable: Decision,
        candidate: Decision,
        took_ns: int | None = None,
        timed_candidate: bool = True,
    ) -> None:
        """Count one compared request and abort the canary when a threshold trips
        (`live_canary.judge`)."""
        stats, guard = canary.stats, canary.guard
        if guard is None or stats.aborted is not None:
            return
        why = judge(guard, stats, stable, candidate, took_ns, timed_candidate)
        if why is None:
            return
        with self._lock:
            if self._control.canary is not canary or stats.aborted is not None:
                return
            stats.aborted = why
            self._set_control(replace(self._control, seq=self._control.seq + 1, canary=None))
        _LOG.error("canary %s aborted: %s", canary.candidate.digest, why)
        self.record(
            "canary_aborted",
            actor="canary-guard",
            reason=why,
            to_digest=canary.candidate.digest,
            control={
                "canary": {
                    "compared": stats.compared,
                    "loosened": stats.loosened,
                    "tightened": stats.tightened,
                    "stable_errors": stats.stable_errors,
                    "candidate_errors": stats.candidate_errors,
                }
            },
        )

    def abort_canary(self, *, actor: str = "api", reason: str = "") -> None:
        with self._lock:
            ctl = self._control
            if ctl.canary is None:
                return
            self._set_control(replace(ctl, seq=ctl.seq + 1, canary=None))
        self.record("abort_canary", actor=actor, reason=reason)

    def promote(self, *, actor: str = "api") -> Version:
        """Make the canary's candidate active for everyone (no re-gate) and end the canary."""
        with self._lock:
            ctl = self._control
            if ctl.canary is None:
                raise ValueError("no canary is running")
            candidate = ctl.canary.candidate
            self._control = replace(ctl, seq=ctl.seq + 1, canary=None)
            return self.activate(candidate, actor=actor, reason="promote")

    def shadow(self, candidate: Policy | Version, *, actor: str = "api") -> Version:
        """Decide every request with `candidate` too, never enforcing it; divergences are
        counted in `shadow_stats` (L-W1, L-W2)."""
        version = (
            candidate if isinstance(candidate, Version) else self.version(candidate, actor=actor)
        )
        with self._lock:
            ctl = self._control
            self.shadow_stats = Stats()
            self._set_control(replace(ctl, seq=ctl.seq + 1, shadow=version))
        self.record("shadow", actor=actor, to_digest=version.digest)
        return version

    def stop_shadow(self, *, actor: str = "api") -> None:
        with self._lock:
            ctl = self._control
            if ctl.shadow is None:
                return
            self._set_control(replace(ctl, seq=ctl.seq + 1, shadow=None))
        self.record("stop_shadow", actor=actor)

    # ── deciding ─────────────────────────────────────────────────────────────

    def _rebind(self) -> None:
        """`decide`/`check` for the current state: the active version's own when nothing
        else is active (L-C2), else closures over this version and control state. Either
        way a caller reads one attribute and gets one version."""
        v, ctl = self._active, self._control
        if ctl.idle:
            self.decide = v.decide
            self.check = v.check
        elif (canary := _canary_only(ctl)) is not None:
            self.decide = _canary_router(v.decide, canary.candidate.decide, canary, False)
            self.check = _canary_router(v.check, canary.candidate.check, canary, True)
        else:
            self.decide = self._controlled(v, ctl, guarded=False)
            self.check = self._controlled(v, ctl, guarded=True)

    def _controlled(self, v: Version, ctl: Control, guarded: bool) -> Any:
        """`decide` (or, `guarded`, `check`) with kill switches, canary and shadow: a plain
        dict request is routed inline (a few dict lookups, L-X4); anything else is read
        once with `request.read` first."""
        run: Any = v.check if guarded else v.decide
        switches = bool(ctl.switches)
        switch_for, hits = ctl.switch_for, ctl.hits
        expires = ctl.expires
        canary, shadow = ctl.canary, ctl.shadow
        candidate = (
            (canary.candidate.check if guarded else canary.candidate.decide)
            if canary is not None
            else None
        )
        key = canary.key if canary is not None else ()
        takes = canary.takes if canary is not None else None
        cohorts: dict[object, bool] = canary.cohort if canary is not None else {}
        judged = canary is not None and canary.guard is not None
        timed = judged and canary.guard.max_latency_ratio is not None  # type: ignore[union-attr]
        perf_ns = time.perf_counter_ns
        stable_decide, candidate_decide = (
            v.decide,
            (canary.candidate.decide if canary is not None else v.decide),
        )
        clock, info = self.clock, v.policy.info
        killed: dict[str, Decision] = {}
        missing = object()

        def deny(switch: KillSwitch) -> Decision:
            d = killed.get(switch.id)
            if d is None:
                d = killed[switch.id] = Decision(
                    effect="deny",
                    allowed=False,
                    reasons=(f"kill switch {switch.id}: {switch.reason or 'killed'}",),
                    rules=(f"kill:{switch.id}",),
                    policy=info,
                )
            return d

        def decide(request: Any, state: Snapshot | None = None) -> Decision:
            try:
                if type(request) is dict:
                    stage = request.get("stage")
                    tool = request.get("tool")
                    name = (
                        tool
                        if type(tool) is str
                        else (
                            tool.get("name") if type(tool) is dict else "" if tool is None else None
                        )
                    )
                    if stage is None:
                        stage = "tool_call"
                    if type(name) is not str or type(stage) is not str:
                        return slow(request, state)
                    req = request
                else:
                    return slow(request, state)
                if switches:
                    if expires is not None and clock() >= expires:
                        self._expire(clock())
                        return self.decide(request, state) if not guarded else self.check(request)
                    switch = hits.get((stage, name), missing)
                    if switch is missing:
                        switch = switch_for(stage, name)
                    if switch is not None:
                        killed_by = deny(switch)  # type: ignore[arg-type]
                        if guarded and self.log is not None:
                            self._log_kill(req, stage, name, killed_by, switch)  # type: ignore[arg-type]
                        return killed_by
                cohort = "stable"
                fn = run
                if takes is not None:
                    value: Any = req
                    for part in key:  # the key path, read inline (L-AC4: a canary's cost)
                        value = value.get(part) if type(value) is dict else None
                    kind = type(value)
                    if kind is str or kind is int:  # anything else stays stable (L-N1)
                        inside = cohorts.get(value)
                        if inside is None:
                            inside = takes(value)
                        if inside:
                            fn = candidate
                            cohort = "canary"
                if shadow is not None and guarded and "trace_id" not in req:
                    req = {**req, "trace_id": uuid.uuid4().hex}  # one id for both records
                decision: Decision = fn(req) if guarded else fn(req, state)
                if judged:
                    # Both versions on every request (L-N5): the other one, pure, and timed
                    # when latency is judged (the same kind of call for both versions).
                    pure = candidate_decide if fn is run else stable_decide
                    if timed:
                        t0 = perf_ns()
                        other = pure(req, state)
                        took: int | None = perf_ns() - t0
                    else:
                        other, took = pure(req, state), None
                    if fn is run:
                        self._judge(canary, decision, other, took, True)  # type: ignore[arg-type]
                    else:
                        self._judge(canary, other, decision, took, False)  # type: ignore[arg-type]
                if shadow is not None:
                    self._shadow(shadow, req, state, decision, cohort, stage, name, guarded)
                return decision
            except Exception:  # noqa: BLE001 - never raises: the active version decides
                fallback: Decision = run(request) if guarded else run(request, state)
                return fallback

        def slow(request: Any, state: Snapshot | None) -> Decision:
            call = read(request, info)
            if not isinstance(call, Call):
                return call  # the malformed-request deny
            return decide(call.req, state)

        return decide

    def _log_kill(
        self, req: dict[str, Any], stage: str, name: str, decision: Decision, switch: KillSwitch
    ) -> None:
        """A kill switch's deny in the decision log, as the Guard logs its own decisions
        (no replay block: the policy did not decide it) with `kill` naming the switch."""
        log = self.log
        if log is None:
            return
        agent, sess = req.get("agent"), req.get("session")
        info = decision.policy
        try:
            log.write(
                {
                    "time": self.clock(),
                    "agent_id": agent.get("id") if type(agent) is dict else None,
                    "session_id": sess.get("id") if type(sess) is dict else None,
                    "trace_id": req.get("trace_id") or uuid.uuid4().hex,
                    "stage": stage,
                    "tool": name,
                    "effect": decision.effect,
                    "allowed": False,
                    "rules": list(decision.rules),
                    "reasons": list(decision.reasons),
                    "policy": info.name if info is not None else None,
                    "policy_digest": info.digest if info is not None else None,
                    "kill": switch.id,
                }
            )
        except Exception:  # noqa: BLE001 - a log failure never turns a deny into anything else
            _LOG.exception("cannot log a kill switch deny")

    def _shadow(
        self,
        shadow: Version,
        req: dict[str, Any],
        state: Snapshot | None,
        enforced: Decision,
        cohort: str,
        stage: str,
        name: str,
        guarded: bool,
    ) -> None:
        """Decide with the shadow version (pure `decide`: no reservation, no grant use, no
        label write), count how it differs (L-W1, L-W2) and log it beside the enforced
        decision: a record `{"event": "shadow", ...}` with the same `trace_id`."""
        try:
            other = shadow.decide(req, state)
            stats = self.shadow_stats
            stats.decisions[cohort] = stats.decisions.get(cohort, 0) + 1
            differs = other.effect != enforced.effect or other.rules != enforced.rules
            if other.effect != enforced.effect:
                key = f"{enforced.effect}->{other.effect}"
                stats.divergence[key] = stats.divergence.get(key, 0) + 1
            elif differs:
                stats.changed_rules += 1
            log = self.shadow_log
            if log is None or not (differs or self.shadow_log_all):
                return
            info = enforced.policy
            log.write(
                {
                    "event": "shadow",
                    "trace_id": req.get("trace_id"),
                    "stage": stage,
                    "tool": name,
                    "cohort": cohort,
                    "active": {
                        "digest": info.digest if info is not None else None,
                        "effect": enforced.effect,
                        "rules": list(enforced.rules),
                    },
                    "shadow_policy": {
                        "digest": shadow.digest,
                        "effect": other.effect,
                        "rules": list(other.rules),
                        "reasons": list(other.reasons),
                    },
                    # A Guard's check decides with the store's state; the shadow, pure, with
                    # none: a candidate's budgets and limits then read zero usage.
                    "shadow_partial_state": guarded and bool(shadow.policy.counters),
                }
            )
        except Exception:  # noqa: BLE001 - a shadow never affects the enforced decision
            _LOG.exception("shadow decision of %s", shadow.digest)

    # ── status ───────────────────────────────────────────────────────────────

    def status(self) -> LiveStatus:
        """What this handle serves and how (L-H1): the state, the active version, the last
        attempt and kept versions of a watched source, canary, shadow, the control state
        and what is unreachable. `msgspec.json.encode(live.status())` is its JSON."""
        v, ctl = self._active, self._control
        now = time.time()
        source = self._source_status()
        remote = self.remote
        out = LiveStatus(
            state=self._state(now, source),
            active=ActiveStatus(
                digest=v.digest,
                source_digest=v.source_digest,
                name=v.policy.name,
                version=v.policy.version,
                generation=v.generation,
                since=v.since,
                actor=v.actor,
                source=str(self.watcher.path) if hasattr(self.watcher, "path") else None,
            ),
            updated_at=now,
            host=self.host,
            pid=os.getpid(),
            stale_after_s=self.stale_after_s,
            unreachable=[
                Unreachable(what=u.what, since=u.since, error=u.error)
                for u in list(self._unreachable.values())
            ],
            control=ControlStatus(
                seq=ctl.seq,
                remote_seq=self.remote_seq,
                source=str(getattr(remote, "name", None) or type(remote).__name__)
                if remote is not None
                else None,
                last_sync=getattr(remote, "last_sync", None),
                kill_switches=[s.to_dict() for s in ctl.switches],
                pending=[s.id for s in self._pending.values()],
            ),
        )
        if ctl.canary is not None:
            c = ctl.canary
            out.canary = CanaryStatus(
                digest=c.candidate.digest,
                percent=c.percent,
                key=".".join(c.key),
                salt=c.salt,
                guarded=c.guard is not None,
                compared=c.stats.compared,
                loosened=c.stats.loosened,
                tightened=c.stats.tightened,
                stable_errors=c.stats.stable_errors,
                candidate_errors=c.stats.candidate_errors,
                aborted=c.stats.aborted,
            )
        if ctl.shadow is not None:
            st = self.shadow_stats
            out.shadow = ShadowStatus(
                digest=ctl.shadow.digest,
                decisions=dict(st.decisions),
                divergence=dict(st.divergence),
                changed_rules=st.changed_rules,
            )
        if source is not None:
            out.last_attempt = source.last_attempt
            out.history = source.history
            out.pinned = source.pinned
            out.pinned_source = source.pinned_source
            out.watcher = source.watcher
            out.reloads_ok = source.reloads_ok
            out.reloads_rejected = source.reloads_rejected
            out.command_seq = source.command_seq
            out.command_error = source.command_error
        return out

    def _source_status(self) -> SourceStatus | None:
        """The source's part of the status: its `source_status()`, or for a source that
        only has `status()` (state, last_attempt as a dict, reload counts) what that says."""
        watcher = self.watcher
        if watcher is None:
            return None
        try:
            describe = getattr(watcher, "source_status", None)
            if describe is not None:
                found = describe()
                return found if isinstance(found, SourceStatus) else None
            plain = getattr(watcher, "status", None)
            if plain is None:
                return None
            st = plain()
            last = getattr(st, "last_attempt", None)
            return SourceStatus(
                degraded=getattr(st, "state", READY) == DEGRADED,
                last_attempt=_attempt_of(last) if isinstance(last, Mapping) else None,
                reloads_ok=int(getattr(st, "reloads_ok", 0) or 0),
                reloads_rejected=int(getattr(st, "reloads_rejected", 0) or 0),
            )
        except Exception:  # noqa: BLE001 - a status never raises into the host
            _LOG.exception("cannot read the source's status")
            return SourceStatus(degraded=True)

    def _state(self, now: float, source: SourceStatus | None = None) -> str:
        """NOT_READY once closed; STALE when something is unreachable for longer than
        `stale_after_s`; DEGRADED when the source's last attempt failed or the handle
        serves a last-known-good version; else READY."""
        if self._closed:
            return NOT_READY
        if any(now - u.since >= self.stale_after_s for u in list(self._unreachable.values())):
            return STALE
        if source is None and hasattr(self.watcher, "is_degraded"):
            degraded = bool(self.watcher.is_degraded)  # cheap: no history read from disk
        else:
            found = source if source is not None else self._source_status()
            degraded = found is not None and found.degraded
        return DEGRADED if degraded else READY

    @property
    def state(self) -> str:
        """The state alone (cheap: no disk read), as in `status().state`."""
        return self._state(time.time())

    def unreachable(self, what: str, error: str = "") -> None:
        """A source or control plane (`what`: "source", "control") did not answer; called
        by the thread that follows it at each failed try. Once that has lasted
        `stale_after_s` the state is STALE and one STALE event is emitted."""
        now = time.time()
        with self._lock:
            found = self._unreachable.get(what)
            if found is None:
                found = self._unreachable[what] = Unreachable(what=what, since=now, error=error)
            else:
                found.error = error
            tell = now - found.since >= self.stale_after_s and what not in self._stale_told
            if tell:
                self._stale_told.add(what)
        if tell:
            _LOG.error("%s unreachable for %.0f s: %s", what, now - found.since, error)
            self.emit(STALE, reason=f"{what} unreachable since {found.since:.3f}: {error}")

    def reachable(self, what: str) -> None:
        """`what` answered again; the first answer after STALE emits READY (or DEGRADED's
        state with a READY event, as OpenFeature's provider does on recovering)."""
        with self._lock:
            if self._unreachable.pop(what, None) is None:
                return
            told = what in self._stale_told
            self._stale_told.discard(what)
        if told:
            self.emit(READY, reason=f"{what} reachable again")

    def emit(self, kind: str, **fields: Any) -> None:
        """Queue one event for the listeners (delivered on the event thread)."""
        if not self.events.listeners:
            return
        try:
            self.events.put(LiveEvent(kind=kind, time=time.time(), state=self.state, **fields))
        except Exception:  # noqa: BLE001 - an event never stops a change
            _LOG.exception("cannot queue a %s event", kind)

    def on_event(self, fn: Callable[[LiveEvent], object]) -> None:
        """Also call `fn(event)` for every event from now on (on the event thread)."""
        self.events.listen(fn)

    # ── the Guard's other calls, on the active version ───────────────────────

    @property
    def guard(self) -> Guard:
        guard = self._active.guard
        assert guard is not None
        return guard

    def settle(self, decision: Decision, cost_usd: Any = None, tokens: int | None = None) -> bool:
        """`Guard.settle`: reservations made on one version settle after a swap (L-C4)."""
        return self.guard.settle(decision, cost_usd, tokens)

    def release(self, decision: Decision) -> bool:
        return self.guard.release(decision)

    def approve(self, decision: Decision, by: str, group: str, ttl: float = 300) -> Grant:
        """`Guard.approve`; grants bind the action, not the version, so they stay valid."""
        return self.guard.approve(decision, by, group, ttl)

    # ── change records and closing ───────────────────────────────────────────

    def record(self, action: str, **fields: Any) -> None:
        """Append one change record (L-U1) when a change log is configured, and queue the
        event it is (L-H2). `diagnostics` goes to the event only (the record counts them)."""
        diagnostics = fields.pop("diagnostics", None)
        self._event_for(action, fields, diagnostics)
        if self.changes is None:
            return
        row = {
            "time": time.time(),
            "seq": self._control.seq,
            "host": self.host,
            "action": action,
            **{k: v for k, v in fields.items() if v is not None},
        }
        row.setdefault("actor", "api")
        try:
            self.changes.write(row)
        except Exception:  # noqa: BLE001 - a change log failure never stops a change
            _LOG.exception("cannot write the change log")

    def _event_for(self, action: str, fields: dict[str, Any], diagnostics: Any) -> None:
        if not self.events.listeners:
            return
        kind = _EVENT_OF.get(action, CONTROL_CHANGED)
        if action == "activate" and fields.get("reason") == "start":
            kind = READY
        control = fields.get("control")
        self.emit(
            kind,
            from_digest=fields.get("from_digest"),
            to_digest=fields.get("to_digest"),
            reason=str(fields.get("reason") or ""),
            diagnostics=[str(d) for d in diagnostics or ()],
            diff=fields.get("diff"),
            control={"action": action, **(control if isinstance(control, dict) else {})},
        )

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run `fn` at `close` (watchers and subscribers register here)."""
        self._closers.append(fn)

    def close(self) -> None:
        """Stop what feeds this handle (watchers, subscribers); close an owned log. The
        state is NOT_READY from here on (decisions still answer, on the last version)."""
        self._closed = True
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # noqa: BLE001 - close the rest
                _LOG.exception("error while closing")
        if self._own_log and self.log is not None:
            self.log.close()
        if self._own_shadow_log and self.shadow_log is not None:
            self.shadow_log.close()
        if self.changes is not None:
            self.changes.close()
        self.events.close()

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _attempt_of(last: Mapping[str, Any]) -> AttemptStatus:
    """An attempt described as a dict (a source's own `status()`) as an `AttemptStatus`."""
    return AttemptStatus(
        ok=bool(last.get("ok")),
        source_digest=str(last.get("source_digest") or ""),
        digest=last.get("digest") if isinstance(last.get("digest"), str) else None,
        stage_failed=last.get("stage_failed")
        if isinstance(last.get("stage_failed"), str)
        else None,
        diagnostics=[str(d) for d in last.get("diagnostics") or ()],
        duration_ms=float(last.get("duration_ms") or 0.0),
    )


def _canary_only(ctl: Control) -> Canary | None:
    """The canary, when it is all that is on (no kill switch, no shadow, no abort
    thresholds: those need the general route of `_controlled`)."""
    canary = ctl.canary
    if canary is None or ctl.switches or ctl.shadow is not None or canary.guard is not None:
        return None
    return canary


def _canary_router(stable: Any, candidate: Any, canary: Canary, guarded: bool) -> Any:
    """`stable` or `candidate` (a version's `decide`, or with `guarded` its `check`) by the
    request's key: the whole cost of a plain canary (L-AC4), so the key path is read inline,
    the cohort of a key seen before is one dict lookup, and the call passes its arguments
    as they are (a `*args` wrapper alone costs 0.13 us). Anything that is not a plain dict,
    or a key that is not a str or int, stays with the stable version, which reads (or
    refuses) it itself."""
    cohorts, takes, key = canary.cohort, canary.takes, canary.key
    head, rest = key[0], key[1:]
    second = rest[0] if len(rest) == 1 else None  # the usual `session.id`, read unrolled

    def keyed(request: dict[str, Any]) -> Any:
        value: Any = request.get(head)
        for part in rest:
            value = value.get(part) if type(value) is dict else None
        return value

    def takes_key(value: Any) -> bool:
        kind = type(value)
        if kind is not str and kind is not int:
            return False  # anything else stays stable (L-N1)
        inside = cohorts.get(value)
        return takes(value) if inside is None else inside

    def decide(request: Any, state: Snapshot | None = None) -> Decision:
        if type(request) is dict:
            if second is not None:
                outer = request.get(head)
                value = outer.get(second) if type(outer) is dict else None
            else:
                value = keyed(request)
            kind = type(value)
            if kind is str or kind is int:
                inside = cohorts.get(value)
                if inside is None:
                    inside = takes(value)
                if inside:
                    answer: Decision = candidate(request, state)
                    return answer
        kept: Decision = stable(request, state)
        return kept

    def check(request: Any) -> Decision:
        if type(request) is dict and takes_key(keyed(request)):
            answer: Decision = candidate(request)
            return answer
        kept: Decision = stable(request)
        return kept

    return check if guarded else decide
