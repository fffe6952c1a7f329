"""Applying a decision's redactions to a value, with the matchers of the policy that made it."""

from __future__ import annotations

# The registry is a dict of weak references kept as weakref.WeakValueDictionary keeps its
# own: `_weakref` is what weakref is built on (weakref.ref is _weakref.ref), and a dead entry
# is dropped by _remove_dead_weakref (WeakValueDictionary's own callback), atomically and
# only while it is still the dead one. Not the weakref module: importing it was ~0.8 ms of
# every hook call (a policy registers its matchers), for this alone.
from _weakref import _remove_dead_weakref, ref  # type: ignore[attr-defined]  # not in typeshed
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charter.engine.decision import Decision
    from charter.engine.matching import PolicyMatchers

_MATCHERS: dict[str, ref[PolicyMatchers]] = {}


def _registered(digest: str) -> PolicyMatchers | None:
    entry = _MATCHERS.get(digest)
    return None if entry is None else entry()


def _gone(_: object, digest: str) -> None:
    _remove_dead_weakref(_MATCHERS, digest)


def register(digest: str, matchers: PolicyMatchers) -> PolicyMatchers:
    """The matchers every loaded policy of `digest` shares: those already registered for it
    while one such policy lives, else `matchers`. The registry holds them weakly and each
    policy strongly, so `Decision.redact` works while any policy of that digest is alive
    (a policy compiled twice, as a hot reload does, must not orphan the first one)."""
    existing = _registered(digest)
    if existing is not None:
        return existing
    _MATCHERS[digest] = ref(matchers, lambda entry: _gone(entry, digest))
    return matchers


def apply_redactions(decision: Decision, value: Any, field: str | None) -> Any:
    if not decision.redactions:
        return value
    matchers = None if decision.policy is None else _registered(decision.policy.digest)
    if matchers is None:
        raise RuntimeError("the policy that made this decision is no longer loaded")
    names: list[str] = []
    for r in decision.redactions:
        if field is None or r.field == field:
            names.extend(n for n in r.matchers if n not in names)
    if not names:
        return value
    redacted, _ = matchers.redact(value, names)
    return redacted
