"""The anomaly classes of spec B.2 on Charter's deny-wins, order-independent semantics.

Each finding is computed per dispatch cell (`cells`) from the regions of rules
(`regions`); an inclusion holds for a rule only if it holds in every cell the rule applies
to. A finding is reported at its level only when it is either proved (every point of the
exact fragment was tried) or shown by a witness: a request, completed over the rest of its
cell, that every evaluator given decides as the finding says. Anything else is I0599.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from charter.compiler.analysis.cells import Cell
from charter.compiler.analysis.codes import INCONCLUSIVE
from charter.compiler.analysis.model import Finding, Level, Related, Status, Witness
from charter.compiler.analysis.regions import Regions
from charter.compiler.analysis.smt import Unsupported
from charter.compiler.analysis.space import ABSENT, Point
from charter.engine import ir
from charter.engine.decision import Decision
from charter.engine.snapshot import Snapshot
from charter.language.diagnostics import (
    ALLOW_DENY_OVERLAP,
    ALLOW_OVERRIDDEN,
    ALLOW_REDUNDANT,
    APPROVAL_INEFFECTIVE,
    COUNTER_UNREACHABLE,
    DENY_REDUNDANT,
    NEVER_MATCHES,
    OPTIONAL_WITHOUT_HAS,
    RESULTS_DENIED,
    RISKY_UNGUARDED,
    SHADOW_NOOP,
    TOOL_NEVER_ALLOWED,
)
from charter.language.source import Span

Decider = Callable[[dict[str, Any], Snapshot], Decision]
Claim = Callable[[Decision], bool]
RISK_TAGS = ("destructive", "money", "external")
_RESTRICTIVE = ("deny", "require_approval")


@dataclass
class Locator:
    """Spans of rules and tools (from the checked AST when there is one)."""

    rules: dict[tuple[str, int, int], Span] = field(default_factory=dict)
    tools: dict[str, Span] = field(default_factory=dict)
    default: Span | None = None

    def rule(self, rule: ir.Rule) -> Span:
        found = self.rules.get((rule.file, rule.line, rule.col))
        return found or Span(rule.file, rule.line, rule.col, rule.line, rule.col + 1)

    def tool(self, name: str, policy: ir.Policy) -> Span:
        found = self.tools.get(name)
        if found is not None:
            return found
        first = policy.rules[0] if policy.rules else None
        return Span(first.file if first else "<policy>", 1, 1, 1, 2)


@dataclass
class Options:
    """What to look for: the risky tags of W0510, conflicts (W0507, off by default), the
    codes to keep (`select`, empty: all) and to drop (`ignore`), and the solver for atoms
    outside the exact fragment, with its per-query timeout."""

    risk_tags: tuple[str, ...] = RISK_TAGS
    conflicts: bool = False
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    solver: str = "none"  # "auto" | "none" | "z3": atoms outside the exact fragment
    timeout_ms: int = 2000  # per solver query

    def wants(self, code: str) -> bool:
        if code in self.ignore:
            return False
        return not self.select or any(code.startswith(s) for s in self.select)


@dataclass
class _Candidate:
    code: str
    severity: Level
    rule: ir.Rule
    message: str
    related: tuple[Related, ...]
    cell: Cell | None
    point: Point | None
    claim: Claim | None
    exact: bool
    inexact: str | None = None
    universal: bool = True  # a claim about every request: needs `exact` to be reported
    smt: Callable[[Any], str] | None = None  # the claim as solver queries: "unsat" proves it
    help: str | None = None
    label: str = ""
    span: Span | None = None


class Analysis:
    """Findings of one policy."""

    def __init__(self, regions: Regions, locator: Locator, options: Options,
                 deciders: Sequence[Decider] = ()) -> None:
        self.r = regions
        self.policy = regions.policy
        self.loc = locator
        self.options = options
        self.deciders = deciders
        self.never: set[int] = set()
        self.solver = _solver(regions.policy, options)

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        steps = (self._never_matches, self._allow_overridden, self._redundant,
                 self._approval_ineffective, self._conflicts, self._tool_never_allowed,
                 self._results_denied, self._unguarded, self._may_error,
                 self._counter_unreachable, self._shadow_noop)
        for step in steps:
            for cand in step():
                if self.options.wants(cand.code):
                    found = self._settle(cand)
                    if found is not None:
                        out.append(found)
        out.sort(key=lambda f: (f.span.file, f.span.line, f.span.col, f.code))
        return out

    # ── settling a candidate: witness, verification, status ──────────────────

    def _settle(self, c: _Candidate) -> Finding | None:
        span = c.span or self.loc.rule(c.rule)
        at = (c.rule.file, c.rule.line, c.rule.col) if c.span is None else None
        witness = None
        if c.point is not None and c.cell is not None and c.claim is not None:
            witness = self._witness(c.point, c.cell, c.claim)
        if c.universal and not c.exact and self.solver is not None and c.smt is not None:
            try:
                answer = c.smt(self.solver)
            except Unsupported as err:
                answer, c.inexact = "unknown", f"{err} (no solver meaning)"
            if answer == "sat":
                return None  # the solver found a request that refutes it
            if answer == "unsat":
                c.exact = True
            else:
                c.inexact = c.inexact if "solver" in (c.inexact or "") else (
                    f"the solver gave up within {self.options.timeout_ms} ms on "
                    f"{c.inexact or 'this question'}")
        status: Status
        if c.exact and (c.universal or witness is not None):
            status = "proved" if c.universal else "witnessed"
        elif witness is not None and not c.universal:
            status = "witnessed"
        else:
            return Finding(INCONCLUSIVE, "info", "inconclusive",
                           f"inconclusive: {c.message} (not proved: {c.inexact or 'no witness'})",
                           span, c.related, None, c.rule.id,
                           "the analysis could not decide this atom exactly; check it by hand",
                           c.label, {"suspected": c.code, "at": at})
        return Finding(c.code, c.severity, status, c.message, span, c.related, witness,
                       c.rule.id, c.help, c.label, {"at": at})

    def _witness(self, point: Point, cell: Cell, claim: Claim) -> Witness | None:
        full = self.r.complete(point, cell, claim)
        if full is None:
            return None
        req = self.r.request(full, cell)
        snap = self.r.snapshot(full)
        decision = self.r.decide(full, cell)
        for n, decide in enumerate(self.deciders):
            other = decide(req, snap)
            if not claim(other) or other.effect != decision.effect or (
                    other.rules != decision.rules):
                return None  # the evaluators must agree with each other, too
            if n == 0:
                decision = other
        return Witness(req, tuple(sorted(full.labels)), tuple(sorted(full.groups)),
                       decision.effect, decision.rules)

    # ── helpers ──────────────────────────────────────────────────────────────

    def _rules(self, kinds: Sequence[str], origin: bool = True) -> Iterator[ir.Rule]:
        for rule in self.policy.rules:
            if rule.kind in kinds and not rule.shadow and (
                    not origin or rule.origin == "rule"):
                yield rule

    def _cells(self, rule: ir.Rule) -> list[Cell]:
        return self.r.cells_of.get(rule.index, [])

    def _rel(self, rule: ir.Rule, message: str) -> Related:
        return Related(self.loc.rule(rule), message)

    def _covering(self, a: ir.Rule, b: ir.Rule) -> tuple[bool, str | None, Cell, Point] | None:
        """Is a's region inside b's in every cell of a (b applying there too)? Returns
        (exact, what is not exact, a cell, a point of both there) or None. Not exact, the
        inclusion is only suspected, and only when some point has a's condition true (a
        region seen only through request errors says nothing)."""
        cells = self._cells(a)
        if not cells or b.origin != "rule":
            return None
        exact = True
        inexact: str | None = None
        witness: tuple[Cell, Point] | None = None
        for cell in cells:
            if b.index not in cell.rules:
                return None
            rel = self.r.relate(a.index, b.index, cell, inclusion=True)
            if rel.a_only is not None:
                return None
            exact = exact and rel.exact
            inexact = inexact or rel.inexact
            point = rel.clean or (rel.both if rel.exact else None)
            if witness is None and point is not None:
                witness = (cell, point)
        if witness is None:
            return None  # a never matches (W0501), or was never seen to
        return exact, inexact, witness[0], witness[1]

    # ── W0501 never matches ──────────────────────────────────────────────────

    def _never_matches(self) -> Iterator[_Candidate]:
        for rule in self.policy.rules:
            if rule.origin == "strict args":
                continue
            cells = self._cells(rule)
            exact = True
            inexact = None
            fires = False
            for cell in cells:
                s = self.r.sat(rule.index, cell)
                if s.inside is not None:
                    fires = True
                    break
                exact = exact and s.exact
                inexact = inexact or s.inexact
            if fires:
                continue
            if exact:
                self.never.add(rule.index)
            why = ("its condition holds for no request" if cells else
                   "no request can reach it (its stage and targets select no call)")
            if rule.kind == "allow" and not cells and any(t.tag for t in rule.targets):
                why = ("no declared tool has its tags, and request tags grant nothing "
                       "without `trust request tags`")
            yield _Candidate(NEVER_MATCHES.code, "warning", rule,
                             f"rule `{rule.id}` never matches: {why}",
                             (self._rel(rule, "this rule"),), None, None, None, exact, inexact,
                             help="delete the rule or fix its condition", label="never matches",
                             smt=_sat_query(rule.index))

    # ── W0503 allow overridden by a deny ─────────────────────────────────────

    def _allow_overridden(self) -> Iterator[_Candidate]:
        denies = list(self._rules(("deny",), origin=False))
        for a in self._rules(("allow",)):
            if a.index in self.never:
                continue
            for d in denies:
                cov = self._covering(a, d)
                if cov is None:
                    continue
                exact, inexact, cell, point = cov
                claim = _claim(rules=(a.id, d.id), effect="deny")
                yield _Candidate(
                    ALLOW_OVERRIDDEN.code, "warning", a,
                    f"allow rule `{a.id}` never takes effect: every request it matches is "
                    f"denied by `{d.id}`", (self._rel(d, "denied here"),), cell, point, claim,
                    exact, inexact, help=f"narrow `{d.id}`, or delete `{a.id}`",
                    label="matches only requests that are denied",
                    smt=_inclusion_query(a.index, d.index))
                break

    # ── W0504 / W0505 redundant ──────────────────────────────────────────────

    def _redundant(self) -> Iterator[_Candidate]:
        for kind, code in (("allow", ALLOW_REDUNDANT.code), ("deny", DENY_REDUNDANT.code)):
            rules = list(self._rules((kind,)))
            for a in rules:
                if a.index in self.never:
                    continue
                for b in rules:
                    if a is b or b.index in self.never:
                        continue
                    if kind == "allow" and not _carries_nothing_more(a, b):
                        continue
                    cov = self._covering(a, b)
                    if cov is None:
                        continue
                    back = self._covering(b, a)
                    if back is not None and b.index > a.index and (
                            kind == "deny" or _carries_nothing_more(b, a)):
                        continue  # equivalent: reported once, on the later rule
                    exact, inexact, cell, point = cov
                    severity: Level = "warning"
                    if kind == "deny" and a.because != b.because:
                        severity = "info"
                    claim = _claim(rules=(a.id, b.id), effect="deny" if kind == "deny" else None)
                    what = "allows" if kind == "allow" else "denies"
                    yield _Candidate(
                        code, severity, a,
                        f"{kind} rule `{a.id}` is redundant: `{b.id}` {what} every request "
                        f"it matches", (self._rel(b, f"also {what} these requests"),),
                        cell, point, claim, exact, inexact, help=f"delete `{a.id}`",
                        label="redundant",
                        smt=_inclusion_query(a.index, b.index))
                    break

    # ── W0506 approval ineffective ───────────────────────────────────────────

    def _approval_ineffective(self) -> Iterator[_Candidate]:
        denies = list(self._rules(("deny",), origin=False))
        for r in self._rules(("require_approval",)):
            if r.index in self.never:
                continue
            for d in denies:
                cov = self._covering(r, d)
                if cov is None:
                    continue
                exact, inexact, cell, point = cov
                yield _Candidate(
                    APPROVAL_INEFFECTIVE.code, "warning", r,
                    f"approval rule `{r.id}` never takes effect: every request it matches is "
                    f"denied by `{d.id}`", (self._rel(d, "denied here"),), cell, point,
                    _claim(rules=(r.id, d.id), effect="deny"), exact, inexact,
                    help=f"narrow `{d.id}`, or delete the approval rule",
                    label="matches only requests that are denied",
                    smt=_inclusion_query(r.index, d.index))
                break
            else:
                if self.policy.default != "deny":
                    continue
                found = self._never_allowed_with(r)
                if found is not None:
                    exact, cell, point, allows = found
                    related = tuple(self._rel(self.policy.rules[i], "allows other requests")
                                    for i in allows[:3]) or (self._rel(r, "this rule"),)
                    yield _Candidate(
                        APPROVAL_INEFFECTIVE.code, "warning", r,
                        f"approval rule `{r.id}` never takes effect: no rule allows what it "
                        "matches (an approval never opens a tool)", related, cell, point,
                        _claim(rules=(r.id,), effect="deny"), exact,
                        help="add an allow rule for these requests, or delete the approval rule",
                        label="matches only requests no rule allows",
                        smt=_disjoint_query(r.index, tuple(allows)))

    def _never_allowed_with(self, r: ir.Rule) -> tuple[bool, Cell, Point, list[int]] | None:
        exact = True
        witness: tuple[Cell, Point] | None = None
        allows: list[int] = []
        for cell in self._cells(r):
            cell_allows = [i for i in cell.rules if self.policy.rules[i].kind == "allow"
                           and not self.policy.rules[i].shadow]
            allows.extend(i for i in cell_allows if i not in allows)
            if not cell_allows:
                s = self.r.sat(r.index, cell)
                if witness is None and s.inside is not None:
                    witness = (cell, s.inside)
                continue
            for i in cell_allows:
                rel = self.r.relate(r.index, i, cell)
                if rel.both is not None:
                    return None
                exact = exact and rel.exact
                if witness is None and rel.a_only is not None:
                    witness = (cell, rel.a_only)
        if witness is None:
            return None
        return exact, witness[0], witness[1], allows

    # ── W0507 allow/deny conflict ────────────────────────────────────────────

    def _conflicts(self) -> Iterator[_Candidate]:
        if not self.options.conflicts:
            return
        denies = list(self._rules(("deny",)))
        for a in self._rules(("allow",)):
            for d in denies:
                for cell in self._cells(a):
                    if d.index not in cell.rules:
                        continue
                    rel = self.r.relate(a.index, d.index, cell, full=True)
                    if rel.both is None or rel.a_only is None or rel.b_only is None:
                        continue
                    yield _Candidate(
                        ALLOW_DENY_OVERLAP.code, "info", a,
                        f"allow rule `{a.id}` and deny rule `{d.id}` overlap: some requests "
                        f"`{a.id}` allows are denied by `{d.id}`",
                        (self._rel(d, "overlaps here"),), cell, rel.both,
                        _claim(rules=(a.id, d.id), effect="deny"), rel.exact,
                        rel.inexact, universal=False,
                        help="intended exceptions can say so with a test", label="overlaps")
                    break

    # ── W0508 / W0509 tools never allowed ────────────────────────────────────

    def _allowing(self, cell: Cell) -> list[int]:
        return [i for i in cell.rules if self.policy.rules[i].kind == "allow"
                and not self.policy.rules[i].shadow and i not in self.never]

    def _plain_cell(self, stage: str, name: str) -> Cell | None:
        for cell in self.r.cells:
            if cell.stage == stage and cell.name == name and not cell.tags:
                return cell
        return None

    def _tool_never_allowed(self) -> Iterator[_Candidate]:
        if self.policy.default != "deny":
            return
        for name in self.policy.tools:
            cell = self._plain_cell("tool_call", name)
            if cell is None or self._allowing(cell):
                continue
            rule = self._anchor(cell)
            yield _Candidate(
                TOOL_NEVER_ALLOWED.code, "warning", rule,
                f'tool "{name}" is declared but never allowed',
                (Related(self.loc.default or self.loc.rule(rule), "denied by default"),),
                cell, Point({}, frozenset(), frozenset()), _claim(effect="deny", no_allow=True),
                True, help=f'add `allow tool "{name}"` (with its conditions), or drop the '
                "declaration", label="never allowed", span=self.loc.tool(name, self.policy))

    def _anchor(self, cell: Cell) -> ir.Rule:
        return self.policy.rules[cell.rules[0]] if cell.rules else self.policy.rules[0]

    def _results_denied(self) -> Iterator[_Candidate]:
        if self.policy.default != "deny" or not any(
                r.stage == "tool_result" for r in self.policy.rules):
            return
        for name in self.policy.tools:
            call = self._plain_cell("tool_call", name)
            result = self._plain_cell("tool_result", name)
            if call is None or result is None or not self._allowing(call) or \
                    self._allowing(result):
                continue
            allow = self.policy.rules[self._allowing(call)[0]]
            yield _Candidate(
                RESULTS_DENIED.code, "warning", allow,
                f'tool "{name}" is allowed at tool_call but every tool_result of it is '
                "denied (default deny, no allow on tool_result)",
                (Related(self.loc.tool(name, self.policy), "the tool"),), result,
                Point({}, frozenset(), frozenset()), _claim(effect="deny", no_allow=True), True,
                help=f'add `on tool_result allow tool "{name}"`', label="results denied")

    # ── W0510 risky tools allowed unguarded ──────────────────────────────────

    def _unguarded(self) -> Iterator[_Candidate]:
        risky = set(self.options.risk_tags)
        counted = {spec.rule for spec in self.policy.counters}
        for name, info in self.policy.tools.items():
            hit = sorted(risky.intersection(info.tags))
            if not hit:
                continue
            cell = self._plain_cell("tool_call", name)
            if cell is None:
                continue
            rules = [self.policy.rules[i] for i in cell.rules if not self.policy.rules[i].shadow]
            if any(r.kind in _RESTRICTIVE or r.index in counted for r in rules):
                continue
            opener = next((r for r in rules if r.kind == "allow" and r.cond is None), None)
            if opener is None and self.policy.default != "allow":
                continue
            anchor = opener or self._anchor(cell)
            yield _Candidate(
                RISKY_UNGUARDED.code, "warning", anchor,
                f'tool "{name}" (tagged {", ".join(hit)}) is always allowed, with no '
                "approval, budget, limit or deny on it", (Related(
                    self.loc.tool(name, self.policy), "declared here"),), cell,
                Point({}, frozenset(), frozenset()), _claim(effect="allow"), True,
                help="add a condition, a `require approval`, a budget or a limit",
                label="allows every call")

    # ── W0511 allow may error ────────────────────────────────────────────────

    def _may_error(self) -> Iterator[_Candidate]:
        for a in self._rules(("allow",)):
            if a.cond is None or a.index in self.never:
                continue
            guarded = {n.keys for n in ir.walk(a.cond)
                       if isinstance(n, ir.Has) and n.root == "args"}
            read = {n.keys[0] for n in ir.walk(a.cond)
                    if isinstance(n, ir.Path) and n.root == "args" and n.keys}
            done = False
            for cell in self._cells(a):
                info = self.policy.tools.get(cell.name)
                if info is None or done:
                    continue
                optional = [p for p, _, opt in info.params if opt and p in read
                            and (p,) not in guarded]
                for param in optional:
                    point = self._erroring(a, cell, ("args", (param,)))
                    if point is None:
                        continue
                    yield _Candidate(
                        OPTIONAL_WITHOUT_HAS.code, "warning", a,
                        f"allow rule `{a.id}` reads optional parameter `args.{param}` of "
                        f'"{cell.name}" without `has(args.{param})`: when it is absent the rule '
                        "errors and grants nothing",
                        (Related(self.loc.tool(cell.name, self.policy),
                                 f"`{param}?` is optional"),), cell, point,
                        _claim(errors=a.id), True, universal=False,
                        help=f"write `has(args.{param}) and ...` or make the parameter required",
                        label="may error")
                    done = True
                    break

    def _erroring(self, a: ir.Rule, cell: Cell, key: tuple[str, tuple[str, ...]]) -> Point | None:
        space = self.r.space([a.index])
        space.dims = [(k, [ABSENT] if k == key else reps) for k, reps in space.dims]
        for point in space.points():
            (out,) = self.r.outcomes((a.index,), point, cell)
            if not isinstance(out, bool):  # the rule erred
                return point
        return None

    # ── W0512 budget or limit unreachable ────────────────────────────────────

    def _counter_unreachable(self) -> Iterator[_Candidate]:
        if self.policy.default != "deny":
            return
        seen: set[str] = set()
        for spec in self.policy.counters:
            rule = self.policy.rules[spec.rule]
            if spec.id in seen or not spec.targets:
                continue
            cells = self._cells(rule)
            if not cells or any(self._allowing(c) for c in cells):
                continue
            seen.add(spec.id)
            yield _Candidate(
                COUNTER_UNREACHABLE.code, "warning", rule,
                f"{rule.origin} `{rule.id}` can never be reached: no rule allows its targets",
                (self._rel(rule, "its targets"),), None, None, None, True,
                help="allow the tools it counts, or delete it", label="unreachable")

    # ── W0513 shadow rule is a no-op ─────────────────────────────────────────

    def _shadow_noop(self) -> Iterator[_Candidate]:
        for s in self.policy.rules:
            if not s.shadow:
                continue
            for e in self.policy.rules:
                if e.shadow or e.kind != s.kind or set(self.r.cells_of.get(s.index, [])) != \
                        set(self.r.cells_of.get(e.index, [])):
                    continue
                cov = self._covering(s, e)
                if cov is None or self._covering(e, s) is None:
                    continue
                exact, inexact, cell, point = cov
                yield _Candidate(
                    SHADOW_NOOP.code, "warning", s,
                    f"shadow rule `{s.id}` is the same as enforced rule `{e.id}`: "
                    "it can show nothing new", (self._rel(e, "enforced here"),), cell, point,
                    _claim(rules=(e.id,), shadow=s.id), exact, inexact,
                    help="change the shadow rule to the candidate you mean to try, or delete it",
                    label="no-op", smt=_equivalence_query(s.index, e.index))
                break


def _carries_nothing_more(a: ir.Rule, b: ir.Rule) -> bool:
    """Deleting allow `a` for `b` loses nothing it says (its reason and owner)."""
    return (a.because is None or a.because == b.because) and (
        a.owner is None or a.owner == b.owner)


def _claim(rules: tuple[str, ...] = (), effect: str | None = None, no_allow: bool = False,
           errors: str | None = None, shadow: str | None = None) -> Claim:
    def holds(d: Decision) -> bool:
        if effect is not None and d.effect != effect:
            return False
        if any(r not in d.rules for r in rules):
            return False
        if no_allow and d.effect == "allow":
            return False
        if errors is not None and not any(e.rule == errors for e in d.errors):
            return False
        return shadow is None or any(h.rule == shadow for h in d.shadow)
    return holds


def _solver(policy: ir.Policy, options: Options) -> Any:
    """The solver `options` ask for, or None (`auto`: z3 when it is installed)."""
    if options.solver == "none":
        return None
    from charter.compiler.analysis import smt

    if not smt.available():
        if options.solver == "z3":
            raise RuntimeError("--solver z3 needs the z3 solver: pip install z3-solver")
        return None
    return smt.Solver(policy, options.timeout_ms)


def _sat_query(a: int) -> Callable[[Any], str]:
    """The solver's word on W0501: `unsat` proves that rule a never matches."""
    def query(solver: Any) -> str:
        return str(solver.sat(a)[0])
    return query


def _inclusion_query(a: int, b: int) -> Callable[[Any], str]:
    """`unsat` proves region a ⊆ region b."""
    def query(solver: Any) -> str:
        return str(solver.a_not_b(a, b)[0])
    return query


def _disjoint_query(a: int, others: tuple[int, ...]) -> Callable[[Any], str]:
    """`unsat` proves region a meets none of `others`."""
    def query(solver: Any) -> str:
        return _all_unsat([str(solver.both(a, b)[0]) for b in others])
    return query


def _equivalence_query(a: int, b: int) -> Callable[[Any], str]:
    def query(solver: Any) -> str:
        return _all_unsat([str(solver.a_not_b(a, b)[0]), str(solver.a_not_b(b, a)[0])])
    return query


def _all_unsat(answers: list[str]) -> str:
    """`unsat` when every answer is, `sat` when one is, else `unknown`."""
    if "sat" in answers:
        return "sat"
    return "unknown" if "unknown" in answers else "unsat"
