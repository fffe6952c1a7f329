"""Spans for findings, from the checked AST: a rule's whole first line, a tool's declaration."""

from __future__ import annotations

from charter.compiler.analysis.findings import Locator
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.source import Span


def locator(checked: CheckedPolicy | None) -> Locator:
    """The spans of the rules, tools and `default` of a checked policy (empty without one)."""
    loc = Locator()
    if checked is None:
        return loc
    for flat in checked.rules:
        item = flat.item
        # Past the annotations: the line that says what the rule does.
        start = item.effect.span if isinstance(item, ast.Rule) else item.span
        src = checked.sources.get(item.span.file)
        text = src.line_text(start.line) if src is not None else ""
        col = len(text) - len(text.lstrip()) + 1 if text.strip() else start.col
        col = min(col, start.col)  # from `on tool_result` when the stage leads the line
        shown = Span(item.span.file, start.line, col, item.span.end_line,
                     item.span.end_col, start.start - (start.col - col), item.span.end)
        loc.rules[(item.span.file, item.span.line, item.span.col)] = _first_line(shown, checked)
    for name, sig in checked.tools.items():
        loc.tools[name] = _first_line(sig.span, checked)
    for module in checked.modules:
        for decl in module.items:
            if isinstance(decl, ast.Default):
                loc.default = decl.span
    return loc


def _first_line(span: Span, checked: CheckedPolicy) -> Span:
    """The span cut at the end of its first line (rendered under one source line)."""
    if span.end_line == span.line:
        return span
    src = checked.sources.get(span.file)
    end = len(src.line_text(span.line)) + 1 if src is not None else span.col + 1
    return Span(span.file, span.line, span.col, span.line, max(end, span.col + 1),
                span.start, span.start + max(end - span.col, 1))
