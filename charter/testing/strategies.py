"""Hypothesis strategies for requests: declared tool types and context types, biased by policy
constants (see `charter.testing.biases`).

Generated requests are `tool_call` requests whose every value a `test` block can write back:
record keys are identifiers, strings avoid nothing but are escaped by the renderer, numbers
are ints or exact decimals. Context records carry only the fields the policy reads (plus
ids), so shrunk counterexamples stay short. Records come whole (every field they may carry)
as often as with fields left out: a request lacking a field a rule reads is a request error,
which tells nothing about a property (see `properties`), so leaving fields out must not be
the common case. A property's `where` clause steers the fields it pins down (`steering`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from charter.language.context import AGENT, ESTIMATE, SESSION, USER
from charter.language.types import ANY, ListT, MapT, Prim, RecordT, SetT, Type
from charter.testing.biases import Biases
from charter.testing.scenario import FIXED_NOW
from charter.testing.steering import Steering

SearchStrategy = st.SearchStrategy
_ALPHABET = st.characters(codec="ascii", categories=("L", "N", "P", "Zs"))
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
_CONTEXT = {"agent": AGENT, "user": USER, "session": SESSION, "estimate": ESTIMATE}
_ALWAYS = {"agent": ("id",), "session": ("id",), "user": (), "estimate": ()}


class RequestStrategies:
    """Builds strategies for one policy's requests from its biases."""

    def __init__(self, biases: Biases, steering: Steering | None = None) -> None:
        self.b = biases
        self.steer = steering or Steering()

    # ── requests ─────────────────────────────────────────────────────────────

    def request(self, tools: list[tuple[str, Type]]) -> SearchStrategy[dict[str, Any]]:
        """A `tool_call` request to one of `tools` (name, args type)."""
        call = st.sampled_from(tools).flatmap(
            lambda t: self.value(t[1], "args").map(lambda args: (t[0], args)))
        parts: dict[str, SearchStrategy[Any]] = {}
        for root, rtype in _CONTEXT.items():
            fields = self._context_fields(root, rtype)
            if fields:
                need = (*_ALWAYS[root], *self.steer.below(root))
                parts[root] = self._record(rtype, root, fields, required=need)
        return st.tuples(call, st.fixed_dictionaries(parts)).map(_assemble)

    def _context_fields(self, root: str, rtype: RecordT) -> list[str]:
        read = {p.split(".")[1].split("[")[0] for p in self.b.referenced
                if p.startswith(root + ".") and p.count(".") >= 1}
        read.update(self.steer.below(root))
        return [f for f in rtype.fields if f in read or f in _ALWAYS[root]]

    # ── values by type ───────────────────────────────────────────────────────

    def value(self, t: Type, path: str) -> SearchStrategy[Any]:  # noqa: C901
        """Values of type `t` for the field at `path`, its policy constants tried first."""
        steered = self._steered(t, path)
        if steered is not None:
            return steered
        biased = [v for v in self.b.for_path(path) if _fits(v, t)]
        if isinstance(t, RecordT):
            return self._record(t, path, list(t.fields), required=(
                n for n, f in t.fields.items() if not f.optional))
        if isinstance(t, SetT | ListT):
            elem = self._elements(t.elem, path)
            return st.lists(elem, max_size=3, unique=isinstance(t, SetT))
        if isinstance(t, MapT):
            return self._map(t, path)
        base = self._prim(t if isinstance(t, Prim) else ANY)
        if biased:
            return st.one_of(base, st.sampled_from(biased))
        return base

    def _steered(self, t: Type, path: str) -> SearchStrategy[Any] | None:
        steer = self.steer.fields.get(path)
        if steer is None:
            return None
        kind = "list" if isinstance(t, SetT | ListT) else t.name if isinstance(t, Prim) else ""
        return steer.strategy(kind, lambda v: _fits(v, t))

    def _elements(self, elem: Type, path: str) -> SearchStrategy[Any]:
        # `"x" in user.roles` biases the collection's path; its elements take those values.
        biased = [v for v in self.b.for_path(path) if _fits(v, elem)]
        base = self.value(elem, path + "[]")
        return st.one_of(base, st.sampled_from(biased)) if biased else base

    def _map(self, t: MapT, path: str) -> SearchStrategy[dict[str, Any]]:
        # Keys the policy reads (`agent.labels["tier"]`, `args.x` of an undeclared tool) are
        # tried with their own biased values; otherwise keys are random identifiers.
        prefix = path + "."
        keyed = sorted({p[len(prefix):].split(".")[0] for p in (*self.b.fields, *self.b.referenced)
                        if p.startswith(prefix) and not p.endswith("[]")})
        steered = self.steer.below(path)
        keyed = [k for k in sorted({*keyed, *steered}) if _IDENT.fullmatch(k)]
        if keyed:
            fixed = {k: self.value(t.value, prefix + k) for k in keyed if k in steered}
            return st.fixed_dictionaries(fixed, optional={
                k: self.value(t.value, prefix + k) for k in keyed if k not in steered})
        return st.dictionaries(_KEY, self.value(t.value, path + "[]"), max_size=2)

    def _record(self, t: RecordT, path: str, fields: list[str],
                required: Any = ()) -> SearchStrategy[dict[str, Any]]:
        need = {*required, *self.steer.below(path)}
        values = {n: self.value(t.fields[n].type, f"{path}.{n}") for n in fields}
        fixed = {n: s for n, s in values.items() if n in need}
        optional = {n: s for n, s in values.items() if n not in need}
        partial = st.fixed_dictionaries(fixed, optional=optional)
        # Whole records first: Hypothesis shrinks toward the first alternative.
        return st.one_of(st.fixed_dictionaries(values), partial) if optional else partial

    def _prim(self, t: Prim) -> SearchStrategy[Any]:
        name = t.name
        if name == "str":
            pool = self.b.strings
            text = st.text(_ALPHABET, max_size=12)
            return st.one_of(text, st.sampled_from(pool)) if pool else text
        if name == "int":
            ints = [n for n in self.b.numbers if isinstance(n, int)]
            base = st.integers(min_value=-5, max_value=10_000)
            return st.one_of(base, st.sampled_from(ints)) if ints else base
        if name == "decimal":
            base = st.one_of(
                st.integers(min_value=0, max_value=100_000),
                st.decimals(min_value=-1, max_value=100_000, places=2, allow_nan=False,
                            allow_infinity=False))
            return st.one_of(base, st.sampled_from(self.b.numbers)) if self.b.numbers else base
        if name == "bool":
            return st.booleans()
        if name == "time":
            return st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)
                                ).map(lambda d: d.replace(tzinfo=UTC, microsecond=0)
                                      .isoformat().replace("+00:00", "Z"))
        if name == "duration":
            return st.integers(min_value=0, max_value=8 * 86400).map(lambda s: f"{s}s")
        return st.one_of(self._prim(Prim("str")), st.integers(-5, 1000), st.booleans())


def _fits(v: object, t: Type) -> bool:
    if isinstance(t, Prim):
        if t.name == "any":
            return True
        if t.name == "str":
            return isinstance(v, str)
        if t.name == "int":
            return isinstance(v, int) and not isinstance(v, bool)
        if t.name == "decimal":
            return isinstance(v, int | Decimal) and not isinstance(v, bool)
        if t.name == "bool":
            return isinstance(v, bool)
        if t.name == "duration":
            return isinstance(v, str) and v.endswith("s")
    return False


def _assemble(parts: tuple[tuple[str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    (tool, args), context = parts
    return {"stage": "tool_call", "tool": tool, "args": args, "now": FIXED_NOW, **context}
