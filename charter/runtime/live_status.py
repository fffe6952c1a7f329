"""What a `Live` handle reports about itself: `LiveStatus` (L-H1) and `LiveEvent` (L-H2).

`LiveStatus` is a msgspec Struct, so `msgspec.json.encode(live.status())` is the JSON
`charter status`, `/status` and `state_dir/status.json` carry, with the same field names,
and `msgspec.json.decode(data, type=LiveStatus)` reads it back checked.

Events are OpenFeature's provider events: `READY`, `CONFIGURATION_CHANGED`, `ERROR`,
`STALE`, plus `CONTROL_CHANGED` and `CANARY_ABORTED`. They are queued by whatever caused them
(a swap, a rejected attempt, a kill switch, a canary's abort on the decision path) and
delivered by one `EventQueue` thread, so a listener never runs on a decision and a listener
that raises or blocks never stops the watcher.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Final

import msgspec

from charter.engine import ir

__all__ = [
    "CANARY_ABORTED",
    "CONFIGURATION_CHANGED",
    "CONTROL_CHANGED",
    "DEGRADED",
    "ERROR",
    "NOT_READY",
    "READY",
    "STALE",
    "ActiveStatus",
    "AttemptStatus",
    "CanaryStatus",
    "ControlStatus",
    "EventQueue",
    "KeptVersion",
    "LiveEvent",
    "LiveStatus",
    "ShadowStatus",
    "SourceStatus",
    "Unreachable",
    "WatcherStatus",
    "rule_diff",
]

_LOG = logging.getLogger("charter.live")

# States (L-H1).
NOT_READY: Final = "NOT_READY"
READY: Final = "READY"
DEGRADED: Final = "DEGRADED"
STALE: Final = "STALE"

# Events (L-H2); READY and STALE are both a state and the event of entering it.
CONFIGURATION_CHANGED: Final = "CONFIGURATION_CHANGED"
ERROR: Final = "ERROR"
CONTROL_CHANGED: Final = "CONTROL_CHANGED"
CANARY_ABORTED: Final = "CANARY_ABORTED"


class ActiveStatus(msgspec.Struct, kw_only=True):
    """The version that decides: policy digest, source digest, when and by whom."""

    digest: str
    source_digest: str | None = None
    name: str | None = None
    version: str | None = None
    generation: int = 0
    since: float = 0.0
    actor: str = ""
    source: str | None = None


class AttemptStatus(msgspec.Struct, kw_only=True):
    """The last gate attempt on the source (ok or the stage that failed, with diagnostics)."""

    ok: bool
    source_digest: str = ""
    digest: str | None = None
    at: float = 0.0
    stage_failed: str | None = None
    diagnostics: list[str] = msgspec.field(default_factory=list)
    tests: dict[str, int] = msgspec.field(default_factory=dict)
    properties: dict[str, int] = msgspec.field(default_factory=dict)
    duration_ms: float = 0.0


class KeptVersion(msgspec.Struct, kw_only=True):
    """One last-known-good version in `state_dir/versions` (L-K2)."""

    digest: str
    source_digest: str | None = None
    since: float | None = None
    until: float | None = None
    actor: str | None = None


class CanaryStatus(msgspec.Struct, kw_only=True):
    """A running canary: the candidate, its share and key, and the guard's counts."""

    digest: str
    percent: float
    key: str
    salt: str
    guarded: bool = False
    compared: int = 0
    loosened: int = 0
    tightened: int = 0
    stable_errors: int = 0
    candidate_errors: int = 0
    aborted: str | None = None


class ShadowStatus(msgspec.Struct, kw_only=True):
    """A shadow version: decisions per cohort and divergences by `old->new` effect."""

    digest: str
    decisions: dict[str, int] = msgspec.field(default_factory=dict)
    divergence: dict[str, int] = msgspec.field(default_factory=dict)
    changed_rules: int = 0


class ControlStatus(msgspec.Struct, kw_only=True):
    """Kill switches applied, and what the control source last said."""

    seq: int = 0
    remote_seq: int = 0
    source: str | None = None  # e.g. "redis:charter:" or "file:/etc/charter/control.json"
    last_sync: float | None = None
    kill_switches: list[dict[str, Any]] = msgspec.field(default_factory=list)
    pending: list[str] = msgspec.field(default_factory=list)


class WatcherStatus(msgspec.Struct, kw_only=True):
    """The thread that follows the source."""

    path: str
    backend: str  # inotify | poll (what watchfiles uses)
    last_event_at: float | None = None
    errors: int = 0


class Unreachable(msgspec.Struct, kw_only=True):
    """A source or control plane that has not answered since `since`."""

    what: str  # "source" | "control"
    since: float
    error: str = ""


class SourceStatus(msgspec.Struct, kw_only=True):
    """What a source feeding a handle (a watched directory) adds to its status."""

    degraded: bool = False
    last_attempt: AttemptStatus | None = None
    history: list[KeptVersion] = msgspec.field(default_factory=list)
    pinned: str | None = None
    pinned_source: str | None = None  # the source digest the pin holds off
    watcher: WatcherStatus | None = None
    reloads_ok: int = 0
    reloads_rejected: int = 0
    command_seq: int = 0  # the last `state_dir/pin.json` command applied
    command_error: str | None = None  # why that command was refused


class LiveStatus(msgspec.Struct, kw_only=True):
    """`Live.status()` (L-H1). `state`: NOT_READY (nothing active), READY, DEGRADED
    (serving, but the last attempt failed or it started on a last-known-good version) or
    STALE (the source or the control plane unreachable for longer than `stale_after_s`;
    a snapshot read from disk whose `updated_at` is that old: its host is gone)."""

    state: str
    active: ActiveStatus | None
    updated_at: float
    host: str = ""
    pid: int = 0
    stale_after_s: float = 10.0
    unreachable: list[Unreachable] = msgspec.field(default_factory=list)
    last_attempt: AttemptStatus | None = None
    history: list[KeptVersion] = msgspec.field(default_factory=list)
    pinned: str | None = None
    pinned_source: str | None = None
    canary: CanaryStatus | None = None
    shadow: ShadowStatus | None = None
    control: ControlStatus = msgspec.field(default_factory=ControlStatus)
    watcher: WatcherStatus | None = None
    reloads_ok: int = 0
    reloads_rejected: int = 0
    command_seq: int = 0
    command_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready builtins (what the JSON encoding holds)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def __getitem__(self, key: str) -> Any:
        """`status["state"]`, `status["active"]["digest"]`: the JSON form read by name, for
        callers written against the dict `status()` returned before it was a Struct."""
        return self.to_dict()[key]


class LiveEvent(msgspec.Struct, kw_only=True):
    """One event (L-H2). `kind`: READY, CONFIGURATION_CHANGED (`from_digest`, `to_digest`,
    `diff` by rule id), ERROR (`reason`, `diagnostics` of the rejected attempt), STALE
    (`reason` says what is unreachable), CONTROL_CHANGED (`control`: what was applied) or
    CANARY_ABORTED (`reason`, the counts in `control`). `state` is the handle's state then."""

    kind: str
    time: float
    state: str
    from_digest: str | None = None
    to_digest: str | None = None
    reason: str = ""
    diagnostics: list[str] = msgspec.field(default_factory=list)
    diff: dict[str, list[str]] | None = None
    control: dict[str, Any] | None = None


Listener = Callable[[LiveEvent], object]


class EventQueue:
    """Delivers events to listeners on one daemon thread, started with the first listener:
    `put` is a queue append (what the decision path pays when a canary aborts or a switch
    expires); a listener's exception is logged and the next one still runs."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        # events, markers `drain` waits on, and None to stop
        self._queue: queue.SimpleQueue[LiveEvent | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0  # events handed to every listener (tests wait on it)

    def listen(self, fn: Listener) -> None:
        """Call `fn(event)` for every event from now on (on the event thread)."""
        with self._lock:
            self.listeners.append(fn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="charter-live-events", daemon=True
                )
                self._thread.start()

    def put(self, event: LiveEvent) -> None:
        if self.listeners:
            self._queue.put(event)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            if isinstance(event, threading.Event):
                event.set()  # everything queued before the marker was delivered
                continue
            for fn in list(self.listeners):
                try:
                    fn(event)
                except Exception:  # noqa: BLE001 - one listener's bug stops nothing else
                    _LOG.exception("live event listener %r failed on %s", fn, event.kind)
            self.delivered += 1

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until every event queued so far was delivered; False on timeout."""
        if self._thread is None:
            return True
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout_s)

    def close(self, timeout_s: float = 2.0) -> None:
        """Deliver what is queued, then stop the thread (a blocked listener is left)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=timeout_s)


def rule_diff(old: ir.Policy, new: ir.Policy) -> dict[str, list[str]]:
    """What a swap changes, by rule id (L-U3): rules added, removed, changed (kind, stage,
    targets, condition, groups or shadow differ: a moved or reformatted rule with an
    `@id` is not a change), and the counters whose counts restart (an id the new version
    lacks: the ids are content-derived, so a changed limit keeps its count)."""

    def shape(rule: ir.Rule) -> str:
        return repr((rule.kind, rule.stage, rule.targets, rule.cond, rule.groups, rule.shadow))

    before = {r.id: shape(r) for r in old.rules}
    after = {r.id: shape(r) for r in new.rules}
    kept = {c.id for c in new.counters}
    return {
        "rules_added": [i for i in after if i not in before],
        "rules_removed": [i for i in before if i not in after],
        "rules_changed": [i for i in after if i in before and before[i] != after[i]],
        "counters_reset": list(dict.fromkeys(c.id for c in old.counters if c.id not in kept)),
    }
