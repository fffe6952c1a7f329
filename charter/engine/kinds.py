"""The run-time kind of an IR expression's value, where the IR fixes it.

Generated code writes `a == b`, `a < b` and `x in S` as Python operators only where Python's
meaning is the language's (charter.engine.operators): both sides of one known kind, so no
bool meets a number and no float or container needs converting. Everywhere else it calls
the operator functions the interpreter uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from charter.engine import ir
from charter.stdlib.functions import FUNCTIONS

NUM, STR, BOOL, TIME, DUR = "num", "str", "bool", "time", "dur"
ORDERED = frozenset({NUM, STR, TIME, DUR})
# Kinds whose values Python finds equal to, or orders against, only values of the same kind:
# with one side of these, Python's `==`, `!=`, `<`... already mean the language's (a string
# never equals a number in either, and `"a" < 1` raises in both).
SELF_CONTAINED = frozenset({STR, TIME, DUR})
Known = Mapping[ir.Path, str]
_NONE: Known = {}

_CHECK_KIND = {"num": NUM, "int": NUM, "cost": NUM, "count": NUM, "str": STR, "bool": BOOL,
               "time": TIME, "dur": DUR}
_RETURNS = {"int": NUM, "str": STR, "bool": BOOL}
_BOOLEAN = (ir.Cmp, ir.In, ir.Not, ir.BoolOp, ir.Has, ir.Like, ir.Matches, ir.Contains,
            ir.Approved, ir.Previously)


def const_kind(v: object) -> str | None:
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int | Decimal):
        return NUM
    if isinstance(v, str):
        return STR
    if isinstance(v, timedelta):
        return DUR
    if isinstance(v, datetime):
        return TIME
    return None


def kind(e: ir.Expr, known: Known = _NONE) -> str | None:  # noqa: PLR0911 - one per node
    """NUM (int, Decimal or Fraction, never a bool or float), STR, BOOL, TIME, DUR or None.
    `known` gives the kind of untyped paths the caller has bound to a typed read."""
    if isinstance(e, ir.Const):
        return const_kind(e.value)
    if isinstance(e, ir.Path):
        return known.get(e) or _CHECK_KIND.get(e.check)
    if isinstance(e, _BOOLEAN):
        return BOOL
    if isinstance(e, ir.Counter | ir.Estimate | ir.CountOf):
        return NUM
    if isinstance(e, ir.Neg):
        return NUM if kind(e.operand, known) == NUM else None
    if isinstance(e, ir.Arith):
        return NUM if kind(e.left, known) == NUM and kind(e.right, known) == NUM else None
    if isinstance(e, ir.Fn) and e.name in FUNCTIONS:
        return _RETURNS.get(FUNCTIONS[e.name].returns)
    return None


def plain_cmp(e: ir.Cmp, known: Known = _NONE) -> bool:
    """True when Python's operator means the same as the language's on these operands."""
    left, right = kind(e.left, known), kind(e.right, known)
    if left in SELF_CONTAINED or right in SELF_CONTAINED:
        return True
    if left is None or left != right:
        return False
    return e.op in ("==", "!=") or left in ORDERED


def plain_in(e: ir.In, known: Known = _NONE) -> bool:
    """True when Python's `in` means the language's membership here."""
    item = kind(e.item, known)
    if item == STR:
        # A string only ever equals a string (and `in` a string is a substring), but Python
        # also looks into containers the language does not (a mappingproxy): only where the
        # collection is one of the language's.
        return _collection(e.coll)
    if item is None or not isinstance(e.coll, ir.Const):
        return False
    coll = e.coll.value
    if not isinstance(coll, frozenset | tuple):
        return False
    return all(const_kind(x) == item for x in coll)


_COLLECTIONS = (str, dict, list, tuple, set, frozenset)  # what the interpreter's `in` takes
_COLLECTION_CHECKS = frozenset({"coll", "map", "str"})  # checks that return only those


def _collection(e: ir.Expr) -> bool:
    """Whether `e`'s value is always a collection `in` takes (else it is an error)."""
    if isinstance(e, ir.Const):
        return isinstance(e.value, _COLLECTIONS)
    if isinstance(e, ir.Path):
        return e.check in _COLLECTION_CHECKS
    return isinstance(e, ir.Labels) or kind(e) == STR
