"""Disagreements between compiled and interpreted decisions that the differential test
(tests/compiler/test_differential.py) found, each kept as the smallest case that showed it.

Each case is a policy and requests decided in order through one `Policy` (caches included);
every decision of `decide` must equal the interpreter's."""

from __future__ import annotations

import collections
import enum
import types
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest

import charter
from charter import Snapshot

HEADER = 'policy "r"\ndefault deny\n'


class Region(enum.StrEnum):
    EU = "eu"


class Record(Mapping[str, object]):
    """A read-only mapping that is not a dict."""

    def __init__(self, data: dict[str, object]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def nested(depth: int) -> object:
    value: object = "eu"
    for _ in range(depth):
        value = [value]
    return value


CASES: dict[str, tuple[str, list[tuple[Any, Snapshot | None]]]] = {
    # After a toolless model_input request, `"tool": ""` or `{"name": ""}` at that stage hit
    # the toolless entry on the fast path (decided as no tool) instead of being malformed.
    "empty tool name at a model stage, after a toolless request": (
        'allow tool "**"\non model_input allow\n',
        [({"stage": "model_input"}, None),
         ({"stage": "model_input", "tool": {"name": ""}}, None),
         ({"stage": "model_input", "tool": ""}, None),
         ({"stage": "model_output", "output": "x"}, None),
         ({"stage": "model_output", "tool": {"name": "", "server": "s"}}, None)],
    ),
    # Generated code read nested fields with `[]`: through a `defaultdict`'s or `Counter`'s
    # `__missing__` (a missing field read as 0, and the defaultdict gained the key) and
    # through mappings that are not dicts, where the interpreter finds no field.
    "nested mappings that are not plain dicts": (
        'tool "pay.send" (amount: decimal, limit?: int, meta?: map<str, any>)\n'
        'allow tool "pay.send" when args.amount < 10\n'
        "deny when args.limit > 3\n"
        'deny when agent.team == "x"\nwarn when agent.env == "prod" because "prod"\n'
        "deny tool \"pay.send\" when args.meta.owner.id > 3\n",
        [({"tool": "pay.send", "args": collections.defaultdict(int, {"amount": 5})}, None),
         ({"tool": "pay.send", "args": collections.Counter({"amount": 5})}, None),
         ({"tool": "pay.send", "args": types.MappingProxyType({"amount": 5, "limit": 9})},
          None),
         ({"tool": "pay.send", "args": collections.OrderedDict(amount=5, limit=1)}, None),
         ({"tool": "pay.send", "args": {"amount": 5},
           "agent": collections.defaultdict(str, {"env": "prod"})}, None),
         ({"tool": "pay.send", "args": {"amount": 5, "meta": {
             "owner": collections.defaultdict(int)}}}, None)],
    ),
    # An untyped read (`args["count"]`) reused a typed int read of the same field, which
    # turns 1.0 into the int 1: `steps[args["count"]]` then found an item where the
    # interpreter, reading the decimal 1.0, finds no index (a request error).
    "untyped read of a field declared int": (
        "const steps = [10, 20, 30]\n"
        'tool "pay.send" (amount: decimal, count?: int)\n'
        'warn tool "pay.send" when args.count > 0 because "typed"\n'
        'warn when args["count"] * 2 == 2 because "untyped"\n'
        'allow when steps[args["count"]] == 20\n',
        [({"tool": "pay.send", "args": {"count": c, "amount": 1}}, None)
         for c in (1, 1.0, Decimal("1.0"), Decimal("1"), Decimal("1E+0"))],
    ),
    # Generated code compares with a string, time or duration by Python's `==` (`<`); the
    # interpreter keyed the other side, which failed on a bytearray in a map or on deep
    # nesting (a request error where compiled code said "not equal"), and it took a
    # StrEnum for no string at all (a deny where compiled code allowed).
    "comparing with a string, time or duration": (
        'allow when args.region == "eu"\nwarn when args.x < "m" because "m"\n'
        'warn when now == args.y because "now"\n',
        [({"tool": "t", "args": {"region": r, "x": x, "y": y}, "now": "2026-01-05T10:00:00Z"},
          None)
         for r, x, y in [(Region.EU, "a", 1), (Region.EU, Region.EU, {"a": bytearray(b"1")}),
                         ({"a": bytearray(b"1")}, "a", [bytearray()]),
                         (nested(200), "z", nested(200)), (["eu"], Region.EU, "x")]],
    ),
    # When a rule errs, the decision made from the rules' outcomes was cached without
    # grants and then returned to the same request presenting a grant for the matched
    # approval rule (still asking for approval where the interpreter lets it through).
    "an erring request decided again with a grant": (
        "strict args\n"
        'tool "pay.send" (amount?: decimal)\nrequire approval from "g1", "g2"\n',
        [({"tool": {"name": "pay.send"}, "args": {"path": "/x"}}, None),
         ({"tool": {"name": "pay.send"}, "args": {"path": "/x"}},
          Snapshot(approved_groups=frozenset({"g2"}))),
         ({"tool": "pay.send", "args": {"path": "/x"}}, None),
         ({"tool": "pay.send", "args": {"path": "/x"}},
          Snapshot(approved_groups=frozenset({"g1"})))],
    ),
    # `"owner" in args.filters` was Python's `in` whenever the item is a string, which also
    # looks into a mappingproxy: compiled code allowed where the interpreter reports that
    # the value is not a collection.
    "a string looked for in a mapping that is not a dict": (
        'allow when "owner" in args.filters\nallow when "a" in user.roles\n',
        [({"tool": "kb.search", "args": {"filters": types.MappingProxyType({"owner": 1})}},
          None),
         ({"tool": "kb.search", "args": {"filters": Record({"owner": 1})}}, None),
         ({"tool": "kb.search", "args": {"filters": {"owner": 1}}}, None)],
    ),
    # The interpreter scanned a field once per decision, reading it only the first time:
    # after an untyped `args["region"] contains ...`, a typed `args.region contains ...`
    # skipped its check (a StrEnum is no declared `str`), where generated code reports it.
    "a field scanned untyped, then typed": (
        'use pii\ntool "pay.send" (region: str)\n'
        'deny when args["region"] contains pii.email because "email"\n'
        'allow tool "pay.send" unless args.region contains pii.email\n',
        [({"tool": "pay.send", "args": {"region": Region.EU}}, None),
         ({"tool": "pay.send", "args": {"region": "eu"}}, None)],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_equals_reference_on_past_disagreements(name: str) -> None:
    body, requests = CASES[name]
    policy = charter.compile(HEADER + body)
    for req, snap in requests:
        before = repr(req)
        reference = policy.interpret(req, snap)
        assert policy.decide(req, snap) == reference, (before, snap)
        assert policy.decide(req, snap).to_json() == reference.to_json(), (before, snap)
        assert repr(req) == before, "deciding changed the request"
