"""Planning: which rules can apply to a request, decided from its stage, tool name and tags.

`plan` builds the `DecisionTree` of a policy (a value, saved with it); `Plan` answers
questions over the policy and its tree. Exact tool names go through a dict; globs and tags
are tested once per distinct (stage, name, tags) and the answer is cached by the policy, so
the cost of a decision grows with the rules that can apply to the call, not with the size of
the policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.engine import ir
from charter.engine.matching import used_matchers
from charter.engine.tree import DecisionTree, StageTree
from charter.stdlib.globs import name_matches

#: Stages whose requests name a tool: the ones whose tree resolves a bucket per tool.
TOOL_STAGES = ("tool_call", "tool_result")


def target_matches(t: ir.Target, name: str, tags: Sequence[str]) -> bool:
    if t.tag is not None:
        return t.tag in tags
    return bool(name) and any(name_matches(p, name) for p in t.names)


def plan(policy: ir.Policy) -> DecisionTree:
    """The decision tree of a policy: each stage's rules indexed by their first target, and
    the bucket of every named tool (declared, or named exactly by a rule) resolved."""
    index: dict[str, tuple[dict[str, list[int]], list[tuple[str, int]], dict[str, list[int]],
                           list[int]]] = {}
    for rule in policy.rules:
        exact, globs, tagged, untargeted = index.setdefault(rule.stage, ({}, [], {}, []))
        if not rule.targets:
            untargeted.append(rule.index)
            continue
        first = rule.targets[0]
        if first.tag is not None:
            tagged.setdefault(first.tag, []).append(rule.index)
            continue
        for name in first.names:
            if "*" in name:
                globs.append((name, rule.index))
            else:
                exact.setdefault(name, []).append(rule.index)
    stages: dict[str, StageTree] = {}
    for stage, (exact, globs, tagged, untargeted) in index.items():
        stages[stage] = StageTree(
            exact={k: tuple(v) for k, v in exact.items()}, globs=tuple(globs),
            tagged={k: tuple(v) for k, v in tagged.items()}, untargeted=tuple(untargeted),
            tools={})
    planned = Plan(policy, DecisionTree(stages, ()))
    for stage, tree in stages.items():
        if stage in TOOL_STAGES:
            names = dict.fromkeys([*policy.tools, *tree.exact])
            tree.tools.update((n, planned.candidates(stage, n, planned.declared_tags(n)))
                              for n in names)
    return DecisionTree(stages, tuple(dict.fromkeys(used_matchers(policy))))


class Plan:
    """Dispatch over one policy and its decision tree."""

    def __init__(self, policy: ir.Policy, tree: DecisionTree | None = None) -> None:
        self.policy = policy
        self.tree = plan(policy) if tree is None else tree
        self.stages = self.tree.stages

    def declared_tags(self, name: str) -> tuple[str, ...]:
        info = self.policy.tools.get(name)
        return info.tags if info else ()

    def granting_tags(self, name: str, tags: tuple[str, ...]) -> tuple[str, ...]:
        """The tags an `allow` rule may match on. A declared tool's tags are its declaration's;
        tags sent in the request count for an undeclared tool only under `trust request tags`.
        Rules that restrict (deny, approval, warn, redact, label, budgets) see every tag —
        an agent that adds a tag can only make its own call more restricted."""
        info = self.policy.tools.get(name)
        if info is not None:
            return info.tags
        return tags if self.policy.trust_request_tags else ()

    def rule_applies(self, rule: ir.Rule, name: str, tags: tuple[str, ...]) -> bool:
        """Do the rule's targets all match this tool (`tags`: request and declared tags)?"""
        if rule.kind == "allow" and any(t.tag is not None for t in rule.targets):
            tags = self.granting_tags(name, tags)
        return all(target_matches(t, name, tags) for t in rule.targets)

    def candidates(self, stage: str, name: str, tags: tuple[str, ...]) -> tuple[int, ...]:
        """Indices (in policy order) of the rules whose targets all match this call
        (`tags`: the request's tags and the declared ones; see `granting_tags`)."""
        idx = self.stages.get(stage)
        if idx is None:
            return ()
        found: set[int] = set(idx.untargeted)
        if name:
            found.update(idx.exact.get(name, ()))
            found.update(i for pattern, i in idx.globs if name_matches(pattern, name))
        for tag in tags:
            found.update(idx.tagged.get(tag, ()))
        rules = self.policy.rules
        return tuple(sorted(i for i in found if self.rule_applies(rules[i], name, tags)))

    def bucket(self, stage: str, name: str, req_tags: tuple[str, ...]) -> tuple[int, ...]:
        """The rules that can apply to a call (`req_tags`: the tags the request sent): the
        tree's resolved bucket for a named tool called without tags of its own, else
        `candidates` with the declared tags added."""
        idx = self.stages.get(stage)
        if idx is None:
            return ()
        if not req_tags:
            found = idx.tools.get(name)
            if found is not None:
                return found
        return self.candidates(stage, name, self.tags(name, req_tags))

    def tags(self, name: str, req_tags: tuple[str, ...]) -> tuple[str, ...]:
        """The request's tags and the tool's declared ones, each once."""
        return tuple(dict.fromkeys((*req_tags, *self.declared_tags(name))))
