"""The answer to one request: `Decision`, a msgspec Struct that encodes to JSON as is."""

from __future__ import annotations

from typing import Any

import msgspec


class PolicyInfo(msgspec.Struct, frozen=True):
    name: str
    version: str | None
    digest: str


class Redaction(msgspec.Struct, frozen=True):
    """What a `redact` rule masked in one field: kinds and counts, never the matched text."""

    field: str
    rule: str
    matchers: tuple[str, ...]
    counts: dict[str, int]


class ShadowHit(msgspec.Struct, frozen=True):
    """A `@shadow` rule that matched: reported, never enforced."""

    rule: str
    effect: str
    reason: str | None


class Decision(msgspec.Struct, frozen=True):
    """The effect and everything that led to it.

    `effect` is "allow", "deny" or "require_approval"; `reasons` holds every matched rule's
    reason (not just the winner's) and request errors; `rules` the ids of matched rules.
    """

    effect: str
    allowed: bool
    reasons: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    redactions: tuple[Redaction, ...] = ()
    warnings: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    shadow: tuple[ShadowHit, ...] = ()
    errors: tuple[str, ...] = ()
    policy: PolicyInfo | None = None
    action: str | None = None  # digest of the exact action (set by the Guard), for approvals
    reservation: str | None = None  # the Guard's reservation token, for settle()

    def redact(self, value: Any, field: str | None = None) -> Any:
        """`value` with every redaction of this decision applied (those for `field` only,
        when given). Structure is preserved; matches become typed placeholders."""
        from charter.engine.redactor import apply_redactions

        return apply_redactions(self, value, field)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out
