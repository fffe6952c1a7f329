"""Questions about rule regions inside a dispatch cell, answered on the points of `space`.

A rule's region is the set of points where it *matches* under the combining rule: an allow
where its condition holds; a deny, approval, warn, redact or label where it holds or errors
(errors never open the gate); an approval not where a grant from one of its groups is
presented. The named queries follow Cedar's analysis: `never_matches(a)`, `always_matches(a)`,
`implies(a, b)` (region a ⊆ region b), `disjoint(a, b)`. Each answer says whether it is
exact (every point of the fragment was tried) and carries the points that show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from charter.compiler.analysis.cells import Cell, cells
from charter.compiler.analysis.space import (
    MAX_POINTS,
    Facts,
    PathKey,
    Point,
    Space,
    build,
    default_value,
    facts_of,
    space_of,
)
from charter.engine import ir
from charter.engine.combine import combine
from charter.engine.decision import Decision, PolicyInfo
from charter.engine.interpreter import Ctx, Outcome, eval_rule
from charter.engine.matching import PolicyMatchers
from charter.engine.plan import Plan
from charter.engine.snapshot import Snapshot
from charter.engine.tree import DecisionTree

_MAX_SEARCH = 512  # points tried to complete a witness over the rest of its cell
_SAMPLES = 6  # points of a rule's region tried first against an inclusion


@dataclass
class Relation:
    """How two regions meet on one cell: a point of each part (None: the part is empty)."""

    both: Point | None
    a_only: Point | None
    b_only: Point | None
    exact: bool
    inexact: str | None
    clean: Point | None = None  # in both, with a's condition true (not erroring)


@dataclass
class Sat:
    """A region's emptiness: a point inside (None: empty) and a point outside it."""

    inside: Point | None
    outside: Point | None
    exact: bool
    inexact: str | None
    samples: tuple[Point, ...] = ()  # a few points inside, spread over the region


class Regions:
    """One policy's cells and the regions of its rules in them."""

    def __init__(self, policy: ir.Policy, tree: DecisionTree,
                 names: list[str] | None = None, tags: list[str] | None = None) -> None:
        self.policy = policy
        self.plan = Plan(policy, tree)
        self.matchers = PolicyMatchers(policy.matchers, tree.matchers)
        self.info = PolicyInfo(policy.name, policy.version, policy.digest)
        self.facts: list[Facts] = [facts_of(r.cond) for r in policy.rules]
        for rule, facts in zip(policy.rules, self.facts, strict=True):
            if rule.kind == "require_approval":  # a grant from its groups satisfies it
                facts.groups.update(rule.groups)
        self.cells = cells(policy, self.plan, names, tags)
        self.cells_of: dict[int, list[Cell]] = {}
        for cell in self.cells:
            for i in cell.rules:
                self.cells_of.setdefault(i, []).append(cell)
        self._sat: dict[tuple[object, ...], Sat] = {}
        self._rel: dict[tuple[object, ...], Relation] = {}
        self._partial: dict[tuple[object, ...], Relation] = {}  # stopped at a ⊄ b
        self._own: dict[int, Space] = {}

    # ── evaluation ───────────────────────────────────────────────────────────

    def snapshot(self, point: Point) -> Snapshot:
        return Snapshot(labels=point.labels, approved_groups=point.groups)

    def request(self, point: Point, cell: Cell) -> dict[str, Any]:
        return build(point, cell.stage, cell.name, cell.tags)

    def outcomes(self, rules: Sequence[int], point: Point, cell: Cell) -> list[Outcome]:
        req = self.request(point, cell)
        tags = self.plan.tags(cell.name, cell.tags)
        ctx = Ctx(req, self.snapshot(point), cell.stage, cell.name, tags, self.matchers)
        return [eval_rule(self.policy.rules[i], ctx) for i in rules]

    def matched(self, i: int, outcome: Outcome, point: Point) -> bool:
        rule = self.policy.rules[i]
        if outcome is False:
            return False
        if not isinstance(outcome, bool):  # a request error
            return rule.kind != "allow"
        return not (rule.kind == "require_approval" and point.groups.intersection(rule.groups))

    def decide(self, point: Point, cell: Cell) -> Decision:
        """The decision of the whole cell at a point, by the reference interpreter."""
        rules = [self.policy.rules[i] for i in cell.rules]
        outs = self.outcomes(cell.rules, point, cell)
        what = f'tool "{cell.name}"' if cell.name else f"this {cell.stage} request"
        return combine(self.policy, self.info, rules, outs, self.snapshot(point), None, what)

    # ── queries ──────────────────────────────────────────────────────────────

    def _key(self, rules: tuple[int, ...], cell: Cell) -> tuple[object, ...]:
        if any(self.facts[i].reads_cell for i in rules):
            return (*rules, cell.stage, cell.name, cell.tags)
        return rules

    def own_space(self, a: int) -> Space:
        """The space of one rule (cached; not to be changed)."""
        found = self._own.get(a)
        if found is None:
            found = self._own[a] = self.space([a])
        return found

    def space(self, rules: Sequence[int]) -> Space:
        facts = Facts()
        for i in rules:
            facts = facts.merge(self.facts[i])
        return space_of(facts)

    def sat(self, a: int, cell: Cell) -> Sat:
        key = self._key((a,), cell)
        found = self._sat.get(key)
        if found is not None:
            return found
        space = self.space([a])
        inside = outside = None
        samples: list[Point] = []
        for point in space.points():
            (out,) = self.outcomes((a,), point, cell)
            if self.matched(a, out, point):
                inside = inside or point
                if out is True:
                    samples.append(point)
            else:
                outside = outside or point
            if inside is not None and outside is not None and len(samples) >= _SAMPLES * 4:
                break
        step = max(1, len(samples) // _SAMPLES)
        found = self._sat[key] = Sat(inside, outside, space.exact, space.inexact,
                                     tuple(samples[::step][:_SAMPLES]) + tuple(samples[-1:]))
        return found

    def never_matches(self, a: int, cell: Cell) -> Sat:
        return self.sat(a, cell)

    def always_matches(self, a: int, cell: Cell) -> bool:
        s = self.sat(a, cell)
        return s.exact and s.outside is None

    def relate(self, a: int, b: int, cell: Cell, inclusion: bool = False,
               full: bool = False) -> Relation:
        """How a's and b's regions meet. With `inclusion`, the scan stops at the first
        point of a outside b (the answer is then only that a ⊄ b); `b_only` is looked for
        only when `full` (b is otherwise evaluated only where a matches)."""
        key = (*self._key((a, b), cell), full)
        found = self._rel.get(key)
        if found is not None:
            return found
        found = self._partial.get(key)
        if found is not None and inclusion:
            return found
        if inclusion:
            quick = self._quick_counterexample(a, b, cell)
            if quick is not None:
                found = self._partial[key] = Relation(None, quick, None, False, None)
                return found
        space = self.space([a, b])
        both = a_only = b_only = clean = None
        for point, oa, ob in self._scan(space, a, b, cell, full):
            ma, mb = self.matched(a, oa, point), self.matched(b, ob, point)
            if ma and mb:
                both = both or point
                if clean is None and oa is True:
                    clean = point
            elif ma:
                a_only = a_only or point
                if inclusion:
                    found = self._partial[key] = Relation(
                        both, a_only, b_only, space.exact, space.inexact, clean)
                    return found
            elif mb:
                b_only = b_only or point
            if clean is not None and a_only is not None and (b_only is not None or not full):
                break
        found = self._rel[key] = Relation(both, a_only, b_only, space.exact, space.inexact,
                                          clean)
        return found

    def _quick_counterexample(self, a: int, b: int, cell: Cell) -> Point | None:
        """A point of a outside b among a few of a's own points, b's other fields at their
        first representative: most pairs are told apart here, without the product (any
        concrete request is a counterexample, inside the space or not)."""
        own = set(self.facts[a].checks)
        rest = {k: reps[0] for k, reps in self.own_space(b).dims if k not in own and reps}
        for sample in self.sat(a, cell).samples:
            point = Point({**sample.fields, **rest}, sample.labels, sample.groups)
            oa, ob = self.outcomes((a, b), point, cell)
            if self.matched(a, oa, point) and not self.matched(b, ob, point):
                return point
        return None

    def _scan(self, space: Space, a: int, b: int, cell: Cell, full: bool
              ) -> Iterator[tuple[Point, Outcome, Outcome]]:
        """The points of `space` with a's and b's outcomes. Unless `full`, the fields a
        reads are the outer loop and b is evaluated only under points where a matches (a's
        outcome depends on its own fields alone)."""
        if full or space.size > MAX_POINTS:
            for point in space.points():
                oa, ob = self.outcomes((a, b), point, cell)
                yield point, oa, ob
            return
        own = set(self.facts[a].checks)
        outer = Space([d for d in space.dims if d[0] in own], space.labels, space.groups,
                      space.exact, space.inexact)
        inner = Space([d for d in space.dims if d[0] not in own], [frozenset()],
                      [frozenset()], space.exact, space.inexact)
        for op in outer.points():
            (oa,) = self.outcomes((a,), op, cell)
            if not self.matched(a, oa, op):
                continue
            for ip in inner.points():
                point = Point({**op.fields, **ip.fields}, op.labels, op.groups)
                (ob,) = self.outcomes((b,), point, cell)
                yield point, oa, ob

    def implies(self, a: int, b: int, cell: Cell) -> bool:
        """Region a ⊆ region b on the cell (exactly, when the relation is exact)."""
        return self.relate(a, b, cell).a_only is None

    def disjoint(self, a: int, b: int, cell: Cell) -> bool:
        return self.relate(a, b, cell).both is None

    # ── witnesses ────────────────────────────────────────────────────────────

    def complete(self, point: Point, cell: Cell,
                 claim: Callable[[Decision], bool]) -> Point | None:
        """`point` with the fields the other rules of its cell read filled in so that the
        whole cell's decision shows `claim` (None: no such filling was found). A declared
        tool's required parameters are given values first (a `test` block must pass them)."""
        space = self.space(cell.rules)
        fixed = set(point.fields)
        space.dims = [(k, reps) for k, reps in space.dims if k not in fixed]
        space.labels, space.groups = [point.labels], [point.groups]
        params = self._required(cell, fixed)
        for fill in ((params, {}) if params else ({},)):
            for n, rest in enumerate(space.points(seed=1)):
                if n >= _MAX_SEARCH:
                    break
                fields = {**fill, **point.fields, **rest.fields}
                candidate = Point(fields, point.labels, point.groups)
                if claim(self.decide(candidate, cell)):
                    return candidate
        return None

    def _required(self, cell: Cell, fixed: set[PathKey]) -> dict[PathKey, object]:
        info = self.policy.tools.get(cell.name) if cell.stage == "tool_call" else None
        if info is None:
            return {}
        return {("args", (name,)): default_value(check) for name, check, optional in info.params
                if not optional}  # in declared order; the point's own values win
