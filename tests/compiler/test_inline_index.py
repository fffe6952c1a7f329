"""The inline templates for `x[K]`, `len(x)` and `x in K` (engine/ops.py) decide as the
functions they stand for: generated code must equal the interpreter on every value, exact
classes (inlined) and everything else (the function) alike."""

from __future__ import annotations

import collections
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import charter

POLICY = """
policy "inline"
default allow
const regions = {"eu-west-1", "eu-central-1"}
const sizes = [1, 2.5, "3"]
deny when args.order["customer"]["region"] in regions because "member"
deny when args.order["items"][0]["sku"] == "BANNED" because "index"
deny when args.order["items"][-1]["qty"] > 3 because "negative index"
deny when len(args.order["items"]) > 2 because "len"
warn when args.size in sizes because "member of a list"
warn when not (args.tag in regions) because "not member"
warn when len(args.tag) == 0 because "empty"
warn when args.order[1] == "x" because "int key on a map"
"""

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
    st.sampled_from([Decimal("2.5"), Decimal("NaN"), "eu-west-1", "BANNED", "", "3", b"3",
                     b"eu-west-1"]),
)
VALUES = st.recursive(ODD, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner),
    st.dictionaries(st.sampled_from(["customer", "region", "items", "sku", "qty"]), inner,
                    max_size=3),
    st.builds(lambda d: collections.defaultdict(int, d),
              st.dictionaries(st.sampled_from(["region", "sku", "qty"]), inner, max_size=2)),
    st.builds(MappingProxyType, st.dictionaries(st.sampled_from(["sku", "qty"]), inner,
                                                max_size=2)),
), max_leaves=8)
ITEMS = st.lists(st.one_of(VALUES, st.fixed_dictionaries(
    {}, optional={"sku": st.one_of(st.just("BANNED"), VALUES),
                  "qty": st.one_of(st.integers(0, 5), VALUES)})), max_size=4)
ORDERS = st.one_of(VALUES, st.fixed_dictionaries({}, optional={
    "customer": st.one_of(VALUES, st.fixed_dictionaries(
        {}, optional={"region": st.one_of(st.sampled_from(["eu-west-1", "us"]), VALUES)})),
    "items": st.one_of(ITEMS, VALUES), 1: VALUES}))
ARGS = st.fixed_dictionaries({}, optional={"order": ORDERS, "size": VALUES, "tag": VALUES})

_POLICY = charter.compile(POLICY)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(ARGS)
def test_inline_reads_decide_as_the_interpreter(args: dict[str, Any]) -> None:
    request = {"tool": "orders.create", "args": args}
    before = repr(request)
    assert _POLICY.decide(request) == _POLICY.interpret(request)
    assert repr(request) == before  # a defaultdict never gains a key


@pytest.mark.parametrize("args", [
    {"order": {"customer": {"region": "eu-west-1"}, "items": [{"sku": "BANNED", "qty": 9}]}},
    {"order": {"items": ({"sku": "BANNED"},)}},  # a tuple: through `_index`
    {"order": collections.defaultdict(int, {"items": [{"sku": "A"}]})},
    {"order": {"items": [{"sku": "A"}, {"qty": 4.0}]}, "tag": b"eu-west-1", "size": 2.5},
    {"order": {1: "x"}, "tag": "", "size": "3"},
])
def test_inline_reads_on_chosen_values(args: dict[str, Any]) -> None:
    request = {"tool": "orders.create", "args": args}
    assert _POLICY.decide(request) == _POLICY.interpret(request)


def test_the_templates_are_what_runs() -> None:
    source = _POLICY.bucket_for({"tool": "orders.create"}).source  # type: ignore[union-attr]
    assert "len(t)" in source and "_index(t, 0)" in source and "_member(t, K" in source
