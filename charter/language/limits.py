"""How deeply a policy may nest, checked right after parsing (CH0112).

Every later stage (checker, lowering, interpreter, formatter, language server) walks
expressions recursively, so nesting is bounded here, where the parser (which builds the tree
bottom-up without recursion) has just produced it. Each expression node and each `scope`
counts one level: `not not x` is 3 levels, `a and b and c` is 3 (two `and`s and an
operand), `[[1]]` is 3, a rule inside two scopes starts at level 2. Parentheses do not count.
An item deeper than `MAX_DEPTH` is reported and left out, like an item with a syntax error.
"""

from __future__ import annotations

from functools import cache

import msgspec

from charter.language import ast
from charter.language.diagnostics import NESTED_TOO_DEEPLY
from charter.language.source import Diagnostic, Span

#: The deepest nesting of expressions and scopes a policy may have. Real policies stay under
#: 15; at 100 every recursive stage stays far from Python's recursion limit of 1000.
MAX_DEPTH = 100

_EXPRS = (
    ast.Literal_, ast.Regex, ast.SetLit, ast.ListLit, ast.RecordLit, ast.Name, ast.Attr,
    ast.Index, ast.Call, ast.Unary, ast.Binary, ast.Has, ast.Count, ast.Approved,
    ast.Previously,
)
_LEVELS = (*_EXPRS, ast.Scope)


@cache
def _fields(cls: type[ast.Node]) -> tuple[str, ...]:
    """The fields of a node class that can hold nodes (not spans, names or numbers)."""
    return tuple(name for name in cls.__struct_fields__
                 if not name.endswith("span") and name != "annotations")


def too_deep(node: object, level: int = 0) -> Span | None:
    """The span of the first node nested deeper than `MAX_DEPTH` in `node`, or None.

    `level` is the depth `node` sits at. Iterative: any depth is fine here."""
    stack: list[tuple[object, int]] = [(node, level)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, tuple):
            stack.extend((item, depth) for item in reversed(value))
            continue
        if not isinstance(value, ast.Node):
            continue
        span = getattr(value, "span", None)
        if isinstance(span, Span) and depth + (span.end - span.start) <= MAX_DEPTH:
            continue  # every level takes at least one character of the text: not deep
        if isinstance(value, _LEVELS):
            depth += 1
            if depth > MAX_DEPTH:
                return value.span
        children = [getattr(value, name) for name in _fields(type(value))]
        stack.extend((child, depth) for child in reversed(children))
    return None


def diagnostic(span: Span) -> Diagnostic:
    return NESTED_TOO_DEEPLY.at(
        span,
        f"nested too deeply: more than {MAX_DEPTH} levels of expressions and scopes",
        "split the condition over several rules or `const`s; for a long `or` of equalities "
        "write `x in [...]`",
    )


def enforce(module: ast.Module) -> tuple[ast.Module, list[Diagnostic]]:
    """The module without its too-deeply nested items, and a CH0112 for each of them."""
    kept: list[ast.Item] = []
    diagnostics: list[Diagnostic] = []
    for item in module.items:
        span = too_deep(item)
        if span is None:
            kept.append(item)
        else:
            diagnostics.append(diagnostic(span))
    if not diagnostics:
        return module, []
    return msgspec.structs.replace(module, items=tuple(kept)), diagnostics
