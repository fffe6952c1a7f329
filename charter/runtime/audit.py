"""The decision log: one JSON object per line, appended, with PII in logged values masked.

A record carries the decision's metadata (`time`, `agent_id`, `session_id`, `trace_id`,
`stage`, `tool`, `effect`, `rules`, `reasons`, `latency_us`, `cost`, `policy`...) and the
values it was about (`args`, `result`, ...).  With masking on (the default), every string in
every field that is not a metadata field is run through the stdlib PII and secret matchers,
so an e-mail address in `args` is logged as ``[EMAIL]``.

Each record is written with a single `write(2)` on a descriptor opened with `O_APPEND`, so
lines from several threads or processes never interleave; with ``fsync=True`` each record
is also flushed to disk before `write` returns, so it survives a host crash.  A crash can
still tear the very last line: `read` skips lines that do not parse.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Final

import msgspec

__all__ = ["METADATA_FIELDS", "AuditLog", "mask_record", "mask_value", "read"]

METADATA_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "time",
        "agent_id",
        "session_id",
        "trace_id",
        "stage",
        "tool",
        "effect",
        "allowed",
        "rules",
        "reasons",
        "latency_us",
        "cost",
        "tokens",
        "policy",
        "policy_digest",
        "approvers",
        "shadow",
        "warnings",
        "labels",
    }
)
"""Fields logged verbatim: ids and decision metadata, which masking would make useless."""

# Decimals go out as JSON numbers and `read` brings them back as Decimal, so costs stay exact.
_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=repr)
_DECODER = msgspec.json.Decoder(dict[str, object], float_hook=Decimal)


def mask_value(value: object) -> object:
    """A copy of `value` with PII and secrets masked in every string inside it (dict keys
    included; numbers that look like card or phone numbers become masked strings).

    Raises `ImportError` if the stdlib matchers are unavailable: logging unmasked PII because
    a module is missing would be a silent leak.
    """
    return _redactor()(value)


def mask_record(
    record: Mapping[str, object], metadata: Collection[str] = METADATA_FIELDS
) -> dict[str, object]:
    """A copy of `record` whose non-metadata fields are masked with `mask_value`."""
    return {k: v if k in metadata else mask_value(v) for k, v in record.items()}


class AuditLog:
    """Append-only JSON-lines decision log at `path` (created if missing, mode 0600).

    `mask=False` logs values verbatim.  Thread-safe; several processes may append to the
    same file.  Use as a context manager or call `close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mask: bool = True,
        *,
        fsync: bool = False,
        metadata: Collection[str] = METADATA_FIELDS,
    ) -> None:
        self.path = os.fspath(path)
        self.mask = mask
        self.fsync = fsync
        self._metadata = frozenset(metadata)
        self._lock = threading.Lock()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._end_torn_line()

    def write(self, record: Mapping[str, object]) -> None:
        """Append one record (a `time` field is added if missing)."""
        data = dict(record)
        data.setdefault("time", time.time())
        if self.mask:
            data = mask_record(data, self._metadata)
        line = _ENCODER.encode(data) + b"\n"
        with self._lock:
            if self._fd is None:
                raise ValueError("write to a closed AuditLog")
            _write_all(self._fd, line)
            if self.fsync:
                os.fsync(self._fd)

    def close(self) -> None:
        """Close the file; later writes raise `ValueError`."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _end_torn_line(self) -> None:
        # A crash may have left a partial last line; start on a fresh line so the next
        # record is not glued onto it and lost with it.
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
        assert self._fd is not None
        _write_all(self._fd, b"\n")


def read(path: str | os.PathLike[str]) -> Iterator[dict[str, object]]:
    """Yield the records of a decision log in order, skipping torn (unparseable) lines."""
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield _DECODER.decode(line)
            except msgspec.DecodeError:
                continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@functools.cache
def _redactor() -> Callable[[object], object]:
    # Imported lazily (and dynamically, so this module type-checks without them): the
    # runtime must load without the scanner until masking is actually used.
    matchers = importlib.import_module("charter.stdlib.matchers")
    scanner_mod = importlib.import_module("charter.stdlib.scanner")
    pii = matchers.resolve("pii.any")
    if not pii:
        raise ImportError("charter.stdlib has no pii.any matchers; cannot mask the log")
    # Credentials in logged arguments are as sensitive as PII.
    specs = tuple(pii) + tuple(matchers.resolve("secrets.any") or ())
    scanner = scanner_mod.Scanner(specs)
    names = tuple(spec.name for spec in specs)

    def redact(value: object) -> object:
        masked, _counts = scanner.redact(value, names)
        return masked

    return redact
