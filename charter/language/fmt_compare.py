"""Structural comparison of syntax trees, ignoring where things are (spans)."""

from __future__ import annotations

from typing import Any

from charter.language import ast
from charter.language.source import Span


def shape(node: Any) -> Any:
    """A span-free, comparable image of an AST node (nested tuples of field values)."""
    if isinstance(node, Span):
        return None
    if isinstance(node, ast.Node):
        return (type(node).__name__,) + tuple(
            (name, shape(value)) for name, value in ast.fields(node) if name != "file"
        )
    if isinstance(node, tuple | list):
        return tuple(shape(x) for x in node)
    # Decimal("2.00") == Decimal("2.0"): compare numbers by their text, as written.
    return (type(node).__name__, str(node))


def same_tree(a: Any, b: Any) -> bool:
    """True when two ASTs differ only in their spans."""
    return bool(shape(a) == shape(b))
