"""Rule and scope coverage: which rules the `test` blocks of a policy made match.

A rule is *covered* when some test's request made it match (its target and every condition
held; an erroring condition counts as matched, as at run time). Properties do not count: a
test names the case it covers, a random example does not. Rules whose condition reads what
a test cannot give (windowed counters of `limit`/`budget`, `previously`, `now`) are covered
when a test *reached* them (its call was one they apply to). A scope is covered when one of
its rules is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

from charter.engine import ir
from charter.language import ast
from charter.testing.biases import children


@dataclass(frozen=True, slots=True)
class Entry:
    """One rule or scope with its coverage."""

    kind: str  # "rule" or "scope"
    id: str
    file: str
    line: int
    effect: str
    status: str  # "matched", "reached" (stateful rule reached), "reached only", "not reached"

    @property
    def covered(self) -> bool:
        return self.status in ("matched", "reached")


@dataclass(frozen=True, slots=True)
class Coverage:
    """Coverage of one policy."""

    policy: str
    entries: tuple[Entry, ...]

    @property
    def covered(self) -> int:
        return sum(e.covered for e in self.entries)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / len(self.entries) if self.entries else 100.0


def compute(policy: ir.Policy, modules: Iterable[ast.Module], matched: set[int],
            reached: set[int]) -> Coverage:
    """Coverage of `policy`'s rules and of the scopes in `modules`."""
    entries: list[Entry] = []
    covered_at: list[tuple[str, int]] = []
    # A source rule may lower to several (a budget also caps each model stage): one entry,
    # as covered as its best-covered copy. `strict args` rules have no source of their own.
    best: dict[tuple[str, str, int], tuple[int, ir.Rule, str]] = {}
    for rule in policy.rules:
        if rule.origin == "strict args":
            continue
        if rule.index in matched:
            status = "matched"
        elif rule.index in reached:
            status = "reached" if needs_state(rule) else "reached only"
        else:
            status = "not reached"
        rank = _RANK[status]
        key = (rule.id, rule.file, rule.line)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, best[key][1] if key in best else rule, status)
    for _, rule, status in best.values():
        entries.append(Entry("rule", rule.id, rule.file, rule.line, _effect(rule), status))
        if status in ("matched", "reached"):
            covered_at.append((rule.file, rule.line))
    for module in modules:
        for scope in _scopes(module.items):
            inside = any(f == scope.span.file and scope.span.line <= line <= scope.span.end_line
                         for f, line in covered_at)
            sid = f"{PurePath(scope.span.file).name}:{scope.span.line}"
            entries.append(Entry("scope", sid, scope.span.file, scope.span.line, "scope",
                                 "matched" if inside else "not reached"))
    return Coverage(policy.name, tuple(entries))


_RANK = {"matched": 0, "reached": 1, "reached only": 2, "not reached": 3}


def needs_state(rule: ir.Rule) -> bool:
    """Whether the rule's condition reads runtime state that no `given` can provide."""
    stack: list[ir.Expr] = [rule.cond] if rule.cond is not None else []
    while stack:
        e = stack.pop()
        if isinstance(e, ir.Counter | ir.Previously):
            return True
        if isinstance(e, ir.Path) and e.root == "now":
            return True
        stack.extend(children(e))
    return False


def _effect(rule: ir.Rule) -> str:
    if rule.origin != "rule":
        return rule.origin
    return "require approval" if rule.kind == "require_approval" else rule.kind


def _scopes(items: Iterable[ast.Item]) -> Iterable[ast.Scope]:
    for item in items:
        if isinstance(item, ast.Scope):
            yield item
            yield from _scopes(item.items)
