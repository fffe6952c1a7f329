"""Style rules in the spirit of Regal (W06xx), over the checked AST, and `@suppress`.

- W0601 a `deny` without `because`: the agent (and the log) get no reason.
- W0602 a rule without `@id` in a policy of more than `ID_THRESHOLD` rules: its id is its
  file and line, which changes whenever a line is added above it (diffs, tests and audit
  logs refer to rules by id).
- W0603 a `const` named like a standard-library function (`len`, `lower`...): calls still
  mean the function, the constant reads as if it were one.
- W0604 a `@suppress` without a reason: write `@suppress("W0507: the exception is intended")`.

Every finding of the analysis, style or not, is dropped for a rule carrying
`@suppress("CODE[, CODE...]: reason")`.
"""

from __future__ import annotations

import re

from charter.compiler.analysis.locate import locator
from charter.compiler.analysis.model import Finding, Related
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.diagnostics import (
    CONST_SHADOWS_FUNCTION,
    DENY_WITHOUT_BECAUSE,
    RULE_WITHOUT_ID,
    SUPPRESS_WITHOUT_REASON,
)
from charter.language.source import Span
from charter.stdlib.functions import FUNCTIONS

ID_THRESHOLD = 20
_SUPPRESS = re.compile(r"\s*((?:[A-Z]\d{4}\s*,\s*)*[A-Z]\d{4})\s*:\s*(\S.*)\Z", re.S)


def style(checked: CheckedPolicy) -> list[Finding]:
    out: list[Finding] = []
    many = len(checked.rules) > ID_THRESHOLD
    loc = locator(checked)
    for flat in checked.rules:
        item = flat.item
        at = _key(item.span)
        span = loc.rules.get(at, item.span)
        this = (Related(span, "this rule"),)
        if isinstance(item, ast.Rule) and item.effect.kind == "deny" and not item.because:
            out.append(Finding(
                DENY_WITHOUT_BECAUSE.code, "warning", "proved",
                "deny rule without `because`: the agent is told "
                "only the rule's id", span, this, rule=flat.id,
                help='add `because "..."` saying what to do instead', label="no reason",
                extra={"at": at}))
        if many and flat.id is None and isinstance(item, ast.Rule):
            out.append(Finding(
                RULE_WITHOUT_ID.code, "warning", "proved", f"rule without `@id` in a policy of "
                f"{len(checked.rules)} rules: its id is its position, which moves", span, this,
                help='add `@id("...")`', label="no @id", extra={"at": at}))
    for module in checked.modules:
        for decl in module.items:
            if isinstance(decl, ast.Const) and decl.name in FUNCTIONS:
                out.append(Finding(
                    CONST_SHADOWS_FUNCTION.code, "warning", "proved",
                    f"const `{decl.name}` has the name of a "
                    "standard-library function", decl.name_span,
                    (Related(decl.span, "declared here"),),
                    help="rename the constant", label="shadows a function"))
    for flat in checked.rules:
        for ann in _annotations(flat.item):
            if ann.name == "suppress" and (ann.arg is None or not _SUPPRESS.match(ann.arg)):
                out.append(Finding(
                    SUPPRESS_WITHOUT_REASON.code, "warning", "proved",
                    "`@suppress` needs the codes and a reason",
                    ann.span, (Related(flat.item.span, "on this rule"),),
                    help='write `@suppress("W0507: why this is intended")`', label="no reason"))
    return out


def _annotations(item: object) -> tuple[ast.Annotation, ...]:
    anns = getattr(item, "annotations", ())
    return tuple(anns) if isinstance(anns, tuple) else ()


def suppressions(checked: CheckedPolicy | None) -> dict[tuple[str, int, int], set[str]]:
    """(file, line, col) of each rule -> the codes its `@suppress` annotations drop."""
    out: dict[tuple[str, int, int], set[str]] = {}
    if checked is None:
        return out
    for flat in checked.rules:
        span = flat.item.span
        for ann in _annotations(flat.item):
            m = _SUPPRESS.match(ann.arg or "") if ann.name == "suppress" else None
            if m:
                codes = {c.strip() for c in m.group(1).split(",")}
                out.setdefault((span.file, span.line, span.col), set()).update(codes)
    return out


def apply(findings: list[Finding], suppressed: dict[tuple[str, int, int], set[str]]
          ) -> list[Finding]:
    """`findings` without those a rule's `@suppress` drops (by the finding's primary span)."""
    def kept(f: Finding) -> bool:
        codes = suppressed.get(f.extra.get("at") or _key(f.span), set())
        return f.code not in codes and f.extra.get("suspected") not in codes
    return [f for f in findings if kept(f)]


def _key(span: Span) -> tuple[str, int, int]:
    return (span.file, span.line, span.col)
