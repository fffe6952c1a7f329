"""Kill switches shared by the processes of one host through a file (L-X5).

`control.json` holds `{"seq": n, "switches": [...]}`; a write takes an exclusive lock on
`control.json.lock`, changes one switch, bumps `seq` and replaces the file by tmp+rename
(readers never see half a file, and concurrent writers never lose each other's switch).
Each `FileControl` attached to a `Live` watches the file's directory with `watchfiles`
(with a timeout every `poll_interval_s` as a backstop) and applies a state whose `seq` is
newer than the one applied.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from charter.runtime.live import KillSwitch, Live
from charter.stdlib.files import replace_file

__all__ = ["FileControl"]

_LOG = logging.getLogger("charter.live")


class FileControl:
    """Kill switches in the file at `path`; `attach(live)` keeps a handle in sync."""

    def __init__(
        self, path: str | os.PathLike[str], poll_interval_s: float = 1.0, step_ms: int = 10
    ) -> None:
        self.path = Path(path)
        self.poll_interval_s = poll_interval_s
        self.step_ms = step_ms
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()
        self.name = f"file:{self.path}"
        self.last_sync: float | None = None  # when the file was last read whole

    def read(self) -> tuple[int, list[KillSwitch]]:
        """(seq, switches); a missing file is (0, []). Raises ValueError for a file that is
        not a control state (the caller keeps what it has)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0, []
        except (OSError, ValueError) as err:
            raise ValueError(f"{self.path}: not a control state ({err})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: not a control state (not an object)")
        switches = [KillSwitch.from_dict(d) for d in data.get("switches") or ()]
        return int(data.get("seq") or 0), switches

    def _update(self, change: Callable[[list[KillSwitch]], list[KillSwitch]]) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            seq, switches = self.read()
            data = {"seq": seq + 1, "switches": [s.to_dict() for s in change(switches)]}
            replace_file(self.path, json.dumps(data).encode())
            return seq + 1

    def kill(self, switch: KillSwitch) -> int:
        """Store one switch for every process; returns the new sequence number."""
        return self._update(lambda sw: [s for s in sw if s.id != switch.id] + [switch])

    def unkill(self, switch_id: str) -> int:
        return self._update(lambda sw: [s for s in sw if s.id != switch_id])

    def attach(self, live: Live, start: bool = True) -> FileControl:
        """Make `live` write its kills here and follow everyone else's."""
        self._live = live
        live.remote = self
        live.on_close(self.close)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sync()
        if start:
            self._thread = threading.Thread(
                target=self._run, name="charter-control-file", daemon=True
            )
            self._thread.start()
        return self

    def sync(self) -> bool:
        """Read the file and apply it if newer; push switches made here that it lacks."""
        live = self._live
        if live is None:
            return False
        try:
            seq, switches = self.read()
        except ValueError as err:
            _LOG.error("%s; keeping the kill switches applied", err)
            live.unreachable("control", str(err))
            return False
        self.last_sync = time.time()
        live.reachable("control")
        applied = live.apply_control(switches, seq)
        self.synced.set()
        live.push_pending((s.id for s in switches), self.kill)
        return applied

    def _run(self) -> None:
        import watchfiles

        while not self._stop.is_set():
            try:
                for _ in watchfiles.watch(
                    self.path.parent,
                    stop_event=self._stop,
                    step=self.step_ms,
                    debounce=200,
                    yield_on_timeout=True,
                    rust_timeout=int(self.poll_interval_s * 1000),
                    raise_interrupt=False,
                ):
                    self.sync()
            except Exception:  # noqa: BLE001 - keep following whatever happens
                _LOG.exception("watching %s failed; retrying", self.path)
                self._stop.wait(self.poll_interval_s)
                self.sync()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
