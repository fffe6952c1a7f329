"""Dispatch cells: the finitely many (stage, tool name, request tags) a policy tells apart.

Rules are selected by stage, tool name (exact or glob) and tags before any condition runs
(`charter.engine.plan`). Names fall into classes: each declared tool, each name a rule
spells out, one name per glob, and one name nothing names. Only the tags the policy mentions
matter, as request tags beyond a tool's declared ones; with up to `_ALL_TAG_SETS` of them
every subset is a cell, beyond that the empty set, each tag alone, each rule's own tags and
all of them together. Model stages also have the toolless cell (name `""`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from charter.engine import ir
from charter.engine.plan import TOOL_STAGES, Plan
from charter.stdlib.globs import name_matches

_ALL_TAG_SETS = 4
OTHER_TOOL = "zz.undeclared"
STAGES = ("tool_call", "tool_result", "model_input", "model_output")


@dataclass(frozen=True)
class Cell:
    """One dispatch class of requests, and the rules that apply to it (policy order)."""

    stage: str
    name: str
    tags: tuple[str, ...]  # request tags (declared ones are added by the plan)
    rules: tuple[int, ...]

    @property
    def tool(self) -> str:
        return self.name


def glob_instance(pattern: str) -> str:
    """A tool name the glob matches (`*` and `**` filled in)."""
    return pattern.replace("**", "zz").replace("*", "zz")


def tool_names(policy: ir.Policy, extra: tuple[str, ...] = ()) -> list[str]:
    """The names of the policy's name classes (declared, spelled out, per glob, other)."""
    names: dict[str, None] = dict.fromkeys(policy.tools)
    for rule in policy.rules:
        for target in rule.targets:
            for n in target.names:
                names.setdefault(glob_instance(n) if "*" in n else n)
    for n in extra:
        names.setdefault(n)
    names.setdefault(OTHER_TOOL)
    return list(names)


def mentioned_tags(policy: ir.Policy) -> list[str]:
    tags: dict[str, None] = {}
    for rule in policy.rules:
        for t in rule.targets:
            if t.tag is not None:
                tags.setdefault(t.tag)
    for spec in policy.counters:
        for t in spec.targets:
            if t.tag is not None:
                tags.setdefault(t.tag)
    return list(tags)


def tag_sets(policy: ir.Policy, tags: list[str]) -> list[tuple[str, ...]]:
    if len(tags) <= _ALL_TAG_SETS:
        return [c for n in range(len(tags) + 1) for c in itertools.combinations(tags, n)]
    sets: dict[tuple[str, ...], None] = {(): None}
    for t in tags:
        sets.setdefault((t,))
    for rule in policy.rules:
        own = tuple(t.tag for t in rule.targets if t.tag is not None)
        if own:
            sets.setdefault(own)
    sets.setdefault(tuple(tags))
    return list(sets)


def cells(policy: ir.Policy, plan: Plan, names: list[str] | None = None,
          tags: list[str] | None = None) -> list[Cell]:
    """Every cell of the policy (for `names`/`tags` given, those: a diff shares them)."""
    names = tool_names(policy) if names is None else names
    tag_list = mentioned_tags(policy) if tags is None else tags
    variants = tag_sets(policy, tag_list)
    out: list[Cell] = []
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for stage in STAGES:
        named = any(r.stage == stage and any(t.names for t in r.targets)
                    for r in policy.rules)
        stage_names = names if stage in TOOL_STAGES else ["", *(names if named else ())]
        for name in stage_names:
            declared = set(plan.declared_tags(name))
            for extra in variants:
                req = tuple(t for t in extra if t not in declared) if name else ()
                key = (stage, name, req)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Cell(stage, name, req, plan.bucket(stage, name, req)))
    return out


def matches_declared(pattern: str, policy: ir.Policy) -> bool:
    return any(name_matches(pattern, n) for n in policy.tools)
