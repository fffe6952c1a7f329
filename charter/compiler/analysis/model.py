"""What the analysis reports: `Finding`, its related spans and its witness."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from charter.language.source import Span

Level = Literal["error", "warning", "info"]
Status = Literal["proved", "witnessed", "inconclusive"]


@dataclass(frozen=True)
class Related:
    """Another place a finding is about (the other rule, the tool's declaration)."""

    span: Span
    message: str


@dataclass(frozen=True)
class Witness:
    """A concrete request (and the state beside it) that shows the finding, with the
    decision both evaluators gave it."""

    request: dict[str, Any]
    labels: tuple[str, ...] = ()
    approved: tuple[str, ...] = ()
    effect: str = ""
    rules: tuple[str, ...] = ()

    @property
    def needs_state(self) -> bool:
        return bool(self.labels or self.approved)

    def to_json(self) -> dict[str, Any]:
        return {"request": jsonable(self.request),
                "snapshot": {"labels": list(self.labels), "approved_groups": list(self.approved)},
                "decision": {"effect": self.effect, "rules": list(self.rules)}}


@dataclass(frozen=True)
class Finding:
    """One result of the analysis: code (W05xx, W06xx, I0599), level, how it is known
    (`proved` in the exact fragment, `witnessed` by a request both evaluators decided as
    claimed, or `inconclusive`), where, and the other places it concerns."""

    code: str
    severity: Level
    status: Status
    message: str
    span: Span
    related: tuple[Related, ...] = ()
    witness: Witness | None = None
    rule: str | None = None  # the id of the rule reported on
    help: str | None = None
    label: str = ""  # text under the primary span's carets
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code, "severity": self.severity, "status": self.status,
            "message": self.message, "span": span_json(self.span),
            "related": [{"span": span_json(r.span), "message": r.message}
                        for r in self.related],
            "witness": self.witness.to_json() if self.witness else None,
            "rule": self.rule, "help": self.help,
        }


def span_json(span: Span) -> dict[str, Any]:
    return {"file": span.file, "line": span.line, "col": span.col,
            "end_line": span.end_line, "end_col": span.end_col}


def jsonable(v: Any) -> Any:
    """A request value as JSON data (decimals as numbers, tuples as lists)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [jsonable(x) for x in v]
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v
