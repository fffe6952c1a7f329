"""Any Python value made into a JSON-safe, masked value for the decision log. Total: it
never raises, so no value in a request can keep a decision out of the log.

What cannot be logged as it is becomes a placeholder that says why, `{"$unloggable": WHY}`:
containers nested deeper than `MAX_DEPTH` or that contain themselves, more than `MAX_VALUES`
values in one record, non-finite numbers, ints too long to write out, bytes that are not
UTF-8 text, and objects of any other type (their repr is never logged: reprs of host
objects carry whatever the object holds). UTF-8 bytes are logged as `{"$bytes": TEXT}`,
with TEXT masked like any string.

With a `Mask` (text -> masked text), every string (dict keys included) is masked, and so is
every integral number whose decimal digits are a match (a card number sent as a JSON number
or a Decimal is still a card number); a string the scanner cannot check is not logged.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final

import msgspec

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Mask", "Walk", "loggable", "unloggable"]

Mask = Callable[[str], str]
"""Masks the matches in one string; may raise (the string is then not logged)."""

MAX_DEPTH: Final = 64
"""Containers nested deeper are logged as a placeholder."""

MAX_VALUES: Final = 100_000
"""Values walked per record; the rest of a longer record is one placeholder per container
(a small value can stand for a huge tree: `x = [x0, x0]` shares, it does not copy)."""

_MAX_INT_DIGITS: Final = 4300  # CPython's default limit for int <-> str conversion
_SCAN_DIGITS: Final = 64  # longer numbers are not identifiers worth scanning as text
_SMALL: Final = 10**18  # ints below are written out without counting digits
_UNLOGGABLE: Final = "$unloggable"


def unloggable(why: str) -> dict[str, str]:
    """The placeholder logged in place of a value that cannot be logged."""
    return {_UNLOGGABLE: why}


def loggable(value: object, mask: Mask | None = None) -> object:
    """`value` as JSON-safe builtins (dict with str keys, list, str, int, finite Decimal or
    float, bool, None), masked with `mask`; see the module docstring. Never raises."""
    return Walk(mask).field(value)


class Walk:
    """Makes the fields of one record loggable: they share the value budget. Never raises."""

    __slots__ = ("_mask", "mask", "budget", "path")

    def __init__(self, mask: Mask | None) -> None:
        self._mask = mask
        self.mask = mask
        self.budget = MAX_VALUES
        self.path: set[int] = set()

    def field(self, v: object, masked: bool = True) -> object:
        """`v` made loggable, masked unless `masked` is False."""
        self.mask = self._mask if masked else None
        return self.value(v, 0)

    def value(self, v: object, depth: int) -> object:
        self.budget -= 1
        if self.mask is None and type(v) is str and v.isascii():
            return v  # the common unmasked case, without the walk
        try:
            return self._value(v, depth)
        except Exception as err:  # noqa: BLE001 - a host object may fail any way it likes
            return unloggable(f"{_type(v)} that raised {type(err).__name__} when read")

    def _value(self, v: object, depth: int) -> object:  # noqa: C901 - one branch per kind
        if v is None or v is True or v is False:
            return v
        # Exact types first: isinstance against the ABCs below is slow.
        if type(v) is dict or type(v) is list:
            return self.container(v, depth)
        if type(v) is int and -_SMALL < v < _SMALL:
            return v if self.mask is None else self.number(v, True)
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, int):
            return self.integer(int(v))
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                return unloggable(f"float {v}")
            return self.number(v, v.is_integer())
        if isinstance(v, Decimal):
            return self.decimal(v)
        if isinstance(v, bytes | bytearray | memoryview):
            return self.binary(bytes(v))
        if isinstance(v, datetime | date | time):
            return self.text(v.isoformat())
        if isinstance(v, timedelta | uuid.UUID):
            return self.text(str(v))
        if isinstance(v, Mapping | list | tuple | set | frozenset):
            return self.container(v, depth)
        if isinstance(v, msgspec.Struct):
            return self.container({f: getattr(v, f) for f in v.__struct_fields__}, depth)
        # `dataclasses.is_dataclass(v)`, without importing dataclasses into every hook call
        if hasattr(type(v), "__dataclass_fields__"):
            import dataclasses

            fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}  # type: ignore[arg-type]
            return self.container(fields, depth)
        return unloggable(f"object of type {_type(v)}")

    # ── scalars ────────────────────────────────────────────────────────────────

    def text(self, s: str) -> object:
        if self.mask is not None:
            try:
                s = self.mask(s)
            except Exception:  # noqa: BLE001 - unscanned text could be PII: fail closed
                return unloggable(f"a string of {len(s)} characters the PII scanner "
                                  "could not check")
        if not s.isascii():
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: JSON cannot carry them
                s = s.encode("utf-8", "backslashreplace").decode("utf-8")
        return s

    def integer(self, v: int) -> object:
        digits = _digits(v)
        limit = sys.get_int_max_str_digits() or _MAX_INT_DIGITS
        if digits > min(limit, _MAX_INT_DIGITS):
            return unloggable(f"int of {digits} digits")
        return self.number(v, True)

    def decimal(self, v: Decimal) -> object:
        if not v.is_finite():
            return unloggable(f"decimal {v}")
        if len(v.as_tuple().digits) > _MAX_INT_DIGITS:
            return unloggable(f"decimal of {len(v.as_tuple().digits)} digits")
        return self.number(v, v.adjusted() < _SCAN_DIGITS and v == v.to_integral_value())

    def number(self, v: int | float | Decimal, integral: bool) -> object:
        """`v`, or its masked digits when they are a match (only whole numbers can be)."""
        if self.mask is None or not integral:
            return v
        digits = str(abs(int(v)))  # a sign is not part of a card number
        if len(digits) > _SCAN_DIGITS:
            return v
        masked = self.text(digits)
        return v if masked == digits else masked

    def binary(self, data: bytes) -> object:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return unloggable(f"{len(data)} bytes, not UTF-8 text")
        return {"$bytes": self.text(text)}

    # ── containers ─────────────────────────────────────────────────────────────

    def container(self, v: object, depth: int) -> object:
        if depth >= MAX_DEPTH:
            return unloggable(f"nested deeper than {MAX_DEPTH} levels")
        key = id(v)
        if key in self.path:
            return unloggable("cycle: a container inside itself")
        self.path.add(key)
        try:
            if isinstance(v, Mapping):
                return self.mapping(v, depth)
            return self.sequence(v, depth)  # type: ignore[arg-type]  # list/tuple/set only
        finally:
            self.path.discard(key)

    def sequence(self, v: list[object] | tuple[object, ...] | set[object], depth: int
                 ) -> list[object]:
        out: list[object] = []
        for item in v:
            if self.budget <= 0:
                out.append(self._over_budget())
                break
            out.append(self.value(item, depth + 1))
        return out

    def mapping(self, v: Mapping[object, object], depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, item in v.items():
            if self.budget <= 0:
                self._put(out, _UNLOGGABLE, self._over_budget()[_UNLOGGABLE])
                break
            self._put(out, self.key(k), self.value(item, depth + 1))
        return out

    def key(self, k: object) -> str:
        """A dict key as a JSON object key: masked text; scalars as JSON writes them."""
        if isinstance(k, str):
            out = self.text(k)
        elif k is None or isinstance(k, bool | int | float | Decimal):
            out = self.value(k, MAX_DEPTH)
        else:
            return f"<key of type {_type(k)}>"
        if isinstance(out, dict):
            return f"<{out.get(_UNLOGGABLE, 'unloggable key')}>"
        return out if isinstance(out, str) else _json_key(out)

    @staticmethod
    def _put(out: dict[str, object], key: str, value: object) -> None:
        # Two keys masked to the same placeholder must not overwrite each other.
        base, n = key, 2
        while key in out:
            key = f"{base}#{n}"
            n += 1
        out[key] = value

    def _over_budget(self) -> dict[str, str]:
        return unloggable(f"more than {MAX_VALUES} values in the record")


def _json_key(v: object) -> str:
    """A scalar key as JSON would write it (`None` -> `null`, `True` -> `true`)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _digits(v: int) -> int:
    """Decimal digits of `v` without writing it out (str() refuses long ints); for ints of
    more than 50,000 bits, an estimate within one digit (exactness costs a huge power)."""
    v = abs(v)
    if v < 10**18:
        return len(str(v))
    bits = v.bit_length()
    n = int(bits * 0.30102999566398120)  # floor(bits * log10(2)): exact or one short
    if bits > 50_000:
        return n + 1
    return n + 1 if v >= 10**n else n


def _type(v: object) -> str:
    return type(v).__qualname__
