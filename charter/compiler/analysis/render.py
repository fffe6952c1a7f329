"""Findings as text (rustc-style, both spans shown), JSON and SARIF 2.1.0."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from charter.compiler.analysis.model import Finding, jsonable
from charter.language.source import Source, Span

TestBlock = Callable[[Finding], str | None]
DOCS = "https://charter.dev/docs/analysis#"  # docs/analysis.md, one section per code


def text(findings: Sequence[Finding], sources: Mapping[str, Source],
         test_block: TestBlock | None = None) -> str:
    """Every finding with its primary span, each related span, the witness and help."""
    return "\n\n".join(render_one(f, sources, test_block) for f in findings)


def render_one(f: Finding, sources: Mapping[str, Source],
               test_block: TestBlock | None = None) -> str:
    status = "" if f.status == "witnessed" else f" ({f.status})"
    out = [f"{f.span}: {f.severity}[{f.code}]{status}: {f.message}"]
    out.extend(_snippet(f.span, sources, f.label))
    for rel in f.related:
        out.append(f"{rel.span}: note: {rel.message}")
        out.extend(_snippet(rel.span, sources, ""))
    if f.witness is not None:
        req = json.dumps(jsonable(f.witness.request), sort_keys=False)
        out.append(f"  = example: {req}")
        if f.witness.needs_state:
            state = {"labels": list(f.witness.labels), "approved": list(f.witness.approved)}
            out.append(f"             with state {json.dumps(state)}")
        rules = ", ".join(f.witness.rules) or "none"
        out.append(f"             -> {f.witness.effect} (rules: {rules})")
    if f.help:
        out.append(f"  = help: {f.help}")
    block = test_block(f) if test_block is not None and f.witness is not None else None
    if block:
        out.append("  = to pin today's behaviour:")
        out.extend("      " + line for line in block.splitlines())
    return "\n".join(out)


def _snippet(span: Span, sources: Mapping[str, Source], label: str) -> list[str]:
    src = sources.get(span.file)
    if src is None or span.line <= 0:
        return []
    line = src.line_text(span.line)
    gutter = str(span.line)
    pad = " " * len(gutter)
    width = max(1, (span.end_col if span.end_line == span.line else len(line) + 1) - span.col)
    marks = " " * (span.col - 1) + "^" * width + (f" {label}" if label else "")
    return [f"{pad} |", f"{gutter} | {line}", f"{pad} | {marks}"]


def to_json(findings: Sequence[Finding], test_block: TestBlock | None = None
            ) -> list[dict[str, Any]]:
    out = []
    for f in findings:
        item = f.to_json()
        item["test_block"] = test_block(f) if test_block is not None and f.witness else None
        out.append(item)
    return out


_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def sarif(findings: Sequence[Finding], descriptions: Mapping[str, str] | None = None
          ) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, one rule per code, `relatedLocations` for the other
    rule, the witness in the result's `properties`."""
    codes = sorted({f.code for f in findings})
    rules = [{"id": c, "helpUri": DOCS + c.lower(),
              "shortDescription": {"text": (descriptions or {}).get(c, c)}} for c in codes]
    results = []
    for f in findings:
        related = [{"id": n, "message": {"text": r.message}, "physicalLocation": _location(r.span)}
                   for n, r in enumerate(f.related)]
        results.append({
            "ruleId": f.code, "ruleIndex": codes.index(f.code),
            "level": _SARIF_LEVEL[f.severity], "message": {"text": f.message},
            "locations": [{"physicalLocation": _location(f.span)}],
            "relatedLocations": related,
            "properties": {"status": f.status, "rule": f.rule,
                           "witness": f.witness.to_json() if f.witness else None},
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "charter", "informationUri": DOCS,
                                      "rules": rules}}, "results": results}],
    }


def _location(span: Span) -> dict[str, Any]:
    return {"artifactLocation": {"uri": span.file},
            "region": {"startLine": span.line, "startColumn": span.col,
                       "endLine": span.end_line, "endColumn": span.end_col}}
