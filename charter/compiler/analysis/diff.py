"""Semantic diff of two policies: per (stage, tool), does NEW decide more or less permissively?

Effects are ordered deny < require_approval < allow. For every dispatch cell both policies
tell apart (the union of their tool names and tags), the two decisions are compared on the
points of the cell (the exact fragment over the fields either policy reads there): a cell is
`equivalent` when no point differs, `loosens` when some point gets a more permissive effect
from NEW and none a less permissive one, `tightens` the other way, and `changes` when both
happen. Cells whose rules are the same on both sides (ignoring ids, positions and reasons)
are equivalent without evaluation. Each non-equivalent verdict carries one witness per
direction, re-decided by the evaluators given; `status` is `proved` when every cell was
enumerated exactly, `sampled` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from charter.compiler.analysis.cells import STAGES, Cell, mentioned_tags, tag_sets, tool_names
from charter.compiler.analysis.findings import Decider
from charter.compiler.analysis.model import jsonable
from charter.compiler.analysis.regions import Regions
from charter.compiler.analysis.space import Facts, Point, space_of
from charter.engine import ir
from charter.engine.plan import TOOL_STAGES
from charter.engine.tree import DecisionTree

Verdict = Literal["equivalent", "tightens", "loosens", "changes"]
_RANK = {"deny": 0, "require_approval": 1, "allow": 2}


@dataclass(frozen=True)
class DiffWitness:
    """A request on which OLD and NEW decide differently (both evaluators agreeing)."""

    request: dict[str, Any]
    labels: tuple[str, ...]
    approved: tuple[str, ...]
    old: str
    new: str

    def to_json(self) -> dict[str, Any]:
        return {"request": jsonable(self.request),
                "snapshot": {"labels": list(self.labels), "approved_groups": list(self.approved)},
                "old": self.old, "new": self.new}


@dataclass(frozen=True)
class CellDiff:
    stage: str
    tool: str
    verdict: Verdict
    status: Literal["proved", "sampled"]
    loosen: DiffWitness | None = None
    tighten: DiffWitness | None = None

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "tool": self.tool, "verdict": self.verdict,
                "status": self.status,
                "loosen": self.loosen.to_json() if self.loosen else None,
                "tighten": self.tighten.to_json() if self.tighten else None}


@dataclass
class SemanticDiff:
    cells: list[CellDiff]
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    rules_changed: list[str] = field(default_factory=list)
    counters_reset: list[str] = field(default_factory=list)

    @property
    def loosens(self) -> bool:
        return any(c.verdict in ("loosens", "changes") for c in self.cells)

    def to_json(self) -> dict[str, Any]:
        return {"cells": [c.to_json() for c in self.cells], "loosens": self.loosens,
                "rules_added": self.rules_added, "rules_removed": self.rules_removed,
                "rules_changed": self.rules_changed, "counters_reset": self.counters_reset}


def semantic_diff(old: tuple[ir.Policy, DecisionTree], new: tuple[ir.Policy, DecisionTree],
                  deciders: tuple[Sequence[Decider], Sequence[Decider]] = ((), ()),
                  only: Sequence[str] = ()) -> SemanticDiff:
    """Compare two compiled policies (IR and tree each); `only` keeps the tools whose name
    or tags one of its entries names (`tagged money`, `refund.create`)."""
    names = list(dict.fromkeys([*tool_names(old[0]), *tool_names(new[0])]))
    tags = list(dict.fromkeys([*mentioned_tags(old[0]), *mentioned_tags(new[0])]))
    ro, rn = Regions(*old, names, tags), Regions(*new, names, tags)
    variants = tag_sets(new[0], tags)
    out: list[CellDiff] = []
    for stage in STAGES:
        stage_names = names if stage in TOOL_STAGES else ["", *names]
        for name in stage_names:
            if only and not _selected(name, only, ro, rn):
                continue
            verdict = _compare(stage, name, variants if name else [()], ro, rn, deciders)
            if verdict is not None:
                out.append(verdict)
    result = SemanticDiff(out)
    _rule_changes(old[0], new[0], result)
    return result


def _selected(name: str, only: Sequence[str], ro: Regions, rn: Regions) -> bool:
    for entry in only:
        if entry.startswith("tagged "):
            tag = entry.removeprefix("tagged ").strip()
            if tag in ro.plan.declared_tags(name) or tag in rn.plan.declared_tags(name):
                return True
        elif entry == name:
            return True
    return False


def _signature(r: Regions, rules: tuple[int, ...]) -> list[str]:
    """The rules of a cell as what decides effects: ids, spans and reasons left out."""
    keys = []
    for i in rules:
        rule = r.policy.rules[i]
        keys.append(repr((rule.kind, rule.cond, rule.groups, rule.shadow, rule.stage)))
    return sorted(keys)


def _compare(stage: str, name: str, variants: list[tuple[str, ...]], ro: Regions,
             rn: Regions, deciders: tuple[Sequence[Decider], Sequence[Decider]]
             ) -> CellDiff | None:
    loosen = tighten = None
    up = down = False  # a point was seen that loosens / tightens (witness verified or not)
    exact = True
    touched = False
    for extra in variants:
        co = Cell(stage, name, extra, ro.plan.bucket(stage, name, extra))
        cn = Cell(stage, name, extra, rn.plan.bucket(stage, name, extra))
        if not co.rules and not cn.rules and ro.policy.default == rn.policy.default:
            continue
        touched = True
        if ro.policy.default == rn.policy.default and _signature(ro, co.rules) == _signature(
                rn, cn.rules) and not any(ro.facts[i].reads_cell for i in co.rules):
            continue
        facts = Facts()
        for i in co.rules:
            facts = facts.merge(ro.facts[i])
        for i in cn.rules:
            facts = facts.merge(rn.facts[i])
        space = space_of(facts)
        exact = exact and space.exact
        for point in space.points():
            do, dn = ro.decide(point, co), rn.decide(point, cn)
            step = _RANK[dn.effect] - _RANK[do.effect]
            up, down = up or step > 0, down or step < 0
            if step > 0 and loosen is None:
                loosen = _verified(point, co, cn, ro, rn, deciders, up=True)
            elif step < 0 and tighten is None:
                tighten = _verified(point, co, cn, ro, rn, deciders, up=False)
            if loosen is not None and tighten is not None:
                break
    if not touched:
        return None
    verdict: Verdict = ("changes" if up and down else "loosens" if up
                        else "tightens" if down else "equivalent")
    return CellDiff(stage, name, verdict, "proved" if exact else "sampled", loosen, tighten)


def _verified(point: Point, co: Cell, cn: Cell, ro: Regions, rn: Regions,
              deciders: tuple[Sequence[Decider], Sequence[Decider]], up: bool
              ) -> DiffWitness | None:
    req = rn.request(point, cn)
    snap = rn.snapshot(point)
    old = ro.decide(point, co).effect
    new = rn.decide(point, cn).effect
    for decide in deciders[0]:
        if decide(req, snap).effect != old:
            return None
    for decide in deciders[1]:
        if decide(req, snap).effect != new:
            return None
    if (_RANK[new] > _RANK[old]) != up:
        return None
    return DiffWitness(req, tuple(sorted(point.labels)), tuple(sorted(point.groups)), old, new)


def _rule_changes(old: ir.Policy, new: ir.Policy, out: SemanticDiff) -> None:
    def shape(rule: ir.Rule) -> str:
        return repr((rule.kind, rule.stage, rule.targets, rule.cond, rule.groups, rule.shadow))

    before = {r.id: shape(r) for r in old.rules}
    after = {r.id: shape(r) for r in new.rules}
    out.rules_added = [i for i in after if i not in before]
    out.rules_removed = [i for i in before if i not in after]
    out.rules_changed = [i for i in after if i in before and before[i] != after[i]]
    # A counter id names what the counter counts (compiler/counter_ids.py): a count carries
    # over exactly when its id is still there (a changed limit keeps it); an old id the new
    # policy lacks is a count that restarts from zero.
    kept = {c.id for c in new.counters}
    out.counters_reset = list(dict.fromkeys(c.id for c in old.counters if c.id not in kept))
