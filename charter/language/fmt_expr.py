"""Expressions, literals and types as formatter documents, with the fewest parentheses that
keep the tree the same."""

from __future__ import annotations

from decimal import Decimal

from charter.language import ast
from charter.language.fmt_doc import LINE, SOFTLINE, Doc, Group, IfBreak, Nest, concat, join

# Binding strength, loosest first, as in the grammar: or, and, not, comparison, sum,
# product, unary minus, postfix; atoms bind tightest.
_OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _NEG, _POSTFIX, _ATOM = range(1, 10)
_BINARY_LEVEL = {"or": _OR, "and": _AND, "+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT}

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
INDENT = 2


def quote(value: str) -> str:
    """A string literal for `value` with canonical escapes: `\\"`, `\\\\`, `\\n`, `\\t`,
    `\\r`, `\\uXXXX` for other control characters; everything else as itself."""
    out = ['"']
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def number(value: int | Decimal) -> str:
    """A number as written: decimals keep their trailing zeros (`2.00`)."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def bracketed(open_: str, items: list[Doc], close: str) -> Doc:
    """`open_ a, b close` on one line, or one item per line with a trailing comma."""
    if not items:
        return open_ + close
    body = join(concat(",", LINE), items)
    inner = Nest(INDENT, concat(SOFTLINE, body, IfBreak(",")))
    return Group(concat(open_, inner, SOFTLINE, close))


def type_doc(t: ast.TypeExpr) -> str:
    """`int`, `set<str>`, `map<str, int>`."""
    if not t.args:
        return t.name
    return f"{t.name}<{', '.join(type_doc(a) for a in t.args)}>"


def expr(e: ast.Expr) -> Doc:
    """The document of an expression."""
    return _expr(e)[0]


def _at_least(e: ast.Expr, level: int) -> Doc:
    doc, own = _expr(e)
    return concat("(", doc, ")") if own < level else doc


def _expr(e: ast.Expr) -> tuple[Doc, int]:
    if isinstance(e, ast.Literal_):
        return _literal(e.value), _ATOM
    if isinstance(e, ast.Regex):
        return f'r"{e.pattern}"', _ATOM
    if isinstance(e, ast.Name):
        return e.id, _ATOM
    if isinstance(e, ast.SetLit):
        return bracketed("{", [expr(x) for x in e.items], "}"), _ATOM
    if isinstance(e, ast.ListLit):
        return bracketed("[", [expr(x) for x in e.items], "]"), _ATOM
    if isinstance(e, ast.RecordLit):
        return record(e), _ATOM
    if isinstance(e, ast.MapLit):
        entries = [concat(quote(f.name), ": ", expr(f.value)) for f in e.entries]
        return bracketed("{", entries, "}"), _ATOM
    if isinstance(e, ast.Attr):
        return concat(_at_least(e.obj, _POSTFIX), ".", e.name), _POSTFIX
    if isinstance(e, ast.Index):
        return concat(_at_least(e.obj, _POSTFIX), "[", expr(e.key), "]"), _POSTFIX
    if isinstance(e, ast.Call):
        return bracketed(f"{e.func}(", [expr(a) for a in e.args], ")"), _ATOM
    if isinstance(e, ast.Has):
        return concat("has(", expr(e.path), ")"), _ATOM
    if isinstance(e, ast.Count):
        inner = concat(_at_least(e.matcher, _SUM), " in ", _at_least(e.value, _SUM))
        return concat("count(", inner, ")"), _ATOM
    if isinstance(e, ast.Approved):
        if e.group is None:
            return "approved", _ATOM
        of = f"{e.count} of " if e.count != 1 else ""
        return f"approved by {of}{quote(e.group)}", _ATOM
    if isinstance(e, ast.Previously):
        return _previously(e), _ATOM
    if isinstance(e, ast.Unary):
        if e.op == "not":
            # `not (a in b)` rather than `not a in b`, which reads as `(not a) in b`.
            level = _ATOM if isinstance(e.operand, ast.Binary) else _NOT
            return concat("not ", _at_least(e.operand, level)), _NOT
        return concat("-", _at_least(e.operand, _NEG)), _NEG
    return _binary(e)


def _binary(e: ast.Binary) -> tuple[Doc, int]:
    if e.op in ("and", "or"):
        return _chain(e), _BINARY_LEVEL[e.op]
    level = _BINARY_LEVEL.get(e.op)
    if level is None:  # comparisons do not chain: both sides are sums or tighter
        left, right = _at_least(e.left, _SUM), _at_least(e.right, _SUM)
        level = _CMP
    else:  # left-associative: the right side must bind tighter
        left, right = _at_least(e.left, level), _at_least(e.right, level + 1)
    return concat(left, f" {e.op} ", right), level


def _chain(e: ast.Binary) -> Doc:
    """`a or b or c`: one line if it fits, else one operand per line, the operator first."""
    level = _BINARY_LEVEL[e.op]
    operands: list[ast.Expr] = [e.right]
    left: ast.Expr = e.left
    while isinstance(left, ast.Binary) and left.op == e.op:
        operands.append(left.right)
        left = left.left
    docs = [_at_least(left, level)] + [_at_least(x, level + 1) for x in reversed(operands)]
    rest = [concat(LINE, f"{e.op} ", d) for d in docs[1:]]
    return Group(Nest(INDENT, concat(docs[0], *rest)))


def _literal(value: str | int | Decimal | bool | ast.Duration) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, ast.Duration):
        return value.text
    return number(value)


def record(r: ast.RecordLit) -> Doc:
    """`{name: value, ...}`."""
    return bracketed("{", [concat(f.name, ": ", expr(f.value)) for f in r.fields], "}")


def _previously(e: ast.Previously) -> Doc:
    parts: list[Doc] = [f"previously call {quote(e.tool)}"]
    if e.with_ is not None:
        parts += [" with ", record(e.with_)]
    if e.within is not None:
        parts.append(f" within {e.within.text}")
    return concat(*parts)
