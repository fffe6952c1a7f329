"""The gate a new policy version passes before it goes live (L-G1, L-G5).

snapshot (every file's bytes first, then nothing more is read) -> compile (all
diagnostics) -> every `test` block -> `property` blocks with a few examples and a seed
derived from the sources (reproducible). The first failing stage ends the attempt and
rejects the whole version: there is no partial acceptance. With `max_rule_drop` and the
active version as `against`, a version whose enforced rule count falls by more than that
fraction is rejected at stage `shrink` (L-G4) unless the change says `allow_shrink`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.compiler.pipeline import compile_sources
from charter.compiler.sources import discover, is_test_file
from charter.language.source import Source
from charter.runtime.policy import Policy
from charter.stdlib.digest import sha256

__all__ = ["GateResult", "SourceSnapshot", "enforced_rules", "run_gate", "snapshot"]

#: a file a deploy adds to a watched directory to let an intended shrink through (L-G4)
ALLOW_SHRINK_FILE = ".charter-allow-shrink"

#: property examples a live gate runs per property (the spec's default; 0 disables)
DEFAULT_PROPERTY_EXAMPLES = 25
_MAX_DETAILS = 40


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """The policy and test files of one directory as read at one moment."""

    directory: Path
    files: tuple[tuple[str, str], ...]  # (path as given to the compiler, text)
    source_digest: str  # over policy and test files: a test-only change re-runs the gate
    error: str | None = None  # why the directory could not be read

    @property
    def policy_sources(self) -> list[Source]:
        return [Source(n, t) for n, t in self.files if not is_test_file(Path(n))]

    @property
    def all_sources(self) -> list[Source]:
        return [Source(n, t) for n, t in self.files]


def snapshot(path: str | Path) -> SourceSnapshot:
    """Read the policy at `path` (a directory or a file) whole; never raises: a read error
    is the snapshot's `error`, which the gate reports as stage `read`."""
    directory = Path(path)
    h = sha256()
    try:
        names = discover(directory, include_tests=True)
        files = []
        for p in names:
            data = p.read_bytes()
            files.append((str(p), data.decode("utf-8")))
            h.update(p.name.encode() + b"\0" + data + b"\0")
    except (OSError, UnicodeDecodeError) as err:
        return SourceSnapshot(directory, (), "", f"cannot read the policy: {err}")
    error = (
        None
        if any(not is_test_file(Path(n)) for n, _ in files)
        else (f"no policy files in {directory}")
    )
    return SourceSnapshot(directory, tuple(files), h.hexdigest()[:16], error)


@dataclass
class GateResult:
    """One attempt: `policy` is set exactly when `ok`."""

    ok: bool
    source_digest: str
    policy: Policy | None = None
    stage_failed: str | None = None  # read | compile | shrink | tests | properties
    diagnostics: list[str] = field(default_factory=list)
    tests: tuple[int, int] = (0, 0)  # passed, failed
    properties: tuple[int, int] = (0, 0)
    seed: int = 0
    duration_ms: float = 0.0

    @property
    def reason(self) -> str:
        if self.ok:
            return "ok"
        head = f"gate failed at {self.stage_failed}"
        return head + (": " + self.diagnostics[0] if self.diagnostics else "")

    def summary(self) -> dict[str, object]:
        """The attempt for a change record or `status()` (no policy object)."""
        return {
            "ok": self.ok,
            "source_digest": self.source_digest,
            "digest": self.policy.digest if self.policy is not None else None,
            "stage_failed": self.stage_failed,
            "diagnostics": self.diagnostics,
            "tests": {"passed": self.tests[0], "failed": self.tests[1]},
            "properties": {
                "passed": self.properties[0],
                "failed": self.properties[1],
                "seed": self.seed,
            },
            "duration_ms": round(self.duration_ms, 2),
        }


def run_gate(
    source: str | Path | SourceSnapshot,
    *,
    tests: bool = True,
    properties: int = DEFAULT_PROPERTY_EXAMPLES,
    against: Policy | None = None,
    max_rule_drop: float | None = None,
    allow_shrink: bool = False,
) -> GateResult:
    """Compile a snapshot, run its tests and properties; never raises.

    `max_rule_drop` (a fraction, e.g. 0.5) with `against` (the version serving now) rejects
    a version that enforces that much fewer rules, unless `allow_shrink`: a deploy that lost
    half its files compiles and may pass its own tests, yet would open what it dropped."""
    start = time.perf_counter()
    snap = source if isinstance(source, SourceSnapshot) else snapshot(source)
    shrink = None if allow_shrink or against is None else max_rule_drop
    result = _gate(snap, tests, properties, against, shrink)
    result.duration_ms = (time.perf_counter() - start) * 1000
    return result


def enforced_rules(policy: Policy) -> int:
    """The rules `policy` enforces (shadow rules only log, so they do not count)."""
    return sum(1 for r in policy.rules if not r.shadow)


def _shrunk(policy: Policy, against: Policy, max_drop: float) -> str | None:
    """Why `policy` fails the shrink guard against `against`, or None."""
    old, new = enforced_rules(against), enforced_rules(policy)
    if old == 0 or (old - new) / old <= max_drop:
        return None
    return (
        f"enforced rules fell from {old} ({against.digest}) to {new}: "
        f"{(old - new) / old:.0%} fewer, more than the {max_drop:.0%} max_rule_drop allows; "
        f"if the shrink is intended, pass --allow-shrink (or add {ALLOW_SHRINK_FILE} to a "
        "watched directory)"
    )


def _gate(
    snap: SourceSnapshot,
    tests: bool,
    properties: int,
    against: Policy | None = None,
    max_drop: float | None = None,
) -> GateResult:
    if snap.error is not None:
        return GateResult(False, snap.source_digest, stage_failed="read", diagnostics=[snap.error])
    try:
        comp = compile_sources(snap.policy_sources)
        if comp.errors or comp.compiled is None:
            return GateResult(
                False,
                snap.source_digest,
                stage_failed="compile",
                diagnostics=[d.render(comp.sources.get(d.span.file)) for d in comp.errors][
                    :_MAX_DETAILS
                ]
                or ["the policy did not compile"],
            )
        policy = Policy(comp.compiled)
    except Exception as err:  # noqa: BLE001 - a compiler crash rejects, never activates
        return GateResult(
            False,
            snap.source_digest,
            stage_failed="compile",
            diagnostics=[f"internal compiler error: {err!r}"],
        )
    seed = int(snap.source_digest[:8] or "0", 16)
    why = None if against is None or max_drop is None else _shrunk(policy, against, max_drop)
    if why is not None:
        return GateResult(
            False, snap.source_digest, stage_failed="shrink", diagnostics=[why], seed=seed
        )
    if not tests and properties <= 0:
        return GateResult(True, snap.source_digest, policy, seed=seed)
    try:
        return _tests(snap, policy, tests, properties, seed)
    except Exception as err:  # noqa: BLE001 - a runner crash rejects, never activates
        return GateResult(
            False,
            snap.source_digest,
            stage_failed="tests",
            diagnostics=[f"internal error while testing: {err!r}"],
        )


def _tests(
    snap: SourceSnapshot, policy: Policy, tests: bool, properties: int, seed: int
) -> GateResult:
    from charter.testing.cache import hypothesis_in_cache
    from charter.testing.runner import run_property, run_test
    from charter.testing.suite import load_sources

    files = [Path(n) for n, _ in snap.files]
    unit = load_sources(files, snap.all_sources)
    if unit.errors or unit.policy is None:
        return GateResult(
            False,
            snap.source_digest,
            stage_failed="compile",
            diagnostics=[d.render(unit.comp.sources.get(d.span.file)) for d in unit.errors][
                :_MAX_DETAILS
            ],
            seed=seed,
        )
    passed = failed = 0
    details: list[str] = []
    if tests:
        passed, failed = _tally("test", (run_test(unit, t) for t in unit.tests()), details)
    if failed:
        return GateResult(
            False,
            snap.source_digest,
            stage_failed="tests",
            diagnostics=details[:_MAX_DETAILS],
            tests=(passed, failed),
            seed=seed,
        )
    p_ok = p_bad = 0
    if properties > 0 and unit.properties():
        with hypothesis_in_cache():
            runs = (run_property(unit, p, seed, properties, unit.biases())
                    for p in unit.properties())
            p_ok, p_bad = _tally("property", runs, details)
    if p_bad:
        return GateResult(
            False,
            snap.source_digest,
            stage_failed="properties",
            diagnostics=details[:_MAX_DETAILS],
            tests=(passed, 0),
            properties=(p_ok, p_bad),
            seed=seed,
        )
    return GateResult(
        True, snap.source_digest, policy, tests=(passed, 0), properties=(p_ok, 0), seed=seed
    )


def _tally(kind: str, results: Iterable[Any], details: list[str]) -> tuple[int, int]:
    """(passed, failed) of test or property results; each failure's lines go to `details`."""
    ok = bad = 0
    for r in results:
        if r.status == "pass":
            ok += 1
        else:
            bad += 1
            details += [f"{kind} {r.name!r} ({r.location}) {r.status}", *r.details]
    return ok, bad
