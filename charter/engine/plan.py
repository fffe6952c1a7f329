"""Planning: which rules can apply to a request, decided from its stage, tool name and tags.

Exact tool names go through a dict; globs and tags are tested once per distinct
(stage, name, tags) and the answer is cached by the policy, so the cost of a decision grows
with the rules that can apply to the call, not with the size of the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from charter.engine import ir
from charter.stdlib.globs import name_matches


def target_matches(t: ir.Target, name: str, tags: Sequence[str]) -> bool:
    if t.tag is not None:
        return t.tag in tags
    return bool(name) and any(name_matches(p, name) for p in t.names)


@dataclass
class StageIndex:
    exact: dict[str, list[int]] = field(default_factory=dict)
    globs: list[tuple[str, int]] = field(default_factory=list)
    tagged: dict[str, list[int]] = field(default_factory=dict)
    untargeted: list[int] = field(default_factory=list)


class Plan:
    """The dispatch index of one policy."""

    def __init__(self, policy: ir.Policy) -> None:
        self.policy = policy
        self.stages: dict[str, StageIndex] = {}
        for rule in policy.rules:
            self._index(rule)

    def _index(self, rule: ir.Rule) -> None:
        idx = self.stages.setdefault(rule.stage, StageIndex())
        if not rule.targets:
            idx.untargeted.append(rule.index)
            return
        # Index by the first target; the others are checked when a bucket is resolved.
        first = rule.targets[0]
        if first.tag is not None:
            idx.tagged.setdefault(first.tag, []).append(rule.index)
            return
        for name in first.names:
            if "*" in name:
                idx.globs.append((name, rule.index))
            else:
                idx.exact.setdefault(name, []).append(rule.index)

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
