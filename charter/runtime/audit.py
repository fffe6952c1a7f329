"""The decision log: one JSON object per line, appended, with PII in logged values masked.

A record carries the decision's metadata (`time`, `agent_id`, `session_id`, `trace_id`,
`stage`, `tool`, `effect`, `rules`, `reasons`, `latency_us`, `cost`, `policy`...) and the
values it was about (`args`, `result`, ...).  With masking on (the default), every string in
every field that the host could have supplied (all but `METADATA_FIELDS`) is run through the
stdlib PII and secret matchers and the policy's own matchers, so an e-mail address in `args`
or in a reason is logged as ``[EMAIL]``.

Every decision is logged: values that JSON cannot carry, or that are too deep, cyclic or
too big, are logged as placeholders naming why (`charter.runtime.audit_values`).

Records are schema v1 (`"v": 1`; docs/log.md): a Guard's records also carry a `replay` block
(`charter.runtime.capture`) from which `charter.runtime.replay` decides them again; `read`
refuses records of a version it does not know.

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
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Final

import msgspec

from charter.runtime.audit_values import Mask, Walk, loggable, unloggable
from charter.runtime.capture import VERSION, Capture
from charter.runtime.captured import read_paths
from charter.runtime.logs import logger

__all__ = ["METADATA_FIELDS", "VERSION", "AuditLog", "LogVersionError", "mask_record",
           "mask_value", "read", "read_lines"]

METADATA_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "v",
        "time",
        "stage",
        "effect",
        "allowed",
        "rules",
        "latency_us",
        "policy",
        "policy_digest",
        "approvers",
        "shadow",
        "labels",
    }
)
"""Fields logged unmasked: what the policy and the Guard made (effect, rule ids, policy
names, group and label names, latency), never anything the host sent. Ids, the tool name,
usage, reasons and warnings (which can carry the text of a request error) are masked."""

_MEMO_CHARS: Final = 200
_MEMO_SIZE: Final = 4096
_ENCODER = msgspec.json.Encoder(decimal_format="number")
# Decimals go out as JSON numbers and `read` brings them back as Decimal, so costs stay exact.
_DECODER = msgspec.json.Decoder(dict[str, object], float_hook=Decimal)

Matchers = Mapping[str, str]
"""A policy's own matchers, name -> RE2 pattern (`matcher employee_id = r"EMP-[0-9]{6}"`)."""


def mask_value(value: object, matchers: Matchers | None = None) -> object:
    """`value` as JSON-safe builtins with PII and secrets masked in every string inside it
    (dict keys included) and numbers that are card or phone numbers made masked strings;
    `matchers` adds a policy's own matchers. Unloggable parts become placeholders (see
    `charter.runtime.audit_values`).

    Raises `ImportError` if the stdlib matchers are unavailable: logging unmasked PII because
    a module is missing would be a silent leak.
    """
    return loggable(value, _masker(_user_key(matchers)))


def mask_record(
    record: Mapping[str, object],
    metadata: Collection[str] = METADATA_FIELDS,
    matchers: Matchers | None = None,
) -> dict[str, object]:
    """`record` made loggable, its non-metadata fields masked with `mask_value`. Never
    raises: without the matchers, masked fields are logged as placeholders."""
    try:
        mask = _masker(_user_key(matchers))
    except Exception as err:  # noqa: BLE001 - fail closed: log no value unmasked
        logger("charter.audit").error("cannot mask the decision log, logging placeholders: %r", err)
        return _record(record, metadata, None, f"masking unavailable ({type(err).__name__})")
    return _record(record, metadata, mask)


def _record(record: Mapping[str, object], metadata: Collection[str], mask: Mask | None,
            failure: str | None = None) -> dict[str, object]:
    """`record` made loggable: metadata as is, other fields masked with `mask`, or replaced
    by a placeholder naming `failure` when masking failed."""
    walk = Walk(mask)
    out: dict[str, object] = {}
    for key, value in record.items():
        name = key if isinstance(key, str) else f"<key of type {type(key).__qualname__}>"
        if mask is None and name not in metadata and failure is not None:
            out[name] = unloggable(failure)
        else:
            out[name] = walk.field(value, masked=name not in metadata)
    return out


class LogVersionError(ValueError):
    """A decision log record of a schema version this Charter does not read."""


class AuditLog:
    """Append-only JSON-lines decision log at `path` (created if missing, mode 0600).

    `mask=False` logs values verbatim. `replay` (on by default) adds to each record the
    Guard hands a `Capture` the block `charter.runtime.replay` re-decides it from;
    `hash_key` (bytes, the operator's secret) also keeps HMAC-SHA256 of every masked value
    in that block, so that equality rules on masked fields replay (docs/log.md).

    `write` never fails because of a record's content; when the file cannot take the line
    (closed, disk full...), it counts the failure in `failures`, keeps it in `last_error`,
    and raises. With `required=True` the Guard denies
    any action whose decision it could not log. Thread-safe; several processes may append
    to the same file. Use as a context manager or call `close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mask: bool = True,
        *,
        fsync: bool = False,
        required: bool = False,
        metadata: Collection[str] = METADATA_FIELDS,
        replay: bool = True,
        hash_key: bytes | None = None,
    ) -> None:
        if hash_key is not None and (not isinstance(hash_key, bytes) or len(hash_key) < 16):
            raise ValueError("hash_key must be bytes, at least 16 of them (a secret)")
        self.path = os.fspath(path)
        self.mask = mask
        self.replay = replay
        self.hash_key = hash_key
        self.fsync = fsync
        self.required = required
        self.failures = 0
        self.last_error: Exception | None = None
        self._metadata = frozenset(metadata)
        self._lock = threading.Lock()
        self._torn = False  # a failed write may have left part of a line
        self._described: set[str] = set()  # digests whose ``reads`` this handle wrote
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._end_torn_line()

    def write(self, record: Mapping[str, object], *, matchers: Matchers | None = None,
              capture: Capture | None = None) -> None:
        """Append one record (`time` and `v` fields are added if missing), masked with the
        stdlib PII and secret matchers and `matchers`, a policy's own; with `capture` (and
        `replay`), its replay block too. Raises `ValueError` when the log is closed and
        `OSError` when the file fails, never for what the record holds."""
        line, described = self._line(record, matchers, capture)
        with self._lock:
            try:
                if self._fd is None:
                    raise ValueError("write to a closed AuditLog")
                if self._torn:
                    _write_all(self._fd, b"\n")
                    self._torn = False
                self._torn = True
                _write_all(self._fd, line)
                self._torn = False
                if described is not None:
                    self._described.add(described)
                if self.fsync:
                    os.fsync(self._fd)
            except (OSError, ValueError) as err:
                self.failures += 1
                self.last_error = err
                raise

    def _line(self, record: Mapping[str, object], matchers: Matchers | None,
              capture: Capture | None = None) -> tuple[bytes, str | None]:
        """The record's line, and the digest whose ``reads`` it carries (if any)."""
        try:
            data = dict(record)
        except Exception as err:  # noqa: BLE001 - still log that there was a decision
            data = {"record": unloggable(f"a record that raised {type(err).__name__}")}
        data.setdefault("time", time.time())
        data.setdefault("v", VERSION)
        # The mask, found once for the record and its block.
        mask: Mask | None = None
        failed: Exception | None = None
        if self.mask:
            try:
                mask = _masker(_user_key(matchers))
            except Exception as err:  # noqa: BLE001 - fail closed: log no value unmasked
                logger("charter.audit").error(
                    "cannot mask the decision log, logging placeholders: %r", err)
                failed = err
        block = None
        if capture is not None and self.replay:
            block = self._replay(capture, mask, failed)
        shared: dict[str, object] = {}
        if block is not None and capture is not None and self.mask and "error" not in block:
            # Payloads the block holds whole were masked with the same mask: not twice.
            shared = capture.shared(block, data)
            for name in shared:
                del data[name]
        if not self.mask:
            data = _record(data, (), None)
        elif failed is not None:
            data = _record(data, self._metadata, None,
                           f"masking unavailable ({type(failed).__name__})")
        else:
            data = _record(data, self._metadata, mask)
        data.update(shared)
        described = None
        if block is not None:
            data["replay"] = block
            if capture is not None and "error" not in block:
                described = self._describe(block, data, capture)
        try:
            return _ENCODER.encode(data) + b"\n", described
        except Exception as err:  # noqa: BLE001 - `loggable` should make this unreachable
            return _ENCODER.encode({"time": time.time(), "record": unloggable(
                f"a record that could not be encoded ({type(err).__name__})")}) + b"\n", None

    def _describe(self, block: dict[str, object], data: Mapping[str, object],
                  capture: Capture) -> str | None:
        """In the first block this handle writes for a policy version, the paths its
        blocks hold (``reads``), so that a replay can tell a key the request lacked from
        one never captured (`runtime.captured`); the digest to note once it is written."""
        digest = data.get("policy_digest")
        if not isinstance(digest, str) or digest in self._described:
            return None
        try:
            block["reads"] = read_paths(capture.policy)
        except Exception as err:  # noqa: BLE001 - without it replay is inconclusive, not wrong
            logger("charter.audit").error("cannot describe the replay capture: %r", err)
            return None
        return digest

    def _replay(self, capture: Capture, mask: Mask | None, failed: Exception | None
                ) -> dict[str, object]:
        """The replay block, masked with the record's `mask` (None: unmasked, or masking
        `failed`); a block naming the failure if it cannot be made (the record is still
        logged)."""
        err: Exception | None = failed
        if err is None:
            try:
                return capture.block(mask, self.hash_key)
            except Exception as raised:  # noqa: BLE001 - the decision is logged all the same
                err = raised
        return {"v": VERSION, "error": f"cannot capture the decision ({type(err).__name__})"}

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
            if not f.seekable():  # a pipe or a device: nothing to mend
                return
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
        assert self._fd is not None
        _write_all(self._fd, b"\n")


def read(path: str | os.PathLike[str]) -> Iterator[dict[str, object]]:
    """Yield the records of a decision log in order, skipping torn (unparseable) lines.
    Raises `LogVersionError` at a record of a schema version other than `VERSION`
    (records without `v` were written before schema v1 and are yielded as they are)."""
    for record, _ in read_lines(path):
        yield record


def read_lines(path: str | os.PathLike[str]) -> Iterator[tuple[dict[str, object], bytes]]:
    """`read`, each record with the line it was decoded from (a replay looks at the text
    to skip work, `runtime.replay`). Streams: one line in memory at a time."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if line.isspace():  # (what `not line.strip()` says, without a copy of the line)
                continue
            try:
                record = _DECODER.decode(line)
            except msgspec.DecodeError:
                continue
            v = record.get("v", VERSION)
            if v != VERSION:
                raise LogVersionError(
                    f"{os.fspath(path)}:{number}: decision log schema v{v} is not one this "
                    f"Charter reads (it reads v{VERSION}); upgrade Charter to read it")
            yield record, line


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _user_key(matchers: Matchers | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(matchers.items())) if matchers else ()


@functools.lru_cache(maxsize=64)
def _masker(user: tuple[tuple[str, str], ...]) -> Mask:
    """The mask of the log: stdlib PII and secrets, then the given user matchers, in one
    Scanner (built once per set of user matchers)."""
    # Imported lazily (and dynamically, so this module type-checks without them): the
    # runtime must load without the scanner until masking is actually used.
    matchers = importlib.import_module("charter.stdlib.matchers")
    scanner_mod = importlib.import_module("charter.stdlib.scanner")
    pii = matchers.resolve("pii.any")
    if not pii:
        raise ImportError("charter.stdlib has no pii.any matchers; cannot mask the log")
    # Credentials in logged arguments are as sensitive as PII.
    specs = [*pii, *(matchers.resolve("secrets.any") or ())]
    specs += [matchers.user_matcher(name, pattern) for name, pattern in user]
    scanner = scanner_mod.Scanner(specs)
    names = tuple(spec.name for spec in scanner.specs)

    # Field names, ids, tool names and reasons recur in every record: remember short texts
    # rather than scan them again (bounded; a race between threads only costs a rescan).
    seen: dict[str, str] = {}

    def mask(text: str) -> str:
        masked = seen.get(text)
        if masked is None:
            masked = scanner.redact(text, names)[0]
            if len(text) <= _MEMO_CHARS:
                if len(seen) >= _MEMO_SIZE:
                    seen.clear()
                seen[text] = masked
        return masked

    mask.memo = seen  # type: ignore[attr-defined]  # read as is by `runtime.capture_plan`
    return mask
