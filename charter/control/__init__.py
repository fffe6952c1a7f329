"""Live control that needs the compiler: the reload gate, the watched policy directory and
last-known-good versions (issue 16; docs/live.md). `charter.runtime.live.Live` is the
handle they feed; it swaps what it is given and never imports the compiler."""

from __future__ import annotations

from charter.control.directory import DirectoryWatcher, LiveError, Status, watch
from charter.control.gate import GateResult, SourceSnapshot, run_gate, snapshot
from charter.control.versions import VersionStore

__all__ = [
    "DirectoryWatcher",
    "GateResult",
    "LiveError",
    "SourceSnapshot",
    "Status",
    "VersionStore",
    "run_gate",
    "snapshot",
    "watch",
]
