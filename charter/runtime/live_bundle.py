"""Signed bundles as the source of a `Live` handle: a watched bundle file (L-S2), and the
part every bundle source shares (verify, activate or reject, keep the last good one).

A host that follows bundles loads compiled artifacts only: nothing here imports the
compiler or Lark, and no gate runs here (it ran where the bundle was built; its result is
in the manifest). What is checked is the bundle itself (`runtime.bundle.verify_bundle`);
a bundle that fails any step is never served: the active version stays, the reason goes
to the `charter.live` logger, the change log and `status()`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from charter.runtime.bundle import Bundle, BundleError, manifest_of, verify_bundle
from charter.runtime.live import Live, LiveError
from charter.runtime.live_status import AttemptStatus, KeptVersion, SourceStatus
from charter.stdlib.files import replace_file

__all__ = ["BundleFile", "BundleFollower", "bundle_digest", "watch_bundle"]

_LOG = logging.getLogger("charter.live")
LAST = "bundle.last"  # in state_dir: the last activated bundle's bytes (OPA's `persist`)
# The heartbeat `charter status --state-dir` reads (charter.control.commands.STATUS_FILE:
# the same name and encoding, written here because the runtime does not import control).
STATUS_FILE = "status.json"
KEPT = "bundles"  # in state_dir: the newest activated bundles, for a rollback
# The operator's command file `charter rollback / unpin --state-dir` writes
# (charter.control.commands.COMMAND_FILE: {"seq", "action", "to", "actor", "reason"}).
COMMAND_FILE = "pin.json"
KEEP = 5


def bundle_digest(data: bytes) -> str:
    """A bundle's name: SHA-256 of its bytes, 16 hex."""
    return hashlib.sha256(data).hexdigest()[:16]


class BundleFollower:
    """Offers bundle bytes to a `Live` handle: verified ones are activated, the rest
    rejected (never retried for the same bytes: a changed bundle always is)."""

    def __init__(
        self,
        keys: Mapping[str, Any] | None,
        *,
        allow_unsigned: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        origin: str = "bundle",
    ) -> None:
        self.keys = dict(keys or {})
        self.allow_unsigned = allow_unsigned
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.origin = origin
        self.live: Live | None = None
        self.active_bundle: str | None = None
        self._rejected: str | None = None
        self.last_attempt: AttemptStatus | None = None
        self.degraded = False
        self.reloads_ok = 0
        self.reloads_rejected = 0
        self._lock = threading.Lock()
        #: reads the source once and offers what it finds (set by the source that follows)
        self.pull: Callable[[], object] | None = None
        #: forget what the source last offered, so the next pull offers it again (unpin)
        self.reset: Callable[[], None] | None = None
        #: after a rollback: the source's bundle digest not to activate again (None: the
        #: source's own rule holds it, e.g. Redis applies only a newer seq)
        self.pinned: str | None = None
        self.pinned_digest: str | None = None  # the policy digest rolled back to
        self.command_seq = 0  # the last command of `state_dir/pin.json` applied
        self.command_error: str | None = None
        self._command_problem: str | None = None
        self._history: tuple[tuple[str, ...], list[KeptVersion]] | None = None

    def reload(self) -> AttemptStatus | None:
        """Read the source now (what `POST /v1/reload` asks): the attempt when something
        was offered, None when nothing new was there. A source that cannot be read is an
        attempt that failed at `read` (the active version stays)."""
        pull = self.pull
        if pull is None:
            return None
        before = self.last_attempt
        try:
            pull()
        except Exception as err:  # noqa: BLE001 - a reload never raises into the host
            return AttemptStatus(
                ok=False, at=time.time(), stage_failed="read", diagnostics=[str(err)]
            )
        return self.last_attempt if self.last_attempt is not before else None

    def verify(self, data: bytes) -> Bundle:
        return verify_bundle(data, self.keys, allow_unsigned=self.allow_unsigned)

    def actor_of(self, bundle: Bundle) -> str:
        """L-U2: a signed bundle's actor is its key; an unsigned one's is where it came from."""
        return f"key:{bundle.key_id}" if bundle.signed and bundle.key_id else self.origin

    def start(self, data: bytes | None, why: str = "", **live: Any) -> Live:
        """A handle serving `data` (None: nothing to read), or else the last bundle kept in
        `state_dir` (status DEGRADED). Raises `BundleError` when neither verifies."""
        refused: BundleError | None = None
        bundle: Bundle | None = None
        if data is not None:
            try:
                bundle = self.verify(data)
            except BundleError as err:
                refused = err
        if bundle is None:
            kept = self._kept()
            if kept is None:
                first = refused or BundleError("read", why or f"nothing to read from {self.origin}")
                where = f"in {self.state_dir}" if self.state_dir else "(no state_dir)"
                raise BundleError(
                    first.stage, f"{first.detail}; and no last-known-good bundle {where}"
                )
            bundle = kept
            self.degraded = True
            _LOG.error(
                "%s: %s; serving the last-known-good bundle %s",
                self.origin,
                refused or why,
                bundle.digest,
            )
        handle = Live(
            bundle.policy,
            source_digest=bundle.source_digest,
            actor="last-known-good" if self.degraded else self.actor_of(bundle),
            **live,
        )
        self.live = handle
        self.active_bundle = bundle.digest
        if refused is not None and data is not None:
            self._reject(data, refused)
        elif not self.degraded:
            self._keep(data or b"")
        handle.watcher = self
        self._resume()
        self.write_status()
        return handle

    def offer(self, data: bytes, *, reason: str = "reload", **record: Any) -> Bundle | None:
        """Verify `data` and activate it; None when it is the active bundle, the last
        rejected one, or refused now (then the active version keeps serving)."""
        live = self.live
        if live is None:
            raise RuntimeError("start() or attach a Live handle first")
        with self._lock:
            digest = bundle_digest(data)
            if digest in (self.active_bundle, self._rejected, self.pinned):
                return None
            self.pinned = self.pinned_digest = None  # another bundle than the one rolled back from
            t0 = time.perf_counter()
            try:
                bundle = self.verify(data)
            except BundleError as err:
                self._reject(data, err, **record)
                self.write_status()
                return None
            ms = (time.perf_counter() - t0) * 1000
            self._rejected = None
            self.degraded = False
            live.activate(
                bundle.policy,
                source_digest=bundle.source_digest,
                actor=self.actor_of(bundle),
                reason=reason,
                bundle=bundle.digest,
                key_id=bundle.key_id,
                builder=bundle.builder,
                source=self.origin,
                duration_ms=round(ms, 2),
                **record,
            )
            self.active_bundle = bundle.digest
            self.reloads_ok += 1
            self.last_attempt = AttemptStatus(
                ok=True,
                source_digest=bundle.source_digest,
                digest=bundle.policy_digest,
                at=time.time(),
                duration_ms=round(ms, 2),
            )
            self._keep(data)
            self.write_status()
            return bundle

    def _reject(self, data: bytes, err: BundleError, **record: Any) -> None:
        live = self.live
        digest = bundle_digest(data)
        self._rejected = digest
        self.reloads_rejected += 1
        self.last_attempt = AttemptStatus(
            ok=False,
            at=time.time(),
            stage_failed=err.stage,
            diagnostics=[f"bundle {digest}: {err.detail}"],
        )
        if live is None:
            return
        _LOG.error(
            "%s: bundle %s refused, %s stays active: %s",
            self.origin,
            digest,
            live.active.digest,
            err,
        )
        live.record(
            "reject",
            actor=self.origin,
            reason=str(err),
            from_digest=live.active.digest,
            stage_failed=err.stage,
            bundle=digest,
            source=self.origin,
            **record,
        )

    def _resume(self) -> None:
        """After a restart, commands already applied stay applied: their seq is read back
        from the last status.json (a rollback's pin does not survive a restart)."""
        if self.state_dir is None:
            return
        try:
            prev = msgspec.json.decode((self.state_dir / STATUS_FILE).read_bytes())
        except (OSError, msgspec.DecodeError):
            return
        if isinstance(prev, dict) and isinstance(prev.get("command_seq"), int):
            self.command_seq = prev["command_seq"]

    def follow_commands(self) -> bool:
        """Apply `state_dir/pin.json` when its seq is above the last applied (`charter
        rollback` / `charter unpin --state-dir`); True when one was applied. A refused
        command is one `command_rejected` change record and shows in the status."""
        live = self.live
        if self.state_dir is None or live is None:
            return False
        path = self.state_dir / COMMAND_FILE
        try:
            cmd = msgspec.json.decode(path.read_bytes())
            if not isinstance(cmd, dict) or not isinstance(cmd.get("seq"), int):
                raise ValueError("not a command")
            action, to = cmd.get("action"), cmd.get("to")
            if action not in ("rollback", "unpin") or not (to is None or isinstance(to, str)):
                raise ValueError(f"not a command (action {action!r})")
        except FileNotFoundError:
            return False
        except (OSError, ValueError, msgspec.DecodeError) as err:
            problem = f"{path}: {err}"
            if problem != self._command_problem:  # once, not at every tick
                self._command_problem = problem
                _LOG.error("%s; no command applied", problem)
                live.record("command_rejected", actor="cli", reason=problem)
            return False
        self._command_problem = None
        if cmd["seq"] <= self.command_seq:
            return False
        self.command_seq = cmd["seq"]
        self.command_error = None
        actor = str(cmd.get("actor") or "cli")
        try:
            if action == "rollback":
                self.rollback(to, actor=actor, reason=str(cmd.get("reason") or ""))
            else:
                self.unpin(actor=actor)
        except LiveError as err:
            self.command_error = str(err)
            _LOG.error("%s refused: %s", action, err)
            live.record(
                "command_rejected", actor=actor, reason=f"{action} (seq {cmd['seq']}): {err}"
            )
        self.write_status()
        return True

    def write_status(self) -> None:
        """Replace `state_dir/status.json` with the handle's status (tmp+rename; after
        every attempt and at each tick of the source's thread, so a host that stops
        updating it reads as STALE). Never raises."""
        live = self.live
        if self.state_dir is None or live is None:
            return
        path = self.state_dir / STATUS_FILE
        try:
            replace_file(path, msgspec.json.encode(live.status()), fsync=False)
        except Exception:  # noqa: BLE001 - a status file never stops the source
            _LOG.exception("cannot write %s", path)

    def _keep(self, data: bytes) -> None:
        """Keep the activated bundle in `state_dir` (tmp+rename), so a host can start on it
        when its source is unreachable, and among the newest `KEEP` for a rollback; both
        are verified again when read back."""
        if self.state_dir is None or not data:
            return
        digest = bundle_digest(data)
        try:
            _write(self.state_dir / LAST, data)
            kept = self._entries()
            if not kept or not kept[-1].stem.endswith("-" + digest):
                n = int(kept[-1].stem.split("-", 1)[0]) + 1 if kept else 1
                _write(self.state_dir / KEPT / f"{n:08d}-{digest}.bundle", data)
                for old in self._entries()[:-KEEP]:
                    old.unlink(missing_ok=True)
        except (OSError, ValueError):
            _LOG.exception("cannot keep bundle %s as last-known-good", digest)

    def _entries(self) -> list[Path]:
        where = self.state_dir / KEPT if self.state_dir is not None else None
        return sorted(where.glob("*.bundle")) if where is not None and where.is_dir() else []

    def history(self) -> list[KeptVersion]:
        """The kept bundles, oldest first (policy digest, source digest, since, actor)."""
        if self.state_dir is None:
            return []
        # Read once per change of the kept files: status() runs at every heartbeat.
        names = tuple(p.name for p in self._entries())
        if self._history is not None and self._history[0] == names:
            return self._history[1]
        rows = [
            KeptVersion(
                digest=str(h["digest"]),
                source_digest=h.get("source_digest"),
                since=h.get("since"),
                actor=h.get("actor") or self.origin,
            )
            for h in kept_bundles(self.state_dir)
        ]
        self._history = (names, rows)
        return rows

    def rollback(self, to: str | None = None, *, actor: str = "api", reason: str = "") -> str:
        """Activate a kept bundle (`to`: its policy or bundle digest, or a unique prefix;
        default the newest whose policy is not the active one), verified again, and pin
        it: the source's bundle as it is now is not activated again; another bundle from
        the source, or `unpin()`, ends the pin (L-K3). Returns the policy digest; raises
        `LiveError` when nothing kept matches or verifies."""
        live = self.live
        if live is None or self.state_dir is None:
            raise LiveError("rollback needs a state_dir with kept bundles")
        with self._lock:
            active = live.active.digest
            found: list[tuple[Path, dict[str, Any]]] = []
            for path in reversed(self._entries()):
                try:
                    m = manifest_of(path.read_bytes())
                except (OSError, BundleError):
                    continue
                policy = str(m.get("policy_digest") or "")
                name = path.stem.split("-", 1)[-1]
                if (to is None and policy != active) or (
                    to is not None and (policy.startswith(to) or name.startswith(to))
                ):
                    found.append((path, m))
            if not found:
                raise LiveError(
                    f"no kept bundle other than the active one ({active})"
                    if to is None
                    else f"no kept bundle {to} in {self.state_dir / KEPT}"
                )
            if to is not None and len({m.get("policy_digest") for _, m in found}) > 1:
                raise LiveError(f"{to!r} matches more than one kept bundle")
            data = found[0][0].read_bytes()
            try:
                bundle = self.verify(data)
            except BundleError as err:
                raise LiveError(
                    f"kept bundle {found[0][0].name} no longer verifies: {err}"
                ) from None
            self.pinned = self.current()
            self.pinned_digest = bundle.policy_digest
            live.activate(
                bundle.policy,
                source_digest=bundle.source_digest,
                actor=actor,
                reason=reason or "rollback",
                action="rollback",
                pinned=self.pinned,
                bundle=bundle.digest,
            )
            self.active_bundle = bundle.digest
        self.write_status()
        return bundle.policy_digest

    def current(self) -> str | None:
        """The digest of the source's bundle as it is now (what a rollback pins against);
        None for a source that needs no pin (Redis applies only a newer seq)."""
        return None

    def unpin(self, *, actor: str = "api") -> AttemptStatus | None:
        """End a rollback's pin (one `unpin` change record) and offer the source as it is
        now; a bundle that verifies is then activated (its own `activate` record)."""
        live = self.live
        with self._lock:
            was = self.pinned_digest
            self.pinned = self.pinned_digest = None
            self._rejected = None
        if was is not None and live is not None:
            live.record("unpin", actor=actor, from_digest=was)
            if self.reset is not None:
                self.reset()
        return self.reload()

    def _kept(self) -> Bundle | None:
        if self.state_dir is None:
            return None
        try:
            return self.verify((self.state_dir / LAST).read_bytes())
        except (OSError, BundleError) as err:
            _LOG.warning("no usable last-known-good bundle in %s: %s", self.state_dir, err)
            return None

    @property
    def is_degraded(self) -> bool:
        """Serving a last-known-good bundle, or the last bundle offered was refused."""
        return self.degraded or (self.last_attempt is not None and not self.last_attempt.ok)

    def source_status(self) -> SourceStatus:
        """What `Live.status()` shows of this source (L-H1)."""
        return SourceStatus(
            degraded=self.is_degraded,
            last_attempt=self.last_attempt,
            history=self.history(),
            pinned=self.pinned_digest,
            pinned_source=self.pinned,
            reloads_ok=self.reloads_ok,
            reloads_rejected=self.reloads_rejected,
            command_seq=self.command_seq,
            command_error=self.command_error,
        )


class BundleFile(BundleFollower):
    """One bundle file, watched like Envoy watches a file: replace it by a move (write
    beside it, then rename; `charter bundle -o` does), or swap a symlink to it. A `watchfiles`
    watcher on its directory, plus a stat check every `poll_interval_s` as a backstop,
    offers the file whenever it changed; an in-place write read half-way is refused like
    any broken bundle and the complete file that follows is offered again."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        keys: Mapping[str, Any] | None,
        *,
        allow_unsigned: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        poll_interval_s: float = 5.0,
        step_ms: int = 50,
        force_polling: bool | None = None,
    ) -> None:
        super().__init__(
            keys, allow_unsigned=allow_unsigned, state_dir=state_dir, origin=f"file:{path}"
        )
        self.path = Path(path)
        self.poll_interval_s = poll_interval_s
        self.step_ms = step_ms
        self.force_polling = force_polling
        self._seen: tuple[int, int, int] | None = None
        self._unreadable = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> bytes | None:
        try:
            st = os.stat(self.path)
            self._seen = (st.st_ino, st.st_size, st.st_mtime_ns)
            data = self.path.read_bytes()
        except OSError as err:
            if not self._unreadable:  # once, not at every event
                _LOG.error("cannot read bundle %s: %s", self.path, err)
            self._unreadable = True
            if self.live is not None:  # STALE after the handle's stale_after_s
                self.live.unreachable("source", f"cannot read {self.path}: {err}")
            return None
        self._unreadable = False
        if self.live is not None:
            self.live.reachable("source")
        return data

    def current(self) -> str | None:
        try:
            return bundle_digest(self.path.read_bytes())
        except OSError:
            return None

    def reload(self) -> AttemptStatus | None:
        """Offer the file as it is now: the attempt (`ok` or not, with the reason, as a
        directory watcher's `reload` answers), or None when the file is unreadable or its
        bytes are the active or the last refused bundle."""
        data = self.read()
        if data is None:
            return None
        before = self.last_attempt
        self.offer(data)
        return self.last_attempt if self.last_attempt is not before else None

    def _changed(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_ino, st.st_size, st.st_mtime_ns) != self._seen

    def start_watching(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"charter-bundle {self.path}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        import watchfiles

        state = self.state_dir.resolve() if self.state_dir is not None else None

        def wanted(change: watchfiles.Change, where: str) -> bool:
            # Of the state dir only the command file: the host's own writes there (status,
            # kept bundles) would wake it again at every tick.
            p = Path(where).resolve()
            return state is None or state not in (p, *p.parents) or p.name == COMMAND_FILE

        paths = [self.path.parent]
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            paths.append(self.state_dir)  # `charter rollback` writes its command there
        self.follow_commands()  # one written while the host was down
        while not self._stop.is_set():
            try:
                for changes in watchfiles.watch(
                    *paths,
                    watch_filter=wanted,
                    stop_event=self._stop,
                    step=self.step_ms,
                    yield_on_timeout=True,
                    rust_timeout=int(self.poll_interval_s * 1000),
                    force_polling=self.force_polling,
                    ignore_permission_denied=True,
                    raise_interrupt=False,
                ):
                    # An event anywhere in the directory (a rename into place, a symlink
                    # swap) or the backstop timeout: read the file if it is not as last read.
                    self.follow_commands()
                    if changes or self._changed():
                        self.reload()
                    self.write_status()  # the heartbeat, at least every poll_interval_s
            except Exception:  # noqa: BLE001 - a vanished directory: wait and watch again
                _LOG.exception("watching %s failed; retrying", self.path)
                self._stop.wait(self.poll_interval_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def watch_bundle(
    path: str | os.PathLike[str],
    *,
    keys: Mapping[str, Any] | None = None,
    allow_unsigned: bool = False,
    state_dir: str | os.PathLike[str] | None = None,
    poll_interval_s: float = 5.0,
    step_ms: int = 50,
    force_polling: bool | None = None,
    start: bool = True,
    **live: Any,
) -> Live:
    """A `Live` handle serving the bundle file at `path`, reloaded when it is replaced.

    `keys`: the key ring (`key_id` -> HMAC secret bytes or Ed25519 public key). At start a
    bundle that does not verify falls back to the last one kept in `state_dir` (status
    DEGRADED); with none, `BundleError`. `state_dir` also holds the change log and the
    kill-switch copy, as for `charter.control.watch`. `live`: `Live`'s options."""
    if state_dir is not None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        live.setdefault("changes", Path(state_dir) / "changes.jsonl")
        live.setdefault("control_file", Path(state_dir) / "control.json")
    source = BundleFile(
        path,
        keys,
        allow_unsigned=allow_unsigned,
        state_dir=state_dir,
        poll_interval_s=poll_interval_s,
        step_ms=step_ms,
        force_polling=force_polling,
    )
    handle = source.start(source.read(), f"cannot read {path}", **live)
    handle.on_close(source.close)
    if start:
        source.start_watching()
    return handle


def kept_bundles(state_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The bundles a bundle host keeps in `state_dir/bundles`, oldest first, in the rows of
    `charter history`: digest (the policy's), bundle, source_digest, since, actor."""
    where = Path(state_dir) / KEPT
    out: list[dict[str, Any]] = []
    for path in sorted(where.glob("*.bundle")) if where.is_dir() else []:
        try:
            m = manifest_of(path.read_bytes())
            since = path.stat().st_mtime
        except (OSError, BundleError):
            continue
        kid = m.get("key_id")
        out.append(
            {
                "digest": str(m.get("policy_digest") or ""),
                "bundle": path.stem.split("-", 1)[-1],
                "source_digest": str(m.get("source_digest") or "") or None,
                "since": since,
                "actor": f"key:{kid}" if isinstance(kid, str) and kid else None,
            }
        )
    return out


def _write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (tmp+rename, fsynced), making its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)
