"""Decision logs in OPA's field names (spec hosts.md §6.3), for receivers built for OPA.

`charter serve --opa-log PATH` writes one JSON object per decision, per line (and
`--opa-log-url URL` uploads them in batches, as OPA's decision-log plugin does):
`decision_id` (the one the HTTP answer carries), `timestamp` (RFC 3339), `path`
(`charter/decision`), `input` (the request, PII and secrets masked as in Charter's own
log), `result` (the decision), `bundles` (`{policy name: {"revision": digest}}`), `labels`
(`id` of this sidecar, `app`, `version`), `trace_id` / `span_id` (from the caller's
`traceparent`), `requested_by` (the peer), `metrics` (`timer_charter_decide_ns`), `masked`
(JSON Pointers of the input values the masking changed), `erased` (none), `req_id`.
A write that fails is reported on the `charter.serve` logger; it never changes a decision.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["OPADecisionLog", "masked_pointers"]

_ENCODER = msgspec.json.Encoder(decimal_format="number")
_LOG = logging.getLogger("charter.serve")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def masked_pointers(original: object, masked: object, at: str = "/input") -> list[str]:
    """JSON Pointers of the strings (or numbers made strings) that masking changed."""
    if isinstance(original, Mapping) and isinstance(masked, Mapping):
        out: list[str] = []
        for k, v in original.items():
            key = str(k)
            if key in masked:
                out += masked_pointers(v, masked[key], f"{at}/{_escape(key)}")
            else:  # the key itself was masked
                out.append(f"{at}/{_escape(key)}")
        return out
    if isinstance(original, list | tuple) and isinstance(masked, list | tuple):
        out = []
        for i, (a, b) in enumerate(zip(original, masked, strict=False)):
            out += masked_pointers(a, b, f"{at}/{i}")
        return out
    if isinstance(masked, str) and original != masked:
        return [at]
    return []


class OPADecisionLog:
    """Append OPA-shaped decision events to `path` (JSON lines) and/or upload them to `url`
    as OPA does: gzip'd JSON arrays POSTed by a background thread every `every` seconds,
    retried with exponential back-off while the receiver fails; at most `buffer` events
    wait (the oldest are dropped, and counted in `dropped`, beyond that)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        version: str = "",
        *,
        url: str | None = None,
        every: float = 1.0,
        buffer: int = 10_000,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.instance = uuid.uuid4().hex
        self.version = version
        self._lock = threading.Lock()
        self._seq = 0
        self._fd = (
            os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if self.path is not None
            else None
        )
        self.url = url
        self.every = every
        self.buffer = buffer
        self.dropped = 0
        self.uploaded = 0
        self._pending: list[bytes] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if url is not None:
            self._thread = threading.Thread(
                target=self._upload_loop, daemon=True, name="charter-opa-log"
            )
            self._thread.start()

    def _upload_loop(self) -> None:
        import gzip
        import urllib.request

        delay = self.every
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                delay = self.every
                continue
            body = gzip.compress(b"[" + b",".join(batch) + b"]")
            req = urllib.request.Request(
                str(self.url),
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as answer:  # noqa: S310
                    answer.read()
                self.uploaded += len(batch)
                delay = self.every
            except Exception as err:  # noqa: BLE001 - keep the events, try again later
                _LOG.warning(
                    "cannot upload %d OPA decision events to %s: %s", len(batch), self.url, err
                )
                with self._lock:
                    self._pending = batch + self._pending
                    self._trim()
                delay = min(max(delay * 2, 0.5), 30.0)

    def _trim(self) -> None:
        over = len(self._pending) - self.buffer
        if over > 0:
            del self._pending[:over]
            self.dropped += over

    def write(
        self,
        *,
        decision_id: str,
        decision: Mapping[str, Any],
        request: object,
        matchers: Mapping[str, str],
        elapsed_ns: int,
        peer: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Log one decision. Never raises."""
        try:
            from charter.runtime.audit import mask_value

            masked = mask_value(request, matchers)
            info = decision.get("policy") or {}
            with self._lock:
                self._seq += 1
                seq = self._seq
            event: dict[str, object] = {
                "decision_id": decision_id,
                "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                "path": "charter/decision",
                "input": masked,
                "result": decision,
                "bundles": {str(info.get("name") or "policy"): {"revision": info.get("digest")}},
                "labels": {"id": self.instance, "app": "charter", "version": self.version},
                "requested_by": peer or "",
                "metrics": {"timer_charter_decide_ns": elapsed_ns},
                "masked": masked_pointers(request, masked),
                "erased": [],
                "req_id": seq,
            }
            parts = (traceparent or "").split("-")
            if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
                event["trace_id"], event["span_id"] = parts[1], parts[2]
            data = _ENCODER.encode(event)
            with self._lock:
                if self._fd is not None:
                    os.write(self._fd, data + b"\n")
                if self.url is not None:
                    self._pending.append(data)
                    self._trim()
        except Exception as err:  # noqa: BLE001 - the decision stands; say the log failed
            _LOG.error("cannot write the OPA decision log %s: %s", self.path, err)

    def flush(self) -> None:
        """Ask the uploader to send what waits now."""
        self._wake.set()

    def close(self) -> None:
        """Stop uploading (one last try for what waits) and close the file."""
        if self._thread is not None:
            self._wake.set()
            self._stop.set()
            self._thread.join(15)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
