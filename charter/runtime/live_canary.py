"""When a guarded canary aborts on its own (L-N6): thresholds over what both versions
decided on the same requests, judged once `min_samples` requests were compared. These are
thresholds, not a statistical test.

- loosening: stable deny or approval -> candidate allow (0 by default: the first one aborts);
- tightening: stable allow -> candidate deny or approval (2 % by default);
- request errors: the candidate's share of decisions with request errors minus the stable
  version's, on the same requests (0.5 percentage points by default);
- latency: the candidate's p99 over the stable version's, both timed as the pure `decide`
  of the version that did not serve the request (the same kind of call on both sides, never
  a Guard check against a pure decision), over the last `LATENCY_WINDOW` of each (2x by
  default; judged every `LATENCY_EVERY` comparisons once each side has `LATENCY_MIN`), and
  only when the candidate's p99 is above `latency_floor_us` (50 us): a pure decide takes a
  microsecond or two, and at that scale a p99 is the scheduler's noise, not the policy's
  (two identical versions measured 0.7 us against 2.9 us p99 on a loaded 2-CPU machine;
  without the floor five identical canaries out of five aborted within 2,400 requests).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from charter.engine.decision import Decision

__all__ = ["LATENCY_WINDOW", "CanaryGuard", "CanaryStats", "judge"]

LATENCY_WINDOW: Final = 1000  # timings kept per side
LATENCY_MIN: Final = 200  # timings each side needs before latency is judged
LATENCY_EVERY: Final = 100  # comparisons between two latency judgements (a p99 sorts)
_STRICTNESS: Final = {"allow": 0, "require_approval": 1, "deny": 2}


@dataclass(frozen=True, slots=True)
class CanaryGuard:
    """When to abort a canary on its own (L-N6). `max_loosen`: the share of compared
    requests the candidate makes less strict (0 aborts on the first one); `max_tighten`: the
    share it makes stricter; `max_error_delta`: how much higher its request-error share may
    be (0.005 = 0.5 percentage points); `max_latency_ratio`: its p99 over the stable one's,
    judged only once the candidate's p99 exceeds `latency_floor_us`. None turns a threshold
    off. Shares are judged once `min_samples` requests were compared."""

    min_samples: int = 500
    max_loosen: float = 0.0
    max_tighten: float = 0.02
    max_error_delta: float | None = 0.005
    max_latency_ratio: float | None = 2.0
    latency_floor_us: float = 50.0

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1; found {self.min_samples}")
        for name in ("max_loosen", "max_tighten", "max_error_delta"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} is a share between 0 and 1; found {value}")
        if not self.latency_floor_us >= 0:
            raise ValueError(f"latency_floor_us is >= 0; found {self.latency_floor_us}")
        ratio = self.max_latency_ratio
        if ratio is not None and not ratio >= 1:
            raise ValueError(f"max_latency_ratio is at least 1 (a ratio of p99s); found {ratio}")

    @classmethod
    def parse(cls, text: str) -> CanaryGuard:
        """The CLI form `loosen=0,tighten=2%,errors=0.5pp,latency=2x,min=500` (any subset;
        `off` disables errors or latency). Raises ValueError naming the part it cannot read."""
        values: dict[str, float | int | None] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            key, raw = key.strip(), raw.strip().lower()
            if not sep or not raw:
                raise ValueError(f"canary guard: {part!r} is not KEY=VALUE")
            try:
                if key == "min":
                    values["min_samples"] = int(raw)
                elif key in ("loosen", "tighten"):
                    values[f"max_{key}"] = _share(raw, "%")
                elif key == "errors":
                    values["max_error_delta"] = None if raw == "off" else _share(raw, "pp")
                elif key == "latency":
                    values["max_latency_ratio"] = (
                        None if raw == "off" else float(raw.removesuffix("x"))
                    )
                else:
                    raise ValueError(f"unknown key {key!r} (loosen, tighten, errors, latency, min)")
            except ValueError as err:
                raise ValueError(f"canary guard: {part!r}: {err}") from None
        return cls(**values)  # type: ignore[arg-type]


def _share(raw: str, unit: str) -> float:
    """`2%`, `0.5pp` (percent and percentage points are both /100) or a plain share."""
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%|pp)?", raw)
    if match is None:
        raise ValueError(f"not a share: {raw!r} (like 0.02, 2% or 0.5pp)")
    number = float(match.group(1))
    return number / 100 if match.group(2) else number


@dataclass(slots=True)
class CanaryStats:
    """What a guarded canary has seen: requests compared, loosened, tightened, with request
    errors on each side, and the latest timings of each side (nanoseconds)."""

    compared: int = 0
    loosened: int = 0
    tightened: int = 0
    stable_errors: int = 0
    candidate_errors: int = 0
    stable_ns: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    candidate_ns: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    aborted: str | None = None  # why, once it tripped

    def p99(self, side: deque[int]) -> int:
        ordered = sorted(side)
        return ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)]


def judge(
    guard: CanaryGuard,
    stats: CanaryStats,
    stable: Decision,
    candidate: Decision,
    took_ns: int | None = None,
    timed_candidate: bool = True,
) -> str | None:
    """Count one compared request; the reason to abort, or None. `took_ns`: how long the
    pure decide of the version that did not serve it took (`timed_candidate`: that was the
    candidate)."""
    stats.compared += 1
    before = _STRICTNESS.get(stable.effect, 2)
    after = _STRICTNESS.get(candidate.effect, 2)
    if after < before:
        stats.loosened += 1
    elif after > before:
        stats.tightened += 1
    if stable.errors:
        stats.stable_errors += 1
    if candidate.errors:
        stats.candidate_errors += 1
    if took_ns is not None:
        (stats.candidate_ns if timed_candidate else stats.stable_ns).append(took_ns)
    n = stats.compared
    if stats.loosened and guard.max_loosen <= 0:
        return f"the candidate loosened {stats.loosened} request(s)"
    if n < guard.min_samples:
        return None
    if stats.loosened / n > guard.max_loosen:
        return f"loosened {stats.loosened} of {n} requests"
    if stats.tightened / n > guard.max_tighten:
        return f"tightened {stats.tightened} of {n} requests"
    delta = guard.max_error_delta
    if delta is not None and (stats.candidate_errors - stats.stable_errors) / n > delta:
        return (
            f"request errors on {stats.candidate_errors} of {n} requests with the candidate, "
            f"{stats.stable_errors} with the stable version"
        )
    ratio = guard.max_latency_ratio
    if (
        ratio is not None
        and n % LATENCY_EVERY == 0
        and len(stats.candidate_ns) >= LATENCY_MIN
        and len(stats.stable_ns) >= LATENCY_MIN
    ):
        slow, base = stats.p99(stats.candidate_ns), stats.p99(stats.stable_ns)
        if slow > guard.latency_floor_us * 1000 and slow > ratio * max(base, 1):
            return (
                f"candidate p99 {slow / 1000:.1f} us > {ratio:g}x stable p99 {base / 1000:.1f} us"
            )
    return None
