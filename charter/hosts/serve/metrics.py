"""Prometheus text exposition of the sidecar's metrics (spec hosts.md §4.5), without a
client library: a handful of counters and one histogram, written in the text format 0.0.4.

Names: `charter_decisions_total{effect,stage}`, `charter_decision_duration_seconds`
(histogram, buckets from 10 µs), `charter_store_errors_total{store}`,
`charter_approvals_total{state}`, `charter_policy_info{name,version,digest}` (= 1),
`charter_http_requests_total{route,code}`.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from typing import Final

__all__ = ["BUCKETS", "CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Upper bounds of the decision latency histogram, in seconds (10 µs to 1 s).
BUCKETS: Final = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0)

_HELP: Final = {
    "charter_decisions_total": ("counter", "Decisions made, by effect and stage."),
    "charter_decision_duration_seconds": ("histogram", "Time to decide one request."),
    "charter_store_errors_total": ("counter", "Decisions denied because the state store failed."),
    "charter_approvals_total": ("counter", "Approval tickets by what happened to them."),
    "charter_policy_info": ("gauge", "The policy being served."),
    "charter_http_requests_total": ("counter", "HTTP requests answered, by route and code."),
    "charter_reservations_total": ("counter", "Reservations settled or released."),
    "charter_policy_reloads_total": ("counter", "Policy reloads, by result."),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs) + "}"


class Metrics:
    """The sidecar's counters. Thread-safe; `render` is the `/metrics` body."""

    def __init__(self, store_kind: str = "memory") -> None:
        self.store_kind = store_kind
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0
        self._n = 0
        self.policy: tuple[str, str, str] = ("", "", "")

    def inc(self, name: str, *labels: tuple[str, str], by: int = 1) -> None:
        with self._lock:
            self._counts[(name, labels)] += by

    def decision(self, effect: str, stage: str, seconds: float, store_error: bool) -> None:
        """Count one decision and its latency."""
        with self._lock:
            self._counts[("charter_decisions_total", (("effect", effect), ("stage", stage)))] += 1
            if store_error:
                self._counts[("charter_store_errors_total", (("store", self.store_kind),))] += 1
            self._buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum += seconds
            self._n += 1

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        with self._lock:
            counts = sorted(self._counts.items())
            buckets, total, n = list(self._buckets), self._sum, self._n
        lines: list[str] = []
        by_name: dict[str, list[str]] = {}
        for (name, labels), value in counts:
            by_name.setdefault(name, []).append(f"{name}{_labels(labels)} {value}")
        name, version, digest = self.policy
        by_name["charter_policy_info"] = [
            "charter_policy_info"
            + _labels((("name", name), ("version", version), ("digest", digest)))
            + " 1"
        ]
        hist = "charter_decision_duration_seconds"
        running = 0
        rows = []
        for bound, count in zip((*BUCKETS, float("inf")), buckets, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            rows.append(f'{hist}_bucket{{le="{le}"}} {running}')
        rows += [f"{hist}_sum {total!r}", f"{hist}_count {n}"]
        by_name[hist] = rows
        for name in sorted(by_name):
            kind, text = _HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *by_name[name]]
        return ("\n".join(lines) + "\n").encode("utf-8")
