"""The answer to one request: `Decision`, a msgspec Struct that encodes to JSON as is, and
the structured request errors it carries (`RuleError`)."""

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


class RuleError(msgspec.Struct, frozen=True):
    """Why a request could not be decided as written (DESIGN §1.6), as data.

    `rule` is the id of the rule that erred, or None when no rule did: the request itself
    is malformed (the request reader, or the Guard, could not read it). `field` is the
    request field at fault (`args.amount`, `tool.name`), or None when no one field is.
    `message` is one readable sentence that names the field itself, so that it reads
    alone; `reason` is the text the decision's reasons carry for it. Encodes to JSON as
    `{"rule": ..., "field": ..., "message": ...}`.
    """

    rule: str | None
    field: str | None
    message: str

    @property
    def reason(self) -> str:
        """`request error: MESSAGE (rule ID)`, or `malformed request: MESSAGE` without a rule."""
        if self.rule is None:
            return f"malformed request: {self.message}"
        return f"request error: {self.message} (rule {self.rule})"


class Decision(msgspec.Struct, frozen=True):
    """The effect and everything that led to it.

    `effect` is "allow", "deny" or "require_approval"; `reasons` holds every matched rule's
    reason (not just the winner's) and request errors; `rules` the ids of matched rules;
    `errors` every request error behind the decision, as `RuleError`s (their `reason` texts
    are among `reasons` whenever they decided the effect).
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
    errors: tuple[RuleError, ...] = ()
    policy: PolicyInfo | None = None
    action: str | None = None  # digest of the exact action (set by the Guard), for approvals
    reservation: str | None = None  # the Guard's reservation token, for settle()

    @classmethod
    def refused(cls, info: PolicyInfo | None, *errors: RuleError) -> Decision:
        """The deny caused by errors: a malformed request, or rule errors that decided it
        alone. Its reasons are the errors' `reason` texts. Every such deny is built here."""
        return cls(effect="deny", allowed=False, reasons=tuple(e.reason for e in errors),
                   errors=errors, policy=info)

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
