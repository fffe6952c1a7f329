"""Applying a decision's redactions to a value, with the matchers of the policy that made it."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter.engine.decision import Decision
    from charter.engine.matching import PolicyMatchers

_MATCHERS: weakref.WeakValueDictionary[str, PolicyMatchers] = weakref.WeakValueDictionary()


def register(digest: str, matchers: PolicyMatchers) -> PolicyMatchers:
    """The matchers every loaded policy of `digest` shares: those already registered for it
    while one such policy lives, else `matchers`. The registry holds them weakly and each
    policy strongly, so `Decision.redact` works while any policy of that digest is alive
    (a policy compiled twice, as a hot reload does, must not orphan the first one)."""
    existing = _MATCHERS.get(digest)
    if existing is not None:
        return existing
    _MATCHERS[digest] = matchers
    return matchers


def apply_redactions(decision: Decision, value: Any, field: str | None) -> Any:
    if not decision.redactions:
        return value
    if decision.policy is None or decision.policy.digest not in _MATCHERS:
        raise RuntimeError("the policy that made this decision is no longer loaded")
    matchers = _MATCHERS[decision.policy.digest]
    names: list[str] = []
    for r in decision.redactions:
        if field is None or r.field == field:
            names.extend(n for n in r.matchers if n not in names)
    if not names:
        return value
    redacted, _ = matchers.redact(value, names)
    return redacted
