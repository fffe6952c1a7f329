"""Finding what is under the cursor: syntax nodes, tool names, declarations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from charter.language import ast
from charter.language.source import Span

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def chain_at(module: ast.Module, offset: int) -> list[Any]:
    """The syntax nodes whose span contains `offset`, outermost first."""
    chain: list[Any] = []
    node: Any = module
    while True:
        chain.append(node)
        child = next((c for c in _children(node) if _contains(c.span, offset)), None)
        if child is None:
            return chain
        node = child


def _contains(span: Span, offset: int) -> bool:
    # The end is included so that a cursor just after a word still hovers it.
    return span.start <= offset <= span.end and span.end > span.start


def _children(node: Any) -> Iterator[Any]:
    for _, value in ast.fields(node):
        yield from _nodes(value)


def _nodes(value: Any) -> Iterator[Any]:
    if isinstance(value, tuple):
        for v in value:
            yield from _nodes(v)
    elif isinstance(value, ast.Node) and isinstance(getattr(value, "span", None), Span):
        yield value


def tool_name_at(text: str, node: Any, offset: int) -> str | None:
    """The tool name (string literal) under the cursor inside a tool target, a declaration,
    a test `call` or `previously call`."""
    if not isinstance(node, ast.ToolTarget | ast.ToolDecl | ast.TestCall | ast.Previously):
        return None
    for m in _STRING.finditer(text, node.span.start, node.span.end):
        if m.start() <= offset <= m.end():
            name = m.group()[1:-1]
            if isinstance(node, ast.ToolTarget) and name not in node.names:
                return None
            return name
        if not isinstance(node, ast.ToolTarget):
            return None  # only the first string of the others names a tool
    return None


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Tool-name globs: `*` within one dot-separated segment, `**` across segments."""
    parts = re.split(r"(\*\*|\*)", pattern)
    body = "".join(
        ".*" if p == "**" else "[^.]*" if p == "*" else re.escape(p) for p in parts
    )
    return re.compile(body + r"\Z")


def declarations(modules: list[ast.Module]) -> Iterator[tuple[ast.Item, Span]]:
    """Every named declaration (const, matcher, tool) with the span of its name."""
    for module in modules:
        for item in module.items:
            if isinstance(item, ast.Const | ast.MatcherDecl | ast.ToolDecl):
                yield item, item.name_span
