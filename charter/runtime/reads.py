"""What a policy's rules read from a request, derived from its IR: the projection a
decision log records so that the decision can be replayed (`charter.runtime.capture`,
`charter.runtime.replay`).

Each read path is marked with how the rules use it, which decides whether a masked value
under it still replays exactly:

- `SCAN`: only scanned by matchers (`contains`, `count`, `redact`) or tested for presence
  (`has`): the recorded matcher verdicts stand in for the masked text;
- `EQ`: compared for equality (`==`, `!=`, `in` a constant set, counter keys, `previously`
  fields, labels): exact when the log keeps keyed hashes of masked values;
- `TYPE`: its type and keys are checked (`strict args`): a masked string is still a string;
- `VALUE`: read any other way (`<`, `like`, `matches`, functions, arithmetic...): a masked
  value under it makes the replay inconclusive.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from charter.engine import ir

__all__ = ["ALWAYS", "EQ", "SCAN", "TYPE", "VALUE", "Reads", "Scan", "reads_for", "reads_of"]

SCAN: Final = 1
EQ: Final = 2
TYPE: Final = 4
VALUE: Final = 8

Node = dict[str, "Node | int"]
"""A read tree: key -> subtree, with the kinds of a read of the value itself under ``""``
(a request key is never empty in a path the language can write)."""

_HERE: Final = ""
# The parts of a request every decision reads whatever the rules say: the request reader
# checks the stage and the tool, and the tool's name and tags pick the rules.
ALWAYS: Final = (("stage",), ("tool",))


class Scan(msgspec.Struct, frozen=True):
    """A field some rule scans with matchers: its path, and the matchers `count` asks for."""

    field: str  # `ir.Contains.field`: the cache key of the scan
    root: str
    keys: tuple[str, ...]
    counts: tuple[str, ...]


class Reads(msgspec.Struct):
    """The request paths a policy's rules read, with how (see the module docstring); the
    fields they scan; whether any reads `now`; the policy's constants (for keyed hashes of
    masked values); and the counters and tool histories they read (the snapshot must hold
    them)."""

    tree: Node = msgspec.field(default_factory=dict)
    scans: dict[str, Scan] = msgspec.field(default_factory=dict)
    now: bool = False
    constants: tuple[object, ...] = ()
    counters: frozenset[str] = frozenset()  # the ids of the counters the rules read
    history: frozenset[str] = frozenset()  # the tools whose calls `previously` reads

    def add(self, root: str, keys: tuple[str, ...], kind: int) -> None:
        node = self.tree
        for key in (root, *keys):
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[_HERE] = _kinds(node) | kind

    def kinds_over(self, parts: tuple[str, ...]) -> int:
        """The kinds of every read of `parts` (a path into the request), of a value that
        contains it, or of a value inside it."""
        kinds = 0
        node: Node | None = self.tree
        for key in parts:
            if node is None:
                break
            kinds |= _kinds(node)
            child = node.get(key)
            node = child if isinstance(child, dict) else None
        if node is not None:
            kinds |= _all_kinds(node)
        return kinds

    def whole(self, root: str) -> bool:
        """Whether some rule reads all of the request's `root` (so the projection holds it
        as it is)."""
        node = self.tree.get(root)
        return isinstance(node, dict) and _HERE in node

    def paths(self) -> tuple[tuple[str, ...], ...]:
        """Every path some rule reads as a value (the leaves and read inner nodes of the
        tree), sorted: what `project` keeps, as the decision log's ``reads`` event names it
        (`runtime.captured`)."""
        out: list[tuple[str, ...]] = []
        _walk_paths(self.tree, (), out)
        return tuple(sorted(out))

    def project(self, req: Mapping[str, Any]) -> dict[str, Any]:
        """The parts of `req` the rules read (values shared, not copied)."""
        return _project(self.tree, req)


def _kinds(node: Node) -> int:
    """The kinds of the reads of a node's own value."""
    here = node.get(_HERE, 0)
    return here if isinstance(here, int) else 0


def _all_kinds(node: Node) -> int:
    kinds = 0
    for key, child in node.items():
        kinds |= int(child) if key == _HERE else _all_kinds(child)  # type: ignore[arg-type]
    return kinds


def _walk_paths(node: Node, at: tuple[str, ...], out: list[tuple[str, ...]]) -> None:
    for key, child in node.items():
        if key == _HERE:
            out.append(at)
        else:
            assert isinstance(child, dict)
            _walk_paths(child, (*at, key), out)


def _project(node: Node, obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, child in node.items():
        if key == _HERE or key not in obj:
            continue
        value = obj[key]
        assert isinstance(child, dict)
        if _HERE in child or type(value) is not dict:
            out[key] = value  # read whole, or not an object: the rules see it as it is
        else:
            out[key] = _project(child, value)
    return out


_CACHE: weakref.WeakKeyDictionary[Any, Reads] = weakref.WeakKeyDictionary()


def reads_of(policy: Any) -> Reads:
    """The `Reads` of a `Policy` (computed once per policy object)."""
    found = _CACHE.get(policy)
    if found is None:
        found = _CACHE[policy] = derive(policy.ir)
    return found


_BUCKETS: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], Reads]] = (
    weakref.WeakKeyDictionary())


def reads_for(policy: Any, stage: str, name: str, tags: tuple[str, ...]) -> Reads:
    """The `Reads` of the rules of a `Policy` that can apply to one call (its stage, tool
    name and request tags), by the policy's own dispatch (`Plan.bucket`): what a decision
    of that call can read. Computed once per bucket."""
    indices = policy.plan.bucket(stage, name, tags)
    cache = _BUCKETS.get(policy)
    if cache is None:
        cache = _BUCKETS[policy] = {}
    found = cache.get(indices)
    if found is None:
        found = cache[indices] = derive(policy.ir, frozenset(indices))
    return found


def derive(policy: ir.Policy, rules: frozenset[int] | None = None) -> Reads:
    """The `Reads` of a policy's IR (with `rules`, of those rules, by index, and the
    counters they enforce)."""
    reads = Reads()
    for parts in ALWAYS:
        reads.add(parts[0], parts[1:], VALUE)
    for rule in policy.rules:
        if rules is not None and rule.index not in rules:
            continue
        if rule.cond is not None:
            _visit(rule.cond, VALUE, reads)
        if rule.redact_path is not None:
            reads.add(rule.redact_path.root, rule.redact_path.keys, SCAN)
    for spec in policy.counters:
        if rules is not None and spec.rule not in rules:
            continue
        if spec.key is not None:
            _visit(spec.key, EQ, reads)
        if rules is not None and spec.scope is not None:
            _visit(spec.scope, VALUE, reads)
    reads.constants = tuple(dict.fromkeys(reads.constants))
    return reads


def _visit(e: ir.Expr, kind: int, reads: Reads) -> None:  # noqa: C901 - one branch per node
    if isinstance(e, ir.Const):
        reads.constants += tuple(_leaves(e.value))
        return
    if isinstance(e, ir.Path):
        if e.root == "now" and not e.keys:
            reads.now = True
        reads.add(e.root, e.keys, kind)
    elif isinstance(e, ir.Has):
        reads.add(e.root, e.keys, SCAN)
    elif isinstance(e, ir.Cmp) and e.op in ("==", "!="):
        eq = isinstance(e.left, ir.Const | ir.Path) and isinstance(e.right, ir.Const | ir.Path)
        _visit(e.left, EQ if eq else VALUE, reads)
        _visit(e.right, EQ if eq else VALUE, reads)
    elif isinstance(e, ir.In):
        # `field in {constants}` and `constant in list field` compare for equality; `in` a
        # string field is a substring test.
        coll_eq = isinstance(e.coll, ir.Const) or (
            isinstance(e.coll, ir.Path) and e.coll.check == "coll")
        _visit(e.item, EQ if coll_eq and isinstance(e.item, ir.Const | ir.Path) else VALUE,
               reads)
        _visit(e.coll, EQ if coll_eq else VALUE, reads)
    elif isinstance(e, ir.Contains | ir.CountOf):
        if isinstance(e.value, ir.Path):
            reads.add(e.value.root, e.value.keys, SCAN)
            old = reads.scans.get(e.field)
            counts = e.matchers if isinstance(e, ir.CountOf) else ()
            if old is not None:
                counts = tuple(dict.fromkeys((*old.counts, *counts)))
            reads.scans[e.field] = Scan(e.field, e.value.root, e.value.keys, counts)
        else:
            _visit(e.value, VALUE, reads)
    elif isinstance(e, ir.Counter):
        reads.counters |= {e.counter}
        if e.key is None:
            reads.add("session", ("id",), EQ)
        else:
            _visit(e.key, EQ, reads)
    elif isinstance(e, ir.Previously):
        reads.history |= {e.tool}
        reads.add("session", ("id",), EQ)
        for _, value in e.fields:
            _visit(value, EQ if isinstance(value, ir.Path) else VALUE, reads)
    elif isinstance(e, ir.Labels):
        reads.add("session", ("labels",), EQ)
    elif isinstance(e, ir.Estimate):
        reads.add("estimate", (e.field,), VALUE)
    elif isinstance(e, ir.Fn) and e.name == ir.STRICT_ARGS:
        reads.add("args", (), TYPE)
        for arg in e.args:
            _visit(arg, VALUE, reads)
    else:
        for child in _children(e):
            _visit(child, VALUE, reads)


def _children(e: ir.Expr) -> Iterator[ir.Expr]:
    for name in e.__struct_fields__:
        value = getattr(e, name)
        if isinstance(value, tuple):
            for item in value:
                if isinstance(item, tuple):  # `previously` fields: (name, expr)
                    yield from (x for x in item if not isinstance(x, str))
                elif not isinstance(item, str):
                    yield item
        elif value is not None and not isinstance(value, str | int | bool):
            yield value


def _leaves(value: object) -> Iterator[object]:
    """The strings and integers in a constant (inside sets, lists and maps too)."""
    if isinstance(value, str) or (isinstance(value, int | Decimal) and not isinstance(
            value, bool)):
        yield value
    elif isinstance(value, frozenset | tuple | list | set):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(k)
            yield from _leaves(v)
