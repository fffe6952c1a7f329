"""What `== < + - * /` and `in` mean on run-time values, shared by the interpreter (the
reference) and generated code.

* Numbers are exact: `int`, `Decimal` and, for a quotient that has no finite decimal, a
  `Fraction`. Sums, differences and products are computed in `EXACT`, a decimal context
  that traps every rounding, so a result is exact or a request error, never a rounded
  value; nothing depends on the host thread's decimal context.
* `bool` is its own type, as in Cedar, CEL and Rego: `true == 1` is false, and `true < 2`,
  `true + 1` are errors (Python would say true, true and 2).
* Equality is structural across the request's containers: a JSON list equals a list literal
  with equal items, and a float inside a list is the decimal its `repr` shows.

Anything here may raise `TypeError` or `ArithmeticError`; callers make it a request error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import (
    Clamped,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from fractions import Fraction
from typing import Any

from charter.stdlib.values import float_to_decimal

# Arithmetic results: at most RESULT_DIGITS significant digits, magnitude below
# 10**RESULT_DIGITS, nothing finer than 10**-RESULT_DIGITS. This bounds the work of any
# expression (1e-400000 + 1 would otherwise need 400,000 digits); past it, a request error.
RESULT_DIGITS = 1000
EXACT = Context(prec=RESULT_DIGITS, Emax=RESULT_DIGITS - 1, Emin=-RESULT_DIGITS, traps=[
    InvalidOperation, DivisionByZero, Overflow, Underflow, Subnormal, Inexact, Rounded, Clamped])
_INT_LIMIT = 10**RESULT_DIGITS
MAX_DEPTH = 128  # nesting compared structurally, as far as the scanner walks

_NUMBERS = (int, Decimal, Fraction)


def is_number(v: object) -> bool:
    """An exact number (never a bool; floats are converted when read)."""
    t = v.__class__
    return t is int or t is Decimal or t is Fraction


def _need_numbers(a: object, b: object, op: str) -> None:
    if not (is_number(a) and is_number(b)):
        raise TypeError(f"{op} takes two numbers")


def _int_result(n: int) -> int:
    if -_INT_LIMIT < n < _INT_LIMIT:
        return n
    raise ArithmeticError(f"result has more than {RESULT_DIGITS} digits")


def _beyond(err: DecimalException) -> ArithmeticError:
    """The trapped signal as a reason: the result is not computed, never rounded."""
    if isinstance(err, Overflow | Underflow | Subnormal | Clamped):
        return ArithmeticError(f"result beyond 10^±{RESULT_DIGITS}")
    return ArithmeticError(f"result needs more than {RESULT_DIGITS} digits")


def _fraction(v: Any) -> Fraction:
    # EXACT.plus bounds the decimal first: Fraction(Decimal("1e-999999")) is a huge integer.
    return Fraction(EXACT.plus(v)) if v.__class__ is Decimal else Fraction(v)


def _exact(fn: Callable[[Any, Any], Any], frac: Callable[[Any, Any], Any],
           ints: Callable[[int, int], int], op: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if a.__class__ is int and b.__class__ is int:
            return _int_result(ints(a, b))
        _need_numbers(a, b, op)
        try:
            if a.__class__ is Fraction or b.__class__ is Fraction:
                return frac(_fraction(a), _fraction(b))
            return fn(a, b)
        except DecimalException as err:
            raise _beyond(err) from None

    return apply


_num_add = _exact(EXACT.add, operator.add, operator.add, "+")
_num_sub = _exact(EXACT.subtract, operator.sub, operator.sub, "-")
mul = _exact(EXACT.multiply, operator.mul, operator.mul, "*")


def add(a: Any, b: Any) -> Any:
    """`a + b`: exact numbers, joined strings, time + duration, duration + duration."""
    if is_number(a) or is_number(b):
        return _num_add(a, b)
    ta, tb = a.__class__, b.__class__
    if (ta is str and tb is str) or (ta is timedelta and tb is timedelta) or (
            isinstance(a, datetime) and tb is timedelta):
        return a + b
    raise TypeError("+ takes two numbers, two strings, or a time or duration and a duration")


def sub(a: Any, b: Any) -> Any:
    """`a - b`: exact numbers, time - duration, time - time, duration - duration."""
    if is_number(a) or is_number(b):
        return _num_sub(a, b)
    if isinstance(a, datetime) and (isinstance(b, datetime) or b.__class__ is timedelta):
        return a - b
    if a.__class__ is timedelta and b.__class__ is timedelta:
        return a - b
    raise TypeError("- takes two numbers, a time and a duration, or two times")


def div(a: Any, b: Any) -> Any:
    """`a / b`, exact: a decimal when the quotient has one (10 / 4 is 2.5), else a fraction
    (1 / 3), so that `x / 3 * 3 == x` holds."""
    _need_numbers(a, b, "/")
    if b == 0:
        raise ZeroDivisionError("division by zero")
    try:
        if a.__class__ is not Fraction and b.__class__ is not Fraction:
            try:
                return EXACT.divide(a, b)
            except (Inexact, Rounded):
                pass  # no finite decimal: the exact fraction below
        q = _fraction(a) / _fraction(b)
    except DecimalException as err:
        raise _beyond(err) from None
    return q.numerator if q.denominator == 1 else q


def neg(v: Any) -> Any:
    """`-v`, exact (Decimal's `-` rounds to the thread's precision; copy_negate does not)."""
    t = v.__class__
    if t is Decimal:
        return v.copy_negate()
    if t is int or t is Fraction or t is timedelta:
        return -v
    raise TypeError("- takes a number or a duration")


# ── comparison ──────────────────────────────────────────────────────────────

_SAME_CLASS_EQ = frozenset({str, int, Decimal, bool})


_OWN_KIND = (str, datetime, timedelta)


def eq(a: object, b: object) -> bool:
    """`a == b` with distinct bools and exact numbers, structural on containers."""
    ta = a.__class__
    if ta is b.__class__ and ta in _SAME_CLASS_EQ:
        return a == b
    if isinstance(a, _OWN_KIND) or isinstance(b, _OWN_KIND):
        # A string, time or duration equals only a value of its own kind: Python's `==`,
        # which generated code writes for these (kinds.py). The other side is not keyed, so
        # a container that cannot be (a bytearray inside, nesting too deep) is simply not
        # equal; a str subclass (a StrEnum) is a string.
        return isinstance(a, str) is isinstance(b, str) and bool(a == b)
    return key(a) == key(b)


def ne(a: object, b: object) -> bool:
    return not eq(a, b)


def _ordered(a: object, b: object) -> None:
    if is_number(a) and is_number(b):
        return
    ta, tb = a.__class__, b.__class__
    if (isinstance(a, str) and isinstance(b, str)) or (ta is timedelta and tb is timedelta) or (
            isinstance(a, datetime) and isinstance(b, datetime)):
        return
    raise TypeError("only two numbers, strings, times or durations are ordered")


def lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a < b)


def le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a <= b)


def gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a > b)


def ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a >= b)


def key(v: object, depth: int = 0) -> object:
    """A hashable stand-in for `v` that is equal exactly when the values are equal in the
    language: a bool is never a number, a float is its repr's decimal, lists and tuples are
    one kind, sets another, maps a third."""
    t = v.__class__
    if t is str:
        return v
    if t is bool:
        return (bool, v)
    if t is int or t is Decimal or t is Fraction:
        return (int, v)  # int, Decimal and Fraction hash and compare exactly together
    if t is float:
        return (int, float_to_decimal(v))  # type: ignore[arg-type]
    if isinstance(v, str):
        return str.__str__(v)  # a str subclass (a StrEnum) is the string it holds
    if depth >= MAX_DEPTH:
        raise TypeError(f"value nested deeper than {MAX_DEPTH} levels")
    if isinstance(v, list | tuple):
        return (list, tuple(key(x, depth + 1) for x in v))
    if isinstance(v, set | frozenset):
        return (set, frozenset(key(x, depth + 1) for x in v))
    if isinstance(v, dict):
        return (dict, frozenset((key(k, depth + 1), key(x, depth + 1)) for k, x in v.items()))
    if v is None:
        return (None,)
    return (object, v)


def member(item: object, coll: object) -> bool:
    """`item in coll`: substring of a string, key of a map, element of a list or set."""
    if isinstance(coll, str):
        if item.__class__ is not str:
            raise TypeError("only a string is looked for in a string")
        return item in coll
    if not isinstance(coll, dict | list | tuple | set | frozenset):
        raise TypeError("not a collection")
    if item.__class__ is str:
        return item in coll  # a str only ever equals a str
    k = key(item)
    return any(key(x) == k for x in coll)


CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge,
}
ARITH: dict[str, Callable[[Any, Any], Any]] = {"+": add, "-": sub, "*": mul, "/": div}
