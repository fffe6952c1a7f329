"""The one table of run-time operations generated code may call, with the inline templates
the emitter writes instead of a call where the answer is the same.

`EXPORTED` names every value a generated function's namespace holds (Jinja's
`runtime.exported`): the emitter writes only these names, `emitcheck` accepts only names
that the namespace holds, and the reference interpreter calls the same functions, so the two
evaluators share one implementation of each operation. An inline template is kept beside
the function it stands for and must agree with it on every value it accepts
(tests/compiler hold the compiled code equal to the interpreter).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from charter.engine import operators, support
from charter.engine.interpreter import holds
from charter.engine.strict import strict_args
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.values import (
    CHECKS,
    COST_FLOATS,
    FLOATS,
    INT_BOUND,
    MAX_NUMBER_DIGITS,
    PLAIN,
)

__all__ = ["ARITH_FN", "CMP_FN", "EXACT_CLASS", "EXACT_FN", "EXPORTED", "INDEX_DICT",
           "INDEX_SEQ", "INLINE_CHECK", "INLINE_OK", "LEN", "MEMBER_CONST", "NUMERIC", "NUM_OK",
           "namespace"]


def scan_cached(matchers: Any, cache: dict[str, frozenset[str]], field: str,
                value: object) -> frozenset[str]:
    """A field's matcher findings, scanned once per decision however many rules read them."""
    found = cache.get(field)
    if found is None:
        found = cache[field] = matchers.scan(value)
    return found


# The language's operators (charter.engine.operators) where Python's would differ, and
# exact decimal arithmetic on two numbers (the context's methods, no Python-level call).
CMP_FN = {"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
ARITH_FN = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div"}
EXACT_FN = {"+": "_xadd", "-": "_xsub", "*": "_xmul", "/": "_div"}

#: name in generated code -> the value it is bound to (checks `C_*` and functions `F_*` are
#: added from their registries by `namespace`; `M` is the policy's matchers)
EXPORTED: Mapping[str, Any] = {
    # request access and state
    "_index": support.index, "_now": support.now_of, "_has": support.has,
    "_labels": support.labels, "_approved": support.approved,
    "_approved_by": support.approved_by, "_previously": support.previously,
    "_strict_args": strict_args, "_scanf": scan_cached, "_holds": holds,
    # literals built at run time
    "_mkset": support.make_set, "_mklist": support.make_list,
    # operators
    **{name: operators.CMP[op] for op, name in CMP_FN.items()},
    **{name: operators.ARITH[op] for op, name in ARITH_FN.items()},
    "_xadd": operators.EXACT.add, "_xsub": operators.EXACT.subtract,
    "_xmul": operators.EXACT.multiply, "_neg": operators.neg, "_member": operators.member,
    # constants the inline templates below read
    "_Decimal": Decimal, "_F": FLOATS, "_FC": COST_FLOATS, "_IB": INT_BOUND,
    "_NIB": -INT_BOUND, "_PLAIN": PLAIN, "_SIZED": frozenset({str, list, dict}),
}


def namespace(matchers: Any) -> dict[str, Any]:
    """The globals of a generated bucket function."""
    ns: dict[str, Any] = {f"C_{k}": v for k, v in CHECKS.items()}
    ns.update({f"F_{k}": f.impl for k, f in FUNCTIONS.items()})
    ns.update(EXPORTED)
    ns["M"] = matchers
    return ns


# Run-time checks that pass exactly when the value is of one built-in class, and then return
# the value itself: generated code tests the class inline and only calls the check otherwise.
EXACT_CLASS = {"coll": "list", "map": "dict", "str": "str", "bool": "bool", "int": "int"}
INLINE_OK = {check: f"{{v}}.__class__ is {cls}" for check, cls in EXACT_CLASS.items()}
INLINE_CHECK = {check: f"{{v}}.__class__ is not {cls}" for check, cls in EXACT_CLASS.items()}
# Numbers pass inline only when the check would return them unchanged: an int or a finite
# Decimal within range (a float is looked up in the memo of converted floats).
_INT_OK = "({v}.__class__ is int and _NIB < {v} < _IB)"
NUM_OK = (f"({_INT_OK} or ({{v}}.__class__ is _Decimal and {{v}}.is_finite() "
          f"and {{v}}.adjusted() < {MAX_NUMBER_DIGITS}))")
INLINE_OK["int"] = _INT_OK
INLINE_OK["any"] = "{v}.__class__ in _PLAIN"
NUMERIC = {"num": ("num", False), "cost": ("num", True), "int": ("int", False),
           "count": ("int", True)}  # check -> (base check, never negative)

# `support.index(obj, K)` for a constant key K: the item read like an untyped field (as
# `check_any` reads it) where `obj` is exactly a dict, or, for an int K, exactly a list or a
# dict; `_index` everywhere else (its result passes `check_any` again unchanged). A missing
# key or index raises, and the interpreter words the error, as it does for `_index`.
INDEX_DICT = ("(t if (t := (t[{k}] if (t := {obj}).__class__ is dict else _index(t, {k})))"
              ".__class__ in _PLAIN else C_any(t))")
INDEX_SEQ = ("(t if (t := (t[{k}] if (t := {obj}).__class__ is list or t.__class__ is dict "
             "else _index(t, {k}))).__class__ in _PLAIN else C_any(t))")
# `operators.member(item, K)` for a constant collection K: a string item is looked up with
# Python's `in`, exactly as `member` does; anything else goes through `member`.
MEMBER_CONST = "(t in {k} if (t := {item}).__class__ is str else _member(t, {k}))"
# The stdlib's `len` on a string, a list or a map: Python's `len`, as `len`'s own code does.
LEN = "(len(t) if (t := {v}).__class__ in _SIZED else F_len(t))"
