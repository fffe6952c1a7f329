"""A policy directory as the source of a `Live` handle (L-S1, L-K1, L-K2).

`watch(path, state_dir=...)` gates the directory, serves it (or, when it fails, the newest
last-known-good version from `state_dir`), and keeps a `watchfiles` watcher thread on the
directory (and its parent when the path is a symlink, so a `current -> releases/7` swap
arrives). Every event, and a timeout every `poll_interval_s` as a backstop, takes a
snapshot; a snapshot whose source digest is the active one or the last rejected one is not
gated again. A version that fails the gate is never served: the active version stays, the
reason goes to the `charter.live` logger, `status()` and the change log.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.control.gate import DEFAULT_PROPERTY_EXAMPLES, GateResult, run_gate, snapshot
from charter.control.versions import VersionStore
from charter.runtime.live import Live

__all__ = ["DirectoryWatcher", "LiveError", "Status", "watch"]

_LOG = logging.getLogger("charter.live")


class LiveError(RuntimeError):
    """Nothing safe to serve: the source fails the gate and no last-known-good exists."""


@dataclass
class Status:
    """What a watched handle is serving and how the last attempt went (L-H1, abridged)."""

    state: str  # READY | DEGRADED
    digest: str
    source_digest: str | None
    generation: int
    last_attempt: dict[str, Any] | None = None
    reloads_ok: int = 0
    reloads_rejected: int = 0
    kill_switches: list[dict[str, Any]] = field(default_factory=list)


class DirectoryWatcher:
    """Gates and activates new versions of one policy directory into `live`."""

    def __init__(
        self,
        live: Live,
        path: str | os.PathLike[str],
        *,
        versions: VersionStore | None,
        tests: bool = True,
        properties: int = DEFAULT_PROPERTY_EXAMPLES,
        step_ms: int = 50,
        debounce_ms: int = 1600,
        poll_interval_s: float = 5.0,
        force_polling: bool | None = None,
    ) -> None:
        self.live = live
        self.path = Path(path)
        self.versions = versions
        self.tests = tests
        self.properties = properties
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.poll_interval_s = poll_interval_s
        self.force_polling = force_polling
        self.degraded = False
        self.last: GateResult | None = None
        self._rejected: str | None = None  # source digest of the last rejected attempt
        self.reloads_ok = 0
        self.reloads_rejected = 0
        #: the source digest a rollback pinned against: that source is not activated again
        self.pinned: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def actor(self) -> str:
        return f"file:{self.path}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"charter-watch {self.path}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import watchfiles

        paths = [self.path]
        if self.path.is_symlink():
            paths.append(self.path.parent)  # a link swap changes the parent, not the target
        while not self._stop.is_set():
            try:
                for _ in watchfiles.watch(
                    *paths,
                    stop_event=self._stop,
                    step=self.step_ms,
                    debounce=self.debounce_ms,
                    yield_on_timeout=True,
                    rust_timeout=int(self.poll_interval_s * 1000),
                    force_polling=self.force_polling,
                    ignore_permission_denied=True,
                    raise_interrupt=False,
                ):
                    self.reload()
            except Exception:  # noqa: BLE001 - a vanished directory: wait and watch again
                _LOG.exception("watching %s failed; retrying", self.path)
                self.reload()
                self._stop.wait(self.poll_interval_s)

    def reload(self) -> GateResult | None:
        """Gate the directory as it is now and activate it if it passes; None when its
        sources are the active ones or the last rejected ones (not gated again)."""
        with self._lock:
            snap = snapshot(self.path)
            active = self.live.active.source_digest
            if snap.error is None and snap.source_digest in (active, self._rejected, self.pinned):
                return None
            self.pinned = None  # a source other than the one rolled back from: gate it
            result = run_gate(snap, tests=self.tests, properties=self.properties)
            self.last = result
            if not result.ok or result.policy is None:
                self._rejected = snap.source_digest
                self.reloads_rejected += 1
                _LOG.error(
                    "policy %s rejected, %s stays active: %s",
                    self.path,
                    self.live.active.digest,
                    result.reason,
                )
                self.live.record(
                    "reject",
                    actor=self.actor,
                    reason=result.reason,
                    from_digest=self.live.active.digest,
                    **_attempt(result),
                )
                return result
            self._rejected = None
            if self.versions is not None:
                try:
                    self.versions.save(result.policy, result.source_digest, self.actor)
                except OSError:
                    _LOG.exception(
                        "cannot keep version %s as last-known-good", result.policy.digest
                    )
            self.degraded = False
            self.live.activate(
                result.policy,
                source_digest=result.source_digest,
                actor=self.actor,
                reason="reload",
                **_attempt(result),
            )
            self.reloads_ok += 1
            return result

    def rollback(self, to: str | None = None, *, actor: str = "api", reason: str = "") -> str:
        """Activate a kept version (`to`: a policy digest; default the one before the active
        one) without compiling, and pin it: the source as it is now is not activated again;
        a changed source, or `unpin()`, ends the pin (L-K3). Returns the digest; raises
        `LiveError` when there is nothing to roll back to."""
        if self.versions is None:
            raise LiveError("rollback needs a state_dir with kept versions")
        with self._lock:
            active = self.live.active.digest
            if to is None:
                older = [h["digest"] for h in self.versions.history() if h["digest"] != active]
                if not older:
                    raise LiveError(f"no kept version other than the active one ({active})")
                to = str(older[-1])
            kept = self.versions.load(to)
            if kept is None:
                raise LiveError(f"no kept version {to} in {self.versions.dir}")
            policy, meta = kept
            self.pinned = snapshot(self.path).source_digest or None
            source = meta.get("source_digest")
            self.live.activate(
                policy,
                source_digest=source if isinstance(source, str) else None,
                actor=actor,
                reason=reason or "rollback",
                pinned=self.pinned,
            )
            return policy.digest

    def unpin(self) -> GateResult | None:
        """End a rollback's pin and gate the source as it is now."""
        self.pinned = None
        return self.reload()

    def status(self) -> Status:
        v = self.live.active
        return Status(
            "DEGRADED" if self.degraded or (self.last and not self.last.ok) else "READY",
            v.digest,
            v.source_digest,
            v.generation,
            self.last.summary() if self.last else None,
            self.reloads_ok,
            self.reloads_rejected,
            [s.to_dict() for s in self.live.switches],
        )


def _attempt(result: GateResult) -> dict[str, Any]:
    s = result.summary()
    return {
        "stage_failed": s["stage_failed"],
        "diagnostics_count": len(result.diagnostics),
        "tests": s["tests"],
        "properties": s["properties"],
        "duration_ms": s["duration_ms"],
    }


def watch(
    path: str | os.PathLike[str],
    *,
    state_dir: str | os.PathLike[str] | None = None,
    tests: bool = True,
    properties: int = DEFAULT_PROPERTY_EXAMPLES,
    step_ms: int = 50,
    debounce_ms: int = 1600,
    poll_interval_s: float = 5.0,
    force_polling: bool | None = None,
    start: bool = True,
    **live: Any,
) -> Live:
    """A `Live` handle serving the policy directory at `path`, reloaded as it changes.

    At start the directory is gated; if it fails and `state_dir` holds a last-known-good
    version, that one is served (status DEGRADED); if neither, `LiveError`. Every activated
    version is kept in `state_dir/versions` and each change recorded in
    `state_dir/changes.jsonl`. `live` takes `Live`'s options (state, log, secret...).
    `handle.watcher` is the `DirectoryWatcher`; `handle.close()` stops it."""
    versions = VersionStore(state_dir) if state_dir is not None else None
    if state_dir is not None and "changes" not in live:
        live["changes"] = Path(state_dir) / "changes.jsonl"
    if state_dir is not None and "control_file" not in live:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        live["control_file"] = Path(state_dir) / "control.json"
    t0 = time.perf_counter()
    first = run_gate(Path(path), tests=tests, properties=properties)
    actor = f"file:{path}"
    if first.ok and first.policy is not None:
        handle = Live(first.policy, source_digest=first.source_digest, actor=actor, **live)
        if versions is not None:
            versions.save(first.policy, first.source_digest, actor)
        degraded = False
    else:
        kept = versions.newest() if versions is not None else None
        if kept is None:
            raise LiveError(
                f"{path}: {first.reason}; and no last-known-good version "
                f"{'in ' + str(state_dir) if state_dir else '(no state_dir)'}"
            )
        policy, meta = kept
        source = meta.get("source_digest")
        handle = Live(
            policy,
            source_digest=source if isinstance(source, str) else None,
            actor="last-known-good",
            **live,
        )
        _LOG.error(
            "policy %s rejected at start (%s); serving last-known-good %s",
            path,
            first.reason,
            policy.digest,
        )
        handle.record("reject", actor=actor, reason=first.reason, **_attempt(first))
        degraded = True
    watcher = DirectoryWatcher(
        handle,
        path,
        versions=versions,
        tests=tests,
        properties=properties,
        step_ms=step_ms,
        debounce_ms=debounce_ms,
        poll_interval_s=poll_interval_s,
        force_polling=force_polling,
    )
    watcher.last = first
    watcher.degraded = degraded
    if not first.ok:
        watcher._rejected = first.source_digest  # noqa: SLF001 - set up here, its own state
    handle.watcher = watcher
    handle.on_close(watcher.close)
    if start:
        watcher.start()
    _LOG.info(
        "live %s: %s in %.0f ms", path, handle.active.digest, (time.perf_counter() - t0) * 1000
    )
    return handle
