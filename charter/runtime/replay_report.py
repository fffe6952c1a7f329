"""What a new policy would have decided on logged traffic: `charter replay LOG --policy NEW`
(live-control-analysis.md Part C, issue 16).

Each decision record is re-decided with `runtime.replay.replay_record` (the record's replay
block: request, snapshot, verdicts, `now`) and classified: unchanged, changed effect (with
its transition, old effect -> new effect), changed rules (same effect, other rules or
reasons), inconclusive (NEW read a masked value the log cannot reconstruct, or a path the
logging policy never read so the block does not hold it, `runtime.captured`; listed by
pointer, never counted as changed) or not replayable. The report counts transitions, the
rules and tools behind them, and keeps a few examples of each. Records stream: memory is
the report's, not the log's.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.runtime.captured import Captures
from charter.runtime.policy import Policy
from charter.runtime.replay import ReplayError, Tally, replay_record, with_plain

__all__ = ["EFFECTS", "Report", "Sample", "report"]

EFFECTS = ("allow", "require_approval", "deny")
_STRICT = {"allow": 0, "require_approval": 1, "deny": 2}


@dataclass(frozen=True, slots=True)
class Sample:
    """One changed record, as the report shows it."""

    time: object
    trace_id: object
    tool: object
    agent: object
    old_effect: str
    new_effect: str
    old_rules: tuple[str, ...]
    new_rules: tuple[str, ...]
    new_reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "trace_id": self.trace_id,
            "tool": self.tool,
            "agent": self.agent,
            "old": {"effect": self.old_effect, "rules": list(self.old_rules)},
            "new": {
                "effect": self.new_effect,
                "rules": list(self.new_rules),
                "reasons": list(self.new_reasons),
            },
        }


@dataclass
class Report:
    """The counts of a replay. `matrix[(old, new)]` counts exactly replayed records by
    effect (the diagonal holds the unchanged and the changed-rules ones)."""

    policy: str
    digest: str
    tally: Tally = field(default_factory=Tally)
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    changed_rules: int = 0
    inconclusive_by_path: Counter[str] = field(default_factory=Counter)
    by_rule: dict[str, Counter[str]] = field(default_factory=dict)
    by_tool: Counter[str] = field(default_factory=Counter)
    old_digests: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    against: str | None = None  # the digest of the baseline policy, with `against=`
    baseline_mismatches: int = 0  # records the baseline did not reproduce (R-S1; expect 0)

    @property
    def changed_effect(self) -> int:
        return sum(n for (old, new), n in self.matrix.items() if old != new)

    @property
    def loosened(self) -> int:
        """Records that go from deny or approval to something less strict."""
        return sum(
            n for (old, new), n in self.matrix.items() if _STRICT.get(new, 2) < _STRICT.get(old, 2)
        )

    @property
    def tightened(self) -> int:
        return sum(
            n for (old, new), n in self.matrix.items() if _STRICT.get(new, 2) > _STRICT.get(old, 2)
        )

    def to_json(self) -> dict[str, Any]:
        t = self.tally
        return {
            "policy": {"name": self.policy, "digest": self.digest},
            "logged_digests": dict(self.old_digests),
            "totals": {
                "records": t.records,
                "replayed": t.records - t.not_replayable,
                "unchanged": t.same,
                "changed": t.changed,
                "changed_effect": self.changed_effect,
                "changed_rules": self.changed_rules,
                "inconclusive": t.inconclusive,
                "not_replayable": t.not_replayable,
                "loosened": self.loosened,
                "tightened": self.tightened,
                "baseline_mismatches": self.baseline_mismatches,
            },
            "against": self.against,
            "matrix": {f"{o}->{n}": c for (o, n), c in sorted(self.matrix.items())},
            "inconclusive_by_path": dict(self.inconclusive_by_path.most_common()),
            "by_rule": {r: dict(c) for r, c in sorted(self.by_rule.items())},
            "by_tool": dict(self.by_tool.most_common()),
            "samples": {k: [s.to_dict() for s in v] for k, v in sorted(self.samples.items())},
        }

    def render(self) -> str:
        """The text report: the counts line, the transition table, rules, tools, examples."""
        t = self.tally
        lines = [
            f"replayed {t.records - t.not_replayable:,} of {t.records:,} records "
            f"({t.not_replayable:,} not replayable): {t.same:,} the same, {t.changed:,} "
            f"changed, {t.inconclusive:,} inconclusive",
            f"policy {self.policy} {self.digest}"
            + (f"   (logged by {', '.join(sorted(self.old_digests))})" if self.old_digests else ""),
        ]
        if self.against is not None:
            lines.append(
                f"baseline {self.against}: {self.baseline_mismatches:,} records it does not "
                "reproduce (expected 0: a capture gap or non-determinism)"
            )
        effects = [*EFFECTS, *sorted({e for pair in self.matrix for e in pair} - set(EFFECTS))]
        width = max(len(e) for e in effects) + 2
        label = 4 + width
        lines.append("")
        lines.append("new:".rjust(label) + "".join(e.rjust(width) for e in effects))
        for old in effects:
            row = "".join(f"{self.matrix.get((old, new), 0):,}".rjust(width) for new in effects)
            lines.append(f"old {old}".ljust(label) + row)
        lines.append("")
        lines.append(f"same effect, different rules: {self.changed_rules:,}")
        lines.append(f"loosening (deny/approval -> less strict): {self.loosened:,}")
        lines.append(f"tightening: {self.tightened:,}")
        if self.inconclusive_by_path:
            top = ", ".join(f"{p}: {n:,}" for p, n in self.inconclusive_by_path.most_common(5))
            lines.append(f"inconclusive by path: {top}")
        if self.by_rule:
            lines.append("")
            lines.append("by rule (in one version's decision and not the other's)")
            for rule, counts in sorted(self.by_rule.items(), key=lambda kv: -sum(kv[1].values())):
                what = ", ".join(f"{k} {n:,}" for k, n in counts.most_common())
                lines.append(f"  {rule}: {what}")
        if self.by_tool:
            tools = " · ".join(f"{k} {n:,}" for k, n in self.by_tool.most_common(10))
            lines.append(f"by tool   {tools}")
        if self.samples:
            lines.append("")
            lines.append("samples")
            for key, samples in sorted(self.samples.items()):
                for s in samples:
                    lines.append(
                        f"  {key}  trace {s.trace_id} tool {s.tool} agent {s.agent}: old rules "
                        f"[{', '.join(s.old_rules)}] new rules [{', '.join(s.new_rules)}]"
                        + (f' "{s.new_reasons[0]}"' if s.new_reasons else "")
                    )
        return "\n".join(lines)


def report(
    records: Iterable[Mapping[str, Any]] | str | os.PathLike[str],
    policy: Policy,
    *,
    hash_key: bytes | None = None,
    samples: int = 3,
    against: Policy | None = None,
) -> Report:
    """Replay every decision record of a log (a path, or records) against `policy`.

    `against`: the policy that wrote the log; each record is first re-decided with it, and
    one it does not reproduce (effect or rules) is a baseline mismatch (R-S1)."""
    out = Report(policy.name, policy.digest, against=against.digest if against else None)
    tally = out.tally
    captures = Captures(policy, logged_by=against)
    for record, plain in with_plain(records):
        if record.get("event") is not None or "effect" not in record:
            continue
        tally.records += 1
        try:
            r = replay_record(record, policy, hash_key=hash_key, captures=captures, plain=plain)
        except ReplayError:
            tally.not_replayable += 1
            continue
        if against is not None:
            try:
                base = replay_record(
                    record, against, hash_key=hash_key, captures=captures, plain=plain
                )
                if not base.inconclusive and not base.same:
                    out.baseline_mismatches += 1
            except ReplayError:
                pass  # not replayable: counted above by the new policy's replay
        digest = record.get("policy_digest")
        if isinstance(digest, str):
            out.old_digests[digest] += 1
        lost = r.inconclusive
        if lost:
            tally.inconclusive += 1
            out.inconclusive_by_path.update(lost)
            continue
        new = r.decision
        out.matrix[(r.effect, new.effect)] += 1
        if r.same:
            tally.same += 1
            continue
        tally.changed += 1
        key = f"{r.effect}->{new.effect}"
        if r.effect == new.effect:
            out.changed_rules += 1
            key = f"{r.effect} (rules)"
        tool = record.get("tool")
        out.by_tool[str(tool)] += 1
        for rule in set(new.rules).symmetric_difference(r.rules):
            out.by_rule.setdefault(rule, Counter())[key] += 1
        kept = out.samples.setdefault(key, [])
        if len(kept) < samples:
            kept.append(
                Sample(
                    record.get("time"),
                    record.get("trace_id"),
                    tool,
                    record.get("agent_id"),
                    r.effect,
                    new.effect,
                    r.rules,
                    new.rules,
                    new.reasons,
                )
            )
    return out
