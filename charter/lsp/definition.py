"""Go to definition: constants, matchers and tools to their declarations."""

from __future__ import annotations

from typing import Any

from charter.language import ast
from charter.language.source import Span
from charter.lsp.analysis import Analysis
from charter.lsp.nodes import chain_at, declarations, glob_regex, tool_name_at


def definitions(analysis: Analysis, offset: int) -> list[Span]:
    """The declarations (name spans, possibly in sibling files) of what is at `offset`."""
    module = analysis.module
    if module is None:
        return []
    decls = list(declarations(analysis.comp.modules))
    for node in reversed(chain_at(module, offset)):
        found = _of(analysis, node, offset, decls)
        if found is not None:
            return found
    return []


def _of(
    analysis: Analysis, node: Any, offset: int, decls: list[tuple[ast.Item, Span]]
) -> list[Span] | None:
    tool = tool_name_at(analysis.text, node, offset)
    if tool is not None:
        pattern = glob_regex(tool)
        return [
            span for item, span in decls
            if isinstance(item, ast.ToolDecl) and pattern.match(item.name)
        ]
    if isinstance(node, ast.Name):
        return [
            span for item, span in decls
            if isinstance(item, ast.Const | ast.MatcherDecl) and item.name == node.id
        ]
    return None
