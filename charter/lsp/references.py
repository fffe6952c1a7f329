"""Find references and rename: constants, matchers and tools, across a policy's files.

A constant or matcher is its declaration's name and every `Name` that refers to it; a tool is
its declaration's name and every string naming it exactly in a tool target, a test `call` or
a `previously call` (a glob that matches it is not a reference: renaming the tool does not
rename the glob). Occurrences are (file, start, end) character offsets of the name itself,
without the quotes of a tool name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from charter.language import ast
from charter.lsp.analysis import Analysis
from charter.lsp.nodes import _children, chain_at, declarations, tool_name_at

Occurrence = tuple[str, int, int]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOOL = re.compile(r'[^"\\\n*]+\Z')
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def target_at(analysis: Analysis, offset: int) -> tuple[str, str] | None:
    """("name", const or matcher) or ("tool", name) of what is under `offset`."""
    module = analysis.module
    if module is None:
        return None
    for node in reversed(chain_at(module, offset)):
        tool = tool_name_at(analysis.text, node, offset)
        if tool is not None:
            return ("tool", tool) if "*" not in tool else None
        if isinstance(node, ast.Name):
            return ("name", node.id)
        if isinstance(node, ast.Const | ast.MatcherDecl) and (
                node.name_span.start <= offset <= node.name_span.end):
            return ("name", node.name)
    return None


def references(analysis: Analysis, offset: int) -> list[Occurrence]:
    """Every occurrence of what is under `offset`, declarations included."""
    target = target_at(analysis, offset)
    if target is None:
        return []
    kind, name = target
    texts = {s.name: s.text for s in analysis.comp.sources.values()}
    out: list[Occurrence] = []
    for item, span in declarations(analysis.comp.modules):
        if kind == "name" and isinstance(item, ast.Const | ast.MatcherDecl) and item.name == name:
            out.append((span.file, span.start, span.end))
        if kind == "tool" and isinstance(item, ast.ToolDecl) and item.name == name:
            out.extend(_tool_strings(texts.get(span.file, ""), span.file, span.start,
                                     span.end, name, first_only=True))
    for module in analysis.comp.modules:
        text = texts.get(module.file, "")
        for node in _walk(module):
            if kind == "name" and isinstance(node, ast.Name) and node.id == name:
                out.append((module.file, node.span.start, node.span.end))
            elif kind == "tool" and isinstance(node, ast.ToolTarget) and name in node.names:
                out.extend(_tool_strings(text, module.file, node.span.start, node.span.end,
                                         name, first_only=False))
            elif kind == "tool" and isinstance(node, ast.TestCall | ast.Previously):
                out.extend(_tool_strings(text, module.file, node.span.start, node.span.end,
                                         name, first_only=True))
    return sorted(set(out))


def valid_name(kind: str, new: str) -> bool:
    """Is `new` a name the rename may write (an identifier; a tool name without quotes or
    globs)?"""
    return bool(_NAME.match(new) if kind == "name" else _TOOL.match(new))


def _tool_strings(text: str, file: str, start: int, end: int, name: str,
                  first_only: bool) -> Iterator[Occurrence]:
    for n, m in enumerate(_STRING.finditer(text, start, end)):
        if first_only and n > 0:
            return
        if m.group()[1:-1] == name:
            yield (file, m.start() + 1, m.end() - 1)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in _children(node):
        yield from _walk(child)
