"""Charter positions and diagnostics as LSP ones.

Spans count characters (code points) from 1; LSP positions count from 0 in the client's
units (UTF-16 by default), so every conversion goes through the document's position codec.
"""

from __future__ import annotations

import json
from typing import Any

from lsprotocol import types
from pygls.workspace import TextDocument

from charter.compiler.analysis.model import jsonable
from charter.language.source import Diagnostic, Span

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


def _offset(doc: TextDocument, line: int, col: int) -> int:
    lines = doc.lines
    line = min(max(line, 1), len(lines) + 1)
    before = sum(len(x) for x in lines[: line - 1])
    width = len(lines[line - 1].rstrip("\r\n")) if line <= len(lines) else 0
    return before + min(max(col, 1) - 1, width)


def span_range(doc: TextDocument, span: Span) -> types.Range:
    """The LSP range of a span of `doc`."""
    start = _offset(doc, span.line, span.col)
    end = max(_offset(doc, span.end_line, span.end_col), start)
    return types.Range(doc.client_position_at_offset(start), doc.client_position_at_offset(end))


def offset_range(doc: TextDocument, start: int, end: int) -> types.Range:
    """The LSP range of character offsets `[start, end)` of `doc`."""
    return types.Range(doc.client_position_at_offset(start), doc.client_position_at_offset(end))


def whole_range(doc: TextDocument) -> types.Range:
    """The range covering the whole document."""
    return offset_range(doc, 0, len(doc.source))


def diagnostic(doc: TextDocument, d: Diagnostic) -> types.Diagnostic:
    """An LSP diagnostic with the code and message `charter check` prints (help and notes on
    the following lines, as `charter check` shows them)."""
    message = d.message
    if d.help:
        message += f"\nhelp: {d.help}"
    for note in d.notes:
        message += f"\nnote: {note}"
    return types.Diagnostic(
        range=span_range(doc, d.span),
        message=message,
        severity=_SEVERITY.get(d.severity, types.DiagnosticSeverity.Error),
        code=d.code,
        source="charter",
    )


def finding(doc: TextDocument, f: Any, related: list[types.DiagnosticRelatedInformation]
            ) -> types.Diagnostic:
    """An analysis finding as an LSP diagnostic, the other rule as related information and
    the witness on the following lines (as `charter analyze` prints it)."""
    message = f.message
    if f.witness is not None:
        message += f"\nexample: {json.dumps(jsonable(f.witness.request))} -> {f.witness.effect}"
    if f.help:
        message += f"\nhelp: {f.help}"
    return types.Diagnostic(
        range=span_range(doc, f.span), message=message,
        severity=_SEVERITY.get(f.severity, types.DiagnosticSeverity.Warning),
        code=f.code, source="charter analyze", related_information=related or None,
    )
