"""Request values written back as policy text: counterexamples become pasteable `test` blocks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from charter.language import ast
from charter.language.fmt_expr import quote

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
GIVEN_ROOTS = ("agent", "user", "session", "estimate")
# A double-quoted string literal that the parser reads back as the text: the formatter's.
string = quote


def value(v: Any) -> str:
    """A value as a literal: records for dicts, lists for sequences, exact decimals."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        text = format(v, "f")
        return text if "." in text else text + ".0"
    if isinstance(v, float):
        return value(Decimal(repr(v)))
    if isinstance(v, str):
        return string(v)
    if isinstance(v, timedelta):
        return f"{int(v.total_seconds())}s"
    if isinstance(v, Mapping):
        return record(v)
    if isinstance(v, list | tuple | set | frozenset):
        items = sorted(v, key=repr) if isinstance(v, set | frozenset) else v
        return "[" + ", ".join(value(x) for x in items) + "]"
    return string(str(v))


def record(fields: Mapping[str, Any]) -> str:
    """`{name: value, ...}`. Keys that are not identifiers cannot be written in a record."""
    parts = []
    for k, v in fields.items():
        if not _NAME.match(k):
            raise ValueError(f"field name {k!r} cannot be written in a test record")
        parts.append(f"{k}: {value(v)}")
    return "{" + ", ".join(parts) + "}"


def expect(e: ast.Expect) -> str:
    """An `expect` line as written."""
    words = ["expect"]
    if e.negate:
        words.append("not")
    words.append("require approval" if e.outcome == "require_approval" else e.outcome)
    if e.group is not None:
        words.append(f"from {string(e.group)}")
    if e.because is not None:
        words.append(f"because {string(e.because)}")
    return " ".join(words)


def test_block(name: str, request: Mapping[str, Any], expectation: ast.Expect) -> str:
    """A `test` block that makes `request` and expects `expectation`."""
    givens = [f"{root} {record(request[root])}" for root in GIVEN_ROOTS
              if isinstance(request.get(root), Mapping)]
    tool = request.get("tool")
    tool_name = tool.get("name") if isinstance(tool, Mapping) else tool
    args = request.get("args")
    stage = request.get("stage", "tool_call")
    call = f"call {string(str(tool_name))} {record(args if isinstance(args, Mapping) else {})}"
    if stage != "tool_call":
        call = f"on {stage} {call}"
        if "result" in request:
            call += f" with result {value(request['result'])}"
    lines = [f"test {string(name)} {{"]
    if givens:
        lines.append("  given " + " ".join(givens))
    lines.append(f"  {call}")
    lines.append(f"  {expect(expectation)}")
    lines.append("}")
    return "\n".join(lines)
