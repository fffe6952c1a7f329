"""Hover text: the type of a field, a tool's declaration, a function's or matcher's doc."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.language import ast
from charter.language.checked import CheckedPolicy, ConstRef, MatcherRef, PathRef, ToolSig
from charter.language.fmt_expr import quote
from charter.language.source import Span
from charter.lsp.analysis import Analysis
from charter.lsp.nodes import chain_at, glob_regex, tool_name_at
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.matchers import GROUPS, MODULES

_EXPRS = (
    ast.Name, ast.Attr, ast.Index, ast.Call, ast.Has, ast.Count, ast.Binary, ast.Unary,
    ast.Literal_, ast.SetLit, ast.ListLit, ast.RecordLit, ast.MapLit, ast.Approved, ast.Previously,
)


@dataclass(frozen=True, slots=True)
class HoverText:
    """Markdown to show, and the span it is about."""

    markdown: str
    span: Span


def code(text: str) -> str:
    """A fenced `agentpolicy` block."""
    return f"```agentpolicy\n{text}\n```"


def tool_signature(sig: ToolSig) -> str:
    """`tool "name" (a: int, b?: str) tags x` for a declared tool."""
    params = ", ".join(
        f"{name}{'?' if optional else ''}: {typ}" for name, (typ, optional) in sig.params.items()
    )
    tags = f" tags {', '.join(sig.tags)}" if sig.tags else ""
    return f"tool {quote(sig.name)} ({params}){tags}"


def hover(analysis: Analysis, offset: int) -> HoverText | None:
    """What to show for the cursor at `offset` of the analysed document, if anything."""
    module, checked = analysis.module, analysis.checked
    if module is None or checked is None:
        return None
    chain = chain_at(module, offset)
    for node in reversed(chain):
        found = _about(analysis, checked, node, offset)
        if found is not None:
            return found
    return None


def _about(a: Analysis, checked: CheckedPolicy, node: Any, offset: int) -> HoverText | None:
    name = tool_name_at(a.text, node, offset)
    if name is not None:
        return _tool(checked, name, node.span)
    if isinstance(node, ast.Call) and node.func_span.start <= offset <= node.func_span.end:
        fn = FUNCTIONS.get(node.func)
        if fn is not None:
            sig = f"{fn.name}({', '.join(fn.params)}) -> {fn.returns}"
            return HoverText(f"{code(sig)}\n\n{fn.doc}", node.func_span)
    if isinstance(node, ast.Const | ast.MatcherDecl) and _on(node.name_span, offset):
        return _declared(checked, node.name, node.name_span)
    if not isinstance(node, _EXPRS):
        return None
    ref = checked.refs.get(id(node))
    if isinstance(ref, MatcherRef):
        return HoverText(_matchers(checked, _text(a, node.span)), node.span)
    if isinstance(ref, ConstRef) and isinstance(node, ast.Name):
        return _declared(checked, node.id, node.span)
    typ = checked.types.get(id(node))
    if isinstance(ref, PathRef):
        path = ".".join((ref.root, *ref.keys))
        return HoverText(code(f"{path}: {ref.type}"), node.span)
    if typ is not None and isinstance(node, ast.Name | ast.Attr | ast.Index):
        return HoverText(code(f"{_text(a, node.span)}: {typ}"), node.span)
    return None


def _on(span: Span, offset: int) -> bool:
    return span.start <= offset <= span.end


def _text(a: Analysis, span: Span) -> str:
    return a.text[span.start : span.end]


def _tool(checked: CheckedPolicy, name: str, span: Span) -> HoverText | None:
    if name in checked.tools:
        return HoverText(code(tool_signature(checked.tools[name])), span)
    matching = [s for n, s in sorted(checked.tools.items()) if glob_regex(name).match(n)]
    if not matching:
        return HoverText(f"`{name}`: no declared tool matches", span)
    body = "\n".join(tool_signature(s) for s in matching)
    return HoverText(f"`{name}` matches:\n\n{code(body)}", span)


def _declared(checked: CheckedPolicy, name: str, span: Span) -> HoverText | None:
    if name in checked.matchers:
        return HoverText(code(f'matcher {name} = r"{checked.matchers[name]}"'), span)
    if name in checked.consts:
        return HoverText(code(f"const {name} = {_value(checked.consts[name])}"), span)
    return None


def _value(value: object) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset | set):
        return "{" + ", ".join(sorted(_value(v) for v in value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def _matchers(checked: CheckedPolicy, written: str) -> str:
    """Docs of a matcher reference: a stdlib matcher, a group (`pii.any`) or a user one."""
    module, _, short = written.partition(".")
    spec = MODULES.get(module, {}).get(short)
    if spec is not None:
        return f"{code(f'matcher {written}  # redacts to {spec.placeholder}')}\n\n{spec.doc}"
    if written in GROUPS:
        members = ", ".join(GROUPS[written])
        return f"{code(f'matcher group {written}')}\n\nAny of: {members}"
    if written in checked.matchers:
        return code(f'matcher {written} = r"{checked.matchers[written]}"')
    return code(f"matcher {written}")
