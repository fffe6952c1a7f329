"""A policy directory as the source of a `Live` handle (L-S1, L-K1, L-K2).

`watch(path, state_dir=...)` gates the directory, serves it (or, when it fails, the newest
last-known-good version from `state_dir`), and keeps a `watchfiles` watcher thread on the
directory (and its parent when the path is a symlink, so a `current -> releases/7` swap
arrives). Every event, and a timeout every `poll_interval_s` as a backstop, takes a
snapshot; a snapshot whose source digest is the active one or the last rejected one is not
gated again. A version that fails the gate is never served: the active version stays, the
reason goes to the `charter.live` logger, `status()` and the change log.

With a `state_dir` the watcher also follows the operator commands the CLI writes there
(`pin.json`: rollback, unpin) and keeps the handle's status in `status.json`
(`charter.control.commands`), so `charter status / rollback / unpin --state-dir` reach a
running host without a control endpoint.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.control.commands import COMMAND_FILE, read_command, read_status, write_status
from charter.control.gate import (
    ALLOW_SHRINK_FILE,
    DEFAULT_PROPERTY_EXAMPLES,
    GateResult,
    run_gate,
    snapshot,
)
from charter.control.manifest import manifest_problem
from charter.control.versions import VersionStore
from charter.runtime.live import Live, LiveError
from charter.runtime.live_status import (
    AttemptStatus,
    KeptVersion,
    LiveEvent,
    SourceStatus,
    WatcherStatus,
)

__all__ = ["DirectoryWatcher", "LiveError", "Status", "watch"]

_LOG = logging.getLogger("charter.live")
NOT_READY_STAGE = "not_ready"  # a start under manifest mode before the manifest matches


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
        state_dir: str | os.PathLike[str] | None = None,
        require_manifest: bool = False,
        max_rule_drop: float | None = None,
    ) -> None:
        self.live = live
        #: L-G4: reject a version enforcing this fraction fewer rules than the active one
        self.max_rule_drop = max_rule_drop
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.path = Path(path)
        self.versions = versions
        self.tests = tests
        self.properties = properties
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.poll_interval_s = poll_interval_s
        self.force_polling = force_polling
        #: L-G6: gate only a directory its `.charter-manifest.json` describes exactly
        self.require_manifest = require_manifest
        self.not_ready: str | None = None  # why, while the manifest does not match
        self.degraded = False
        self.last: GateResult | None = None
        #: the source as last read is the one served (False after a failed attempt)
        self.current = True
        self._rejected: str | None = None  # source digest of the last rejected attempt
        self._shrink_rejected: str | None = None  # ... when the shrink guard rejected it
        self.reloads_ok = 0
        self.reloads_rejected = 0
        #: the source digest a rollback pinned against: that source is not activated again
        self.pinned: str | None = None
        self.pinned_digest: str | None = None  # the policy digest the rollback activated
        self.command_seq = 0  # the last `pin.json` command applied
        self.command_error: str | None = None  # why the last command was refused
        self._command_problem: str | None = None  # a malformed pin.json, reported once
        self._source_error: str | None = None  # the read error already reported
        self.last_event_at: float | None = None
        self.last_attempt_at = time.time()
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def actor(self) -> str:
        return f"file:{self.path}"

    @property
    def is_degraded(self) -> bool:
        """Serving, but the last attempt failed or the handle started on a last-known-good."""
        return self.degraded or not self.current

    def start(self) -> None:
        if self.state_dir is not None:
            # A change (a kill, a canary...) shows in status.json at once, not at the next tick.
            self.live.on_event(self._changed)
        self._thread = threading.Thread(
            target=self._run, name=f"charter-watch {self.path}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the watcher thread; the last status.json then says NOT_READY (stopped), so a
        host that stopped cleanly is told from one that died (whose status goes STALE)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self.write_status()

    def _run(self) -> None:
        import watchfiles

        paths = [self.path]
        if self.path.is_symlink():
            paths.append(self.path.parent)  # a link swap changes the parent, not the target
        if self.state_dir is not None:
            paths.append(self.state_dir)  # the CLI's commands (pin.json)
        default = watchfiles.DefaultFilter()
        state = self.state_dir.resolve() if self.state_dir is not None else None

        def wanted(change: watchfiles.Change, where: str) -> bool:
            p = Path(where)
            if state is not None and p.parent.resolve() == state:
                # Of the state dir only the command file: the host writes the rest itself.
                return p.name == COMMAND_FILE
            return default(change, where)

        self.tick()  # a command written while the host was down, and the first status
        while not self._stop.is_set():
            try:
                for changes in watchfiles.watch(
                    *paths,
                    watch_filter=wanted,
                    stop_event=self._stop,
                    step=self.step_ms,
                    debounce=self.debounce_ms,
                    yield_on_timeout=True,
                    rust_timeout=int(self.poll_interval_s * 1000),
                    force_polling=self.force_polling,
                    ignore_permission_denied=True,
                    raise_interrupt=False,
                ):
                    if changes:
                        self.last_event_at = time.time()
                    self.tick()
            except Exception:  # noqa: BLE001 - a vanished directory: wait and watch again
                self.errors += 1
                _LOG.exception("watching %s failed; retrying", self.path)
                self.tick()
                self._stop.wait(self.poll_interval_s)

    def tick(self) -> None:
        """One round of the watcher thread: apply a new operator command, gate the source if
        it changed, write the status (the heartbeat `charter status` reads)."""
        try:
            self.follow_commands()
            self.reload()
        finally:
            self.write_status()

    def follow_commands(self) -> bool:
        """Apply the state dir's command if its seq is above the last applied (L-K3 from the
        CLI); True when one was applied. A refused command is one change record."""
        if self.state_dir is None:
            return False
        try:
            cmd = read_command(self.state_dir)
        except ValueError as err:
            if str(err) != self._command_problem:
                self._command_problem = str(err)
                _LOG.error("%s; no command applied", err)
                self.live.record("command_rejected", actor="cli", reason=str(err))
            return False
        self._command_problem = None
        if cmd is None or cmd.seq <= self.command_seq:
            return False
        self.command_error = None
        try:
            if cmd.action == "rollback":
                self.rollback(cmd.to, actor=cmd.actor or "cli", reason=cmd.reason)
            else:
                self.unpin(actor=cmd.actor or "cli")  # its gate may take a while
        except LiveError as err:
            self.command_error = str(err)
            _LOG.error("%s refused: %s", cmd.action, err)
            self.live.record(
                "command_rejected",
                actor=cmd.actor or "cli",
                reason=f"{cmd.action} (seq {cmd.seq}): {err}",
            )
        finally:
            # Applied only once done: the CLI waits for this seq in status.json and then
            # reports the version the command left active, not the one before.
            self.command_seq = cmd.seq
        return True

    def write_status(self) -> None:
        """Keep the handle's status in `state_dir/status.json` (never raises)."""
        if self.state_dir is None:
            return
        try:
            write_status(self.state_dir, self.live.status())
        except Exception:  # noqa: BLE001 - a status file never stops the watcher
            _LOG.exception("cannot write %s/status.json", self.state_dir)

    def _changed(self, event: LiveEvent) -> None:
        self.write_status()

    def reload(self) -> GateResult | None:
        """Gate the directory as it is now and activate it if it passes; None when its
        sources are the active ones or the last rejected ones (not gated again)."""
        with self._lock:
            snap = snapshot(self.path)
            if snap.error is not None:
                # Unreachable (gone, unreadable): STALE after `stale_after_s`. One reject
                # record per outage, not one per poll (nor per error text while a directory
                # is half gone); `status().unreachable` keeps the latest error.
                self.live.unreachable("source", snap.error)
                if self._source_error is not None:
                    return None
                self._source_error = snap.error
            else:
                self.live.reachable("source")
                self._source_error = None
            active = self.live.active.source_digest
            if snap.error is None and snap.source_digest == active:
                # The source is what is served (a broken edit reverted, a vanished directory
                # back): an earlier failed attempt no longer describes it.
                self.current = True
                self.degraded = False
            allow_shrink = (snap.directory / ALLOW_SHRINK_FILE).exists()
            retry = allow_shrink and snap.source_digest == self._shrink_rejected
            if (
                snap.error is None
                and snap.source_digest in (active, self._rejected, self.pinned)
                and not retry  # the operator has since said the rejected shrink is intended
            ):
                return None
            if self.require_manifest and snap.error is None:
                problem = manifest_problem(snap)
                if problem is not None:  # being copied: not ready, neither gated nor rejected
                    if problem != self.not_ready:  # once per reason, not at every poll
                        _LOG.info("policy %s not ready: %s", self.path, problem)
                    self.not_ready = problem
                    return None
                self.not_ready = None
            self.pinned = self.pinned_digest = None  # another source than the one rolled back from
            result = run_gate(
                snap,
                tests=self.tests,
                properties=self.properties,
                against=self.live.active.policy,
                max_rule_drop=self.max_rule_drop,
                allow_shrink=allow_shrink,
            )
            self.last = result
            self.current = result.ok
            self.last_attempt_at = time.time()
            self._shrink_rejected = snap.source_digest if result.stage_failed == "shrink" else None
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
                    diagnostics=result.diagnostics,
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
            self.pinned_digest = policy.digest
            source = meta.get("source_digest")
            self.live.activate(
                policy,
                source_digest=source if isinstance(source, str) else None,
                actor=actor,
                reason=reason or "rollback",
                action="rollback",
                pinned=self.pinned,
            )
            return policy.digest

    def unpin(self, *, actor: str = "api") -> GateResult | None:
        """End a rollback's pin (one `unpin` change record) and gate the source as it is
        now; a source that passes is then activated (its own `activate` record)."""
        with self._lock:
            was = self.pinned_digest
            self.pinned = self.pinned_digest = None
            self._rejected = None  # gate the source again: nothing stays off once unpinned
        if was is not None:
            self.live.record("unpin", actor=actor, from_digest=was)
        return self.reload()

    def resume(self, source_digest: str) -> None:
        """After a restart: commands already applied stay applied (their seq is read back
        from the last status.json), and a rollback's pin holds while the source is still
        the one rolled back from (a restart must not re-serve what an operator took off)."""
        if self.state_dir is None or self.versions is None:
            return
        try:
            prev = read_status(self.state_dir)
        except ValueError as err:
            _LOG.error("%s; starting without the previous pin", err)
            return
        if prev is None:
            return
        self.command_seq = prev.command_seq
        if prev.pinned is None or prev.pinned_source != source_digest:
            return
        if prev.pinned == self.live.active.digest:
            self.pinned, self.pinned_digest = prev.pinned_source, prev.pinned
            return
        kept = self.versions.load(prev.pinned)
        if kept is None:
            _LOG.error("pinned version %s is no longer kept; serving the source", prev.pinned)
            return
        policy, meta = kept
        self.pinned, self.pinned_digest = prev.pinned_source, policy.digest
        self.live.activate(
            policy,
            source_digest=_text(meta.get("source_digest")),
            actor="restart",
            reason="pinned by a rollback before the restart",
            action="rollback",
            pinned=self.pinned,
        )

    def source_status(self) -> SourceStatus:
        """What this watcher adds to `Live.status()` (L-H1): the last attempt, the kept
        versions (with `until`: when the next one took over), the pin, the watcher."""
        history: list[KeptVersion] = []
        if self.versions is not None:
            kept = self.versions.history()
            for i, h in enumerate(kept):
                since = h.get("since")
                until = kept[i + 1].get("since") if i + 1 < len(kept) else None
                history.append(
                    KeptVersion(
                        digest=str(h["digest"]),
                        source_digest=_text(h.get("source_digest")),
                        since=float(since) if isinstance(since, int | float) else None,
                        until=float(until) if isinstance(until, int | float) else None,
                        actor=_text(h.get("actor")),
                    )
                )
        last = None
        if self.last is not None:
            s = self.last.summary()
            last = AttemptStatus(
                ok=self.last.ok,
                source_digest=self.last.source_digest,
                digest=self.last.policy.digest if self.last.policy is not None else None,
                at=self.last_attempt_at,
                stage_failed=self.last.stage_failed,
                diagnostics=list(self.last.diagnostics),
                tests=dict(s["tests"]),  # type: ignore[call-overload]
                properties=dict(s["properties"]),  # type: ignore[call-overload]
                duration_ms=round(self.last.duration_ms, 2),
            )
        polling = self.force_polling or bool(os.environ.get("WATCHFILES_FORCE_POLLING"))
        return SourceStatus(
            degraded=self.is_degraded,
            last_attempt=last,
            history=history,
            pinned=self.pinned_digest,
            pinned_source=self.pinned,
            watcher=WatcherStatus(
                path=str(self.path),
                backend="poll" if polling else "inotify",
                last_event_at=self.last_event_at,
                errors=self.errors,
            ),
            reloads_ok=self.reloads_ok,
            reloads_rejected=self.reloads_rejected,
            command_seq=self.command_seq,
            command_error=self.command_error,
        )

    def status(self) -> Status:
        v = self.live.active
        return Status(
            "DEGRADED" if self.is_degraded else "READY",
            v.digest,
            v.source_digest,
            v.generation,
            self.last.summary() if self.last else None,
            self.reloads_ok,
            self.reloads_rejected,
            [s.to_dict() for s in self.live.switches],
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


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
    require_manifest: bool = False,
    max_rule_drop: float | None = None,
    **live: Any,
) -> Live:
    """A `Live` handle serving the policy directory at `path`, reloaded as it changes.

    At start the directory is gated; if it fails and `state_dir` holds a last-known-good
    version, that one is served (status DEGRADED); if neither, `LiveError`. Every activated
    version is kept in `state_dir/versions` and each change recorded in
    `state_dir/changes.jsonl`. `live` takes `Live`'s options (state, log, secret...).
    `handle.watcher` is the `DirectoryWatcher`; `handle.close()` stops it.
    `require_manifest`: gate the directory only when its `.charter-manifest.json` lists
    exactly its files with their hashes (L-G6, `charter.control.manifest`); until then it
    is not ready, at start as later. `max_rule_drop` (a fraction): a reload enforcing that
    much fewer rules than the active version is rejected at stage `shrink` unless the
    directory holds a `.charter-allow-shrink` file (L-G4); off by default."""
    versions = VersionStore(state_dir) if state_dir is not None else None
    if state_dir is not None and "changes" not in live:
        live["changes"] = Path(state_dir) / "changes.jsonl"
    if state_dir is not None and "control_file" not in live:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        live["control_file"] = Path(state_dir) / "control.json"
    t0 = time.perf_counter()
    snap = snapshot(Path(path))
    problem = manifest_problem(snap) if require_manifest and snap.error is None else None
    first = (
        run_gate(snap, tests=tests, properties=properties)
        if problem is None
        else GateResult(
            False, snap.source_digest, stage_failed=NOT_READY_STAGE, diagnostics=[problem]
        )
    )
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
        state_dir=state_dir,
        require_manifest=require_manifest,
        max_rule_drop=max_rule_drop,
    )
    watcher.last = first
    watcher.degraded = degraded
    watcher.current = first.ok
    if problem is not None:
        watcher.not_ready = problem  # gated once the manifest matches, same sources or not
    elif not first.ok:
        watcher._rejected = first.source_digest  # noqa: SLF001 - set up here, its own state
    handle.watcher = watcher
    watcher.resume(first.source_digest)
    handle.on_close(watcher.close)
    if start:
        watcher.start()
    _LOG.info(
        "live %s: %s in %.0f ms", path, handle.active.digest, (time.perf_counter() - t0) * 1000
    )
    return handle
