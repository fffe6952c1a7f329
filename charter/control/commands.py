"""Operator commands and status between a running host and the `charter` CLI, through the
host's state dir (L-K3, L-H1), with no control endpoint.

- `state_dir/pin.json`: the last command, `{"seq", "action": "rollback" | "unpin", "to",
  "actor", "reason", "time"}`. The CLI writes it under an exclusive `flock` on
  `pin.json.lock` (read the seq, write seq + 1, fsync, tmp+rename), so two operators never
  reuse a number and a reader never sees half a file. The host's watcher thread, which
  already watches the state dir for this file, applies a command whose `seq` is above the
  last one it applied, once: an old or replayed write never wins.
- `state_dir/status.json`: the host's `LiveStatus`, written (tmp+rename) after every change
  and at each watcher tick (every `poll_interval_s` at least), with `updated_at`. A reader
  that finds it older than its `stale_after_s` reports the host as STALE: it is gone or
  hung.

One state dir belongs to one host process (its versions, change log and commands).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import TypeVar

import msgspec

from charter.runtime.live_status import LiveStatus
from charter.stdlib.files import replace_file

__all__ = [
    "COMMAND_FILE",
    "STATUS_FILE",
    "Command",
    "read_command",
    "read_status",
    "write_command",
    "write_status",
]

COMMAND_FILE = "pin.json"
STATUS_FILE = "status.json"
ACTIONS = ("rollback", "unpin")


class Command(msgspec.Struct, kw_only=True):
    """One operator command for the host of a state dir."""

    seq: int
    action: str
    to: str | None = None
    actor: str = ""
    reason: str = ""
    time: float = 0.0


T = TypeVar("T")

_COMMAND = msgspec.json.Decoder(Command)
_STATUS = msgspec.json.Decoder(LiveStatus)
_write_lock = threading.Lock()


def read_command(state_dir: str | os.PathLike[str]) -> Command | None:
    """The last command (None when there is none); ValueError naming the file for one that
    is not a command (the host keeps what it has, and says so)."""
    path = Path(state_dir) / COMMAND_FILE
    cmd = _read(path, _COMMAND, "command")
    if cmd is not None and cmd.action not in ACTIONS:
        raise ValueError(f"{path}: action must be one of {', '.join(ACTIONS)}; found {cmd.action}")
    return cmd


def write_command(
    state_dir: str | os.PathLike[str],
    action: str,
    *,
    to: str | None = None,
    actor: str = "",
    reason: str = "",
) -> Command:
    """Write the next command (seq one above the last, under the lock); returns it."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}; found {action}")
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / (COMMAND_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            last = read_command(directory)
        except ValueError:
            last = None  # a torn or foreign file: replaced by a well-formed command
        try:
            shown = read_status(directory)
        except ValueError:
            shown = None
        # Above the host's applied one too, so a torn file never makes the next command old.
        seq = max(last.seq if last is not None else 0, shown.command_seq if shown else 0) + 1
        cmd = Command(seq=seq, action=action, to=to, actor=actor, reason=reason, time=time.time())
        replace_file(directory / COMMAND_FILE, msgspec.json.encode(cmd))
    return cmd


def write_status(state_dir: str | os.PathLike[str], status: LiveStatus) -> None:
    """Replace `state_dir/status.json` with `status` (readers see the old or the new one)."""
    with _write_lock:
        replace_file(Path(state_dir) / STATUS_FILE, msgspec.json.encode(status), fsync=False)


def read_status(state_dir: str | os.PathLike[str]) -> LiveStatus | None:
    """The status a host last wrote, None when no host has written one; ValueError for a
    file that is not a status."""
    return _read(Path(state_dir) / STATUS_FILE, _STATUS, "status")


def _read(path: Path, decoder: msgspec.json.Decoder[T], what: str) -> T | None:
    """The `what` in `path`, None when there is no such file; ValueError naming the file
    when it cannot be read or is not a `what`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ValueError(f"{path}: {err}") from None
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as err:
        raise ValueError(f"{path}: not a {what} ({err})") from None
