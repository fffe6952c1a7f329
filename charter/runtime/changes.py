"""The change log of a live policy handle: one JSON line per state change (L-U1).

Every activation, rejected attempt, rollback, kill, unkill, expiry, canary and shadow
change appends one record, flushed and fsynced before the call returns, so a record is
on disk even if the process is killed right after (`kill -9`)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["ChangeLog", "read_changes"]


class ChangeLog:
    """Append-only JSONL at `path`, one `write` per change, fsynced."""

    def __init__(self, path: str | os.PathLike[str], fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_changes(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a change log, oldest first (a torn last line is skipped)."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row
