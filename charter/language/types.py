"""The type system of §1.4: primitives, collections and records."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

PRIMS = ("bool", "int", "decimal", "str", "time", "duration", "any")


class Prim(msgspec.Struct, frozen=True):
    name: str  # one of PRIMS, or "null"/"matcher"/"regex" for internal use

    def __str__(self) -> str:
        return self.name


class SetT(msgspec.Struct, frozen=True):
    elem: Type

    def __str__(self) -> str:
        return f"set<{self.elem}>"


class ListT(msgspec.Struct, frozen=True):
    elem: Type

    def __str__(self) -> str:
        return f"list<{self.elem}>"


class MapT(msgspec.Struct, frozen=True):
    value: Type

    def __str__(self) -> str:
        return f"map<str, {self.value}>"


class FieldT(msgspec.Struct, frozen=True):
    type: Type
    optional: bool = False


class RecordT(msgspec.Struct, frozen=True):
    """A record with known fields. `name` is for messages (`args of "refund.create"`)."""

    name: str
    fields: Mapping[str, FieldT] = msgspec.field(default_factory=dict)

    def __str__(self) -> str:
        return self.name

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.fields)))


Type = Prim | SetT | ListT | MapT | RecordT

BOOL, INT, DECIMAL, STR = Prim("bool"), Prim("int"), Prim("decimal"), Prim("str")
TIME, DURATION, ANY = Prim("time"), Prim("duration"), Prim("any")
MATCHER, REGEX, NULL = Prim("matcher"), Prim("regex"), Prim("null")


def is_any(t: Type) -> bool:
    return isinstance(t, Prim) and t.name == "any"


def is_numeric(t: Type) -> bool:
    return isinstance(t, Prim) and t.name in ("int", "decimal", "any")


def is_stringish(t: Type) -> bool:
    return isinstance(t, Prim) and t.name in ("str", "any")


def element_of(t: Type) -> Type | None:
    """The element type of a collection (map: its values? no: keys are strings)."""
    if isinstance(t, SetT | ListT):
        return t.elem
    if isinstance(t, MapT):
        return STR
    if is_any(t):
        return ANY
    return None


def compatible(a: Type, b: Type) -> bool:
    """Can values of these two types be compared for equality or order?"""
    if is_any(a) or is_any(b):
        return True
    if is_numeric(a) and is_numeric(b):
        return True
    if isinstance(a, SetT | ListT) and isinstance(b, SetT | ListT):
        return compatible(a.elem, b.elem)
    if isinstance(a, Prim) and isinstance(b, Prim):
        return a.name == b.name or "null" in (a.name, b.name)
    return type(a) is type(b)


def join(a: Type, b: Type) -> Type:
    """The common type of two values (for set/list literals)."""
    if a == b:
        return a
    if is_numeric(a) and is_numeric(b) and not (is_any(a) or is_any(b)):
        return DECIMAL
    return ANY


def runtime_tag(t: Type) -> str:
    """The name of the run-time check for values of this type (see charter.stdlib.values)."""
    if isinstance(t, Prim):
        return {"decimal": "num", "int": "int", "str": "str", "bool": "bool", "time": "time",
                "duration": "dur"}.get(t.name, "any")
    if isinstance(t, SetT | ListT):
        return "coll"
    if isinstance(t, MapT | RecordT):
        return "map"
    return "any"


def parse_type_string(text: str) -> Type:
    """Parse a type written as text, e.g. `list<str>` (used for stdlib signatures)."""
    text = text.replace(" ", "")
    if text.startswith(("set<", "list<")) and text.endswith(">"):
        inner = parse_type_string(text[text.index("<") + 1 : -1])
        return SetT(inner) if text.startswith("set") else ListT(inner)
    if text.startswith("map<str,") and text.endswith(">"):
        return MapT(parse_type_string(text[len("map<str,") : -1]))
    return Prim(text)
