"""The generated source, parsed back and held to the shape the emitter writes.

Policy text must never become code in the host. The emitter only writes names from fixed
tables and literals through `repr`; this check is the second line: the source is parsed with
Python's own parser and every statement, node type, name and attribute must be one the
emitter can produce. If a future emitter bug let a string break out of a literal or a
comment, the result would have an extra statement, an unknown name or a node the emitter
never writes, and compiling fails closed with an `EmitError` instead of running it.
"""

from __future__ import annotations

# `_ast` is the C module `ast` is built on: the same node classes and parser flag, without
# `ast`'s own helpers (NodeVisitor, unparse, literal_eval...), whose import is ~4 M
# instructions of every hook process. `_walk` below is `ast.walk`.
import _ast as ast
from collections.abc import Collection, Iterator

#: The bucket function's own parameters, before the bound helpers and constants.
PARAMS = ("req", "st", "name", "tags", "stage")
#: Locals the emitter assigns (besides the hoisted `v0`, `r_0`, `te0`... it reports).
TEMPS = frozenset({"m", "sc", "t", "v_now"})
#: Builtins the emitter reads.
LOCALS = frozenset({"None", "list", "dict", "str", "bool", "int", "float", "len"})
#: Attributes the emitter calls or reads.
ATTRIBUTES = frozenset({
    "__class__", "startswith", "endswith", "isdisjoint", "get", "counters", "count",
    "is_finite", "adjusted", "is_signed",
})
#: Python syntax the emitter writes; anything else (lambda, import, comprehension...) is a bug.
NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Name, ast.Load, ast.Store,
    ast.Constant, ast.Assign, ast.AugAssign, ast.BitOr, ast.If, ast.Return, ast.BoolOp,
    ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.Eq, ast.NotEq, ast.Lt,
    ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn, ast.BinOp, ast.Add,
    ast.Sub, ast.Mult, ast.Call, ast.Attribute, ast.Subscript, ast.Tuple, ast.IfExp,
    ast.NamedExpr, ast.Dict,
)
CONSTANTS = (str, int, bool, type(None))


class EmitError(Exception):
    """The generated code is not what the emitter means to write (a compiler bug)."""


def verify(source: str, name: str, bound: Collection[str], hoisted: Collection[str],
           rules: int) -> ast.Module:
    """Parse `source` and check it is one function `name(req, st, name, tags, stage, k=k...)`
    made of set-up statements (assignments, and `if`s of assignments), `m = MASK`, one
    `if COND: m |= BIT` per rule and `return m`.

    `bound` are the helper and constant names passed as defaults, `hoisted` the locals the
    emitter assigned. Returns the parsed module (compile it, not the text, so that what was
    checked is what runs). Raises `EmitError`."""
    try:
        tree = compile(source, "<charter:bucket>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise EmitError(f"generated code does not parse: {err!r}") from None
    if not isinstance(tree, ast.Module):  # "exec" always gives one; mypy cannot know
        raise EmitError("generated code is not a module")
    fn = _function(tree, name, bound)
    body = fn.body
    setup = len(body) - rules - 2
    if setup < 0:
        raise EmitError(f"expected at least {rules + 2} statements, found {len(body)}")
    for stmt in body[:setup]:
        if not _is_setup(stmt):
            raise EmitError(f"unexpected set-up statement at line {stmt.lineno}")
    start = body[setup]
    if not (isinstance(start, ast.Assign) and len(start.targets) == 1
            and isinstance(start.targets[0], ast.Name) and start.targets[0].id == "m"
            and _is_bit(start.value, bound)):
        raise EmitError("expected `m = MASK` before the rules")
    for stmt in body[setup + 1 : -1]:
        if not _is_rule(stmt, bound):
            raise EmitError(f"unexpected rule statement at line {stmt.lineno}")
    last = body[-1]
    if not (isinstance(last, ast.Return) and isinstance(last.value, ast.Name)
            and last.value.id == "m"):
        raise EmitError("the function must end with `return m`")
    stores = {*hoisted, *TEMPS}
    names = {*PARAMS, *bound, *LOCALS, *stores}
    for stmt in body:
        _check_nodes(stmt, names, stores)
    return tree


def _function(tree: ast.Module, name: str, bound: Collection[str]) -> ast.FunctionDef:
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise EmitError("generated code must be exactly one function")
    fn = tree.body[0]
    args = fn.args
    expected = [*PARAMS, *bound]
    if (fn.name != name or fn.decorator_list or fn.returns is not None
            or [a.arg for a in args.args] != expected or args.posonlyargs or args.kwonlyargs
            or args.vararg or args.kwarg or len(args.defaults) != len(bound)):
        raise EmitError("unexpected function signature")
    for arg, default in zip(bound, args.defaults, strict=True):
        if not (isinstance(default, ast.Name) and default.id == arg):
            raise EmitError(f"unexpected default for {arg}")
    return fn


def _is_setup(stmt: ast.stmt) -> bool:
    """An assignment, or an `if`/`elif`/`else` whose branches hold only set-up statements."""
    if isinstance(stmt, ast.Assign):
        return True
    return isinstance(stmt, ast.If) and all(_is_setup(s) for s in (*stmt.body, *stmt.orelse))


def _is_bit(value: ast.expr, bound: Collection[str]) -> bool:
    return (isinstance(value, ast.Constant) and type(value.value) is int) or (
        isinstance(value, ast.Name) and value.id in bound)


def _is_rule(stmt: ast.stmt, bound: Collection[str]) -> bool:
    """`if COND: m |= BIT` and nothing else."""
    if not isinstance(stmt, ast.If) or stmt.orelse or len(stmt.body) != 1:
        return False
    inner = stmt.body[0]
    if not (isinstance(inner, ast.AugAssign) and isinstance(inner.op, ast.BitOr)
            and isinstance(inner.target, ast.Name) and inner.target.id == "m"):
        return False
    return _is_bit(inner.value, bound)


def _check_nodes(stmt: ast.stmt, names: Collection[str], stores: Collection[str]) -> None:
    for node in _walk(stmt):
        if not isinstance(node, NODES):
            raise EmitError(f"unexpected {type(node).__name__} in generated code")
        if isinstance(node, ast.Name) and node.id not in names:
            raise EmitError(f"unexpected name {node.id!r} in generated code")
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and (
                node.id not in stores):
            raise EmitError(f"generated code assigns {node.id!r}")
        if isinstance(node, ast.Attribute) and node.attr not in ATTRIBUTES:
            raise EmitError(f"unexpected attribute {node.attr!r} in generated code")
        if isinstance(node, ast.Constant) and type(node.value) not in CONSTANTS:
            raise EmitError(f"unexpected constant {node.value!r} in generated code")
        if isinstance(node, ast.Dict) and (node.keys or node.values):
            raise EmitError("unexpected dict display in generated code")


def _walk(top: ast.AST) -> Iterator[ast.AST]:
    """`top` and every node below it, breadth first, as `ast.walk` gives them; iterative,
    so a deep expression cannot overflow the stack here."""
    queue = [top]
    for node in queue:  # the list grows as it is read: a queue
        yield node
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                queue.append(value)
            elif isinstance(value, list):
                queue.extend(item for item in value if isinstance(item, ast.AST))
