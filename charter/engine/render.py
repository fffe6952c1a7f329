"""IR expressions rendered back as policy-like text (for explain and dumps)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from charter.engine import ir


def render_value(v: object) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, frozenset):
        return "{" + ", ".join(sorted(render_value(x) for x in v)) + "}"
    if isinstance(v, tuple):
        return "[" + ", ".join(render_value(x) for x in v) + "]"
    if isinstance(v, timedelta):
        return f"{int(v.total_seconds())}s"
    if isinstance(v, Decimal | int):
        return str(v)
    return repr(v)


def render_expr(e: ir.Expr) -> str:  # noqa: C901 - one branch per node kind
    if isinstance(e, ir.Const):
        return render_value(e.value)
    if isinstance(e, ir.Path):
        return e.text
    if isinstance(e, ir.BoolOp):
        return "(" + f" {e.op} ".join(render_expr(i) for i in e.items) + ")"
    if isinstance(e, ir.Not):
        return f"not {render_expr(e.operand)}"
    if isinstance(e, ir.Cmp | ir.Arith):
        return f"{render_expr(e.left)} {e.op} {render_expr(e.right)}"
    if isinstance(e, ir.Neg):
        return f"-{render_expr(e.operand)}"
    if isinstance(e, ir.In):
        return f"{render_expr(e.item)} {'not in' if e.negate else 'in'} {render_expr(e.coll)}"
    if isinstance(e, ir.Like):
        return f"{render_expr(e.value)} like {render_value(e.pattern)}"
    if isinstance(e, ir.Matches):
        return f'{render_expr(e.value)} matches r"{e.pattern}"'
    if isinstance(e, ir.Contains):
        return f"{render_expr(e.value)} contains {', '.join(e.matchers)}"
    if isinstance(e, ir.CountOf):
        return f"count({', '.join(e.matchers)} in {render_expr(e.value)})"
    if isinstance(e, ir.Fn):
        return f"{e.name}({', '.join(render_expr(a) for a in e.args)})"
    if isinstance(e, ir.Has):
        return f"has({'.'.join([e.root, *e.keys])})"
    if isinstance(e, ir.Index):
        return f"{render_expr(e.obj)}[{render_expr(e.key)}]"
    if isinstance(e, ir.Approved):
        return "approved" + (f' by "{e.group}"' if e.group else "")
    if isinstance(e, ir.Previously):
        return f'previously call "{e.tool}"'
    if isinstance(e, ir.Labels):
        return "session.labels"
    if isinstance(e, ir.Counter):
        return f"usage({e.counter})"
    if isinstance(e, ir.Estimate):
        return f"estimate.{e.field}"
    return type(e).__name__


def render_code(source: str, line_map: Mapping[int, int], rules: Mapping[int, ir.Rule]) -> str:
    """Generated source with line numbers, each line the line map ties to a rule marked with
    the rule's id and place in the policy."""
    lines = source.splitlines()
    width = len(str(len(lines)))
    longest = max((len(line) for line in lines), default=0)
    out = []
    for number, line in enumerate(lines, 1):
        rule = rules.get(line_map.get(number, -1))
        where = (f"  # <- {rule.id} ({rule.file}:{rule.line}:{rule.col})"
                 if rule is not None and not line.lstrip().startswith("#") else "")
        out.append(f"{number:>{width}} {line.ljust(min(longest, 100)) if where else line}{where}")
    return "\n".join(out)
