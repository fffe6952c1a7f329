"""The Guard's lean stateful path over a `MemoryStore` (`guard_lean`, and `Flow.memory`
behind it) decides and records exactly as the store-neutral path (`Flow._stateful`), which a
`MemoryStore` subclass gets."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import msgspec
import pytest

import charter
from charter import Guard
from charter.engine import ir
from charter.runtime.guard_flow import reservation_text
from charter.runtime.guard_plan import _limit_tests_only
from charter.runtime.state import CounterRef, MemoryStore, Reservation, StateQuery

NOW = 1_800_000_600.0

# Tools, allows, denies and labels both policies share.
COMMON = """\
use pii, secrets
default deny
tool "kb.read" (query: str) tags read
tool "web.fetch" (url: str) tags external
tool "spend" (amount: decimal) tags money
tool "note" (text: str)
allow tool "kb.*", "web.fetch", "spend", "note"
on tool_result allow tool "**"
deny tool tagged external when args contains secrets.any because "no secrets out"
deny tool tagged external when "saw_pii" in session.labels because "no egress after PII"
on tool_result label session "saw_pii" when result contains pii.email
label session "noted" when has(args.text)
"""

POLICY = """
policy "memory-path"
""" + COMMON + """limit calls(tool "web.fetch") <= 3 per 1h because "rate limit"
limit calls(tool "kb.read") <= 2 per 1h per agent.id then warn because "kb busy"
budget cost_usd <= 2.00 per 1d per agent.id because "daily agent budget"
budget tokens <= 100 per 1d per agent.id then require approval from "ops"
  because "token budget"
limit calls(tool tagged money) <= 2 per 1h then require approval from "finance"
  because "money calls"
scope tool "note" when agent.id == "bot-1" {
  limit calls(tool "note") <= 2 per 1d because "notes"
}
"""

# Counters keyed by the session id only: the simplest memory path (`MemoryPlan.simple`).
SIMPLE = """
policy "memory-simple"
""" + COMMON + """limit calls(tool "web.fetch") <= 3 per 1h because "rate limit"
limit calls(tool "web.fetch") <= 2 per 1h because "tighter rate limit"
limit calls(tool "kb.read") <= 2 per 1h then warn because "kb busy"
budget cost_usd <= 2.00 per 1d because "daily session budget"
budget tokens <= 100 per 1d then require approval from "ops" because "token budget"
limit calls(tool tagged money) <= 2 per 1h then require approval from "finance"
  because "money calls"
"""


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Plain(MemoryStore):
    """A MemoryStore the Guard does not recognise as one: the store-neutral path."""


def _requests() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for session in ("s1", "s2", None, "", 'q"uo\\te', "é"):
        sess = {} if session is None else {"id": session}
        for agent in ({"id": "bot-1"}, {"id": "bot-2"}, {}):
            base = {"agent": agent, "session": sess}
            out += [
                {**base, "tool": "web.fetch", "args": {"url": "https://a"}},
                {**base, "tool": "web.fetch", "args": {"url": "https://a"},
                 "estimate": {"cost_usd": Decimal("0.5"), "tokens": 30}},
                {**base, "tool": "web.fetch", "args": {"url": "AKIAIOSFODNN7EXAMPLE"}},
                {**base, "tool": "kb.read", "args": {"query": "q"}},
                {**base, "tool": "spend", "args": {"amount": 5}, "estimate": {"cost_usd": 0.75}},
                {**base, "tool": "spend", "args": {"amount": 5}, "estimate": {"cost_usd": -1}},
                {**base, "tool": "spend", "args": {"amount": 5}, "estimate": "x"},
                {**base, "tool": "spend", "args": {"amount": 5}, "estimate": {"tokens": 1.5}},
                {**base, "tool": "note", "args": {"text": "hi"}},
                {**base, "tool": "note", "args": {}},
                {**base, "stage": "tool_result", "tool": "kb.read", "args": {},
                 "result": "mail ann@example.com"},
                {**base, "tool": "unknown"},
            ]
    return out


def _comparable(decision: charter.Decision) -> tuple[Any, ...]:
    fields = msgspec.structs.asdict(decision)
    reservation = fields.pop("reservation")
    entries = None if reservation is None else msgspec.json.decode(reservation)[1]
    return tuple(sorted(fields.items(), key=lambda kv: kv[0])) + (entries,)


def _state(policy: charter.Policy, store: MemoryStore, sessions: list[str]
           ) -> tuple[Any, ...]:
    ids = {(c.id, c.window) for c in policy.ir.counters}
    refs = tuple(CounterRef(cid, key, window) for cid, window in sorted(ids)
                 for key in ("s1", "s2", "", 'q"uo\\te', "é", "bot-1", "bot-2"))
    snaps = [store.read(StateQuery(s, refs, (), True), NOW) for s in sessions]
    return tuple((dict(s.usage), s.labels) for s in snaps)


@pytest.mark.parametrize("text", [POLICY, SIMPLE], ids=["keyed", "simple"])
def test_the_memory_path_decides_and_records_as_the_store_neutral_path(text: str) -> None:
    policy = charter.compile(text, "memory.agentpolicy")
    fast_store, plain_store = MemoryStore(), Plain()
    fast = Guard(policy, state=fast_store, clock=Clock())
    plain = Guard(policy, state=plain_store, clock=Clock())
    assert policy.ir.counters  # the kinds above do take the memory path
    requests = _requests() * 2
    for i, request in enumerate(requests):
        a, b = fast.check(request), plain.check(request)
        assert _comparable(a) == _comparable(b), (i, request)
        if i % 3 == 0 and a.reservation is not None:
            assert fast.settle(a, cost_usd=Decimal("0.1"), tokens=1)
            assert plain.settle(b, cost_usd=Decimal("0.1"), tokens=1)
        elif i % 3 == 1:
            assert fast.release(a) and plain.release(b)
    assert fast.plan.memory, "no kind of call took the memory path"
    sessions = ["s1", "s2", "", 'q"uo\\te', "é"]
    assert _state(policy, fast_store, sessions) == _state(policy, plain_store, sessions)
    if text is SIMPLE:
        assert all(n.memory is not None and n.memory.simple for n in fast.plan.memory.values())


def test_the_memory_path_fails_closed_and_never_raises() -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    for text, method in ((POLICY, "read_counters"), (SIMPLE, "take_key")):
        guard = Guard(charter.compile(text, "memory.agentpolicy"), clock=Clock())
        request = {"tool": "web.fetch", "args": {"url": "https://a"}, "agent": {"id": "a"},
                   "session": {"id": "s"}}
        assert guard.check(request).allowed  # the first call of a kind plans it
        setattr(guard.store, method, broken)
        decision = guard.check(request)
        assert decision.effect == "deny"
        assert "internal error in the guard" in decision.reasons[0]


@pytest.mark.parametrize("key", ["s1", 'a"b\\c', "é\n", ""])
def test_reservation_text_is_the_json_of_token_and_entries(key: str) -> None:
    entries = (("calls:1h:3", "calls"), ('odd"id', "cost_usd"))
    pieces = tuple((f"[{msgspec.json.encode(c).decode()},",
                    f",{msgspec.json.encode(m).decode()}]") for c, m in entries)
    for n in (1, 2):
        text = reservation_text("abc-_.12", key, pieces[:n])
        expected = msgspec.json.encode(
            ("abc-_.12", [(c, key, m) for c, m in entries[:n]])).decode()
        assert text == expected


def test_memory_tokens_are_per_store_and_settle_only_there() -> None:
    one, two = MemoryStore(), MemoryStore()
    r = [Reservation("c", "k", None, 5, 10)]
    t1 = one.reserve(r, NOW).token
    t2 = two.reserve(r, NOW).token
    assert t1 is not None and t2 is not None and t1 != t2
    assert all(ch.isalnum() or ch in "-_." for ch in t1)
    def usage(store: MemoryStore) -> Decimal:
        return store.read(StateQuery("k", (CounterRef("c", "k"),)), NOW).usage[("c", "k")]

    one.release(t2, NOW)  # another store's token: ignored
    one.settle(t2, {("c", "k"): 0}, NOW)
    one.release("junk", NOW)
    one.settle(t1[:-1] + "x", {("c", "k"): 0}, NOW)
    assert usage(one) == 5
    one.release(t1, NOW)
    assert usage(one) == 0 and usage(two) == 5
    tokens = {one.reserve([Reservation("c", "k", None, 1)], NOW).token for _ in range(50)}
    assert len(tokens) == 50


@pytest.mark.parametrize("counters", [1, 2])
def test_take_key_is_all_or_nothing_under_contention(counters: int) -> None:
    store = MemoryStore()
    got: list[bool] = []
    barrier = threading.Barrier(32)
    items = (("calls:1h:1", 3600, 10**9, 100 * 10**9), ("cost:1d:2", 86400, 10**9, None))

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            token, _, _, _ = store.take_key(items[:counters], "k", False, NOW)
            got.append(token is not None)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got.count(True) == 100
    usage = store.read(StateQuery("k", (CounterRef("calls:1h:1", "k", 3600),
                                        CounterRef("cost:1d:2", "k", 86400))), NOW).usage
    assert usage == {("calls:1h:1", "k"): 100, ("cost:1d:2", "k"): 100 if counters == 2 else 0}


def test_unsettled_reservations_of_past_windows_are_forgotten() -> None:
    store = MemoryStore(prune_every=4)
    for _ in range(3):
        store.reserve([Reservation("c", "k", 60, 1)], NOW)
    store.reserve([Reservation("s", "k", None, 1)], NOW)  # per session: kept
    assert len(store._reservations) == 4
    for _ in range(4):
        store.reserve([Reservation("c", "k", 60, 1)], NOW + 120)
    assert len(store._reservations) == 5  # 1 session + 4 in the live window


def test_int_usage_only_for_plain_limit_tests() -> None:
    counter = ir.Counter("c", None)
    limit = ir.Cmp(">", ir.Arith("+", counter, ir.Const(1)), ir.Const(10))
    assert _limit_tests_only([limit])
    assert _limit_tests_only([ir.Cmp(">", ir.Arith("+", counter, ir.Estimate("cost_usd", "num")),
                                     ir.Const(Decimal("2")))])
    assert not _limit_tests_only([limit, ir.Cmp(">", counter, ir.Const(1))])
    assert not _limit_tests_only([ir.Cmp(">", ir.Arith("*", counter, ir.Const(2)),
                                         ir.Const(10))])
    assert not _limit_tests_only([ir.Cmp(">", ir.Arith("+", counter, ir.Const(1.5)),
                                         ir.Const(10))])


def test_take_key_reads_from_before_and_reserves_all_or_nothing() -> None:
    store = MemoryStore()
    store.add_labels("k", ["seen"])
    unit = 10**9
    # One counter: usage from before the reservation, then added.
    token, failed, usage, labels = store.take_key((("c", 60, 2 * unit, 3 * unit),), "k", True,
                                                  NOW, True)
    assert token is not None and failed is None
    assert usage == {("c", "k"): 0} and labels == {"seen"}
    token2, failed, usage, labels = store.take_key((("c", 60, 2 * unit, 3 * unit),), "k",
                                                   False, NOW, False)
    assert (token2, failed, labels) == (None, "c", frozenset())
    assert usage == {("c", "k"): Decimal(2)} and type(usage[("c", "k")]) is Decimal
    # Several counters: the first that would overflow is named and nothing is added.
    items = (("a", None, unit, None), ("c", 60, 2 * unit, 3 * unit))
    assert store.take_key(items, "k", False, NOW)[:2] == (None, "c")
    store.release(token, NOW)
    token3, failed, usage, _ = store.take_key(items, "k", False, NOW, True)
    assert token3 is not None and failed is None and usage == {("a", "k"): 0, ("c", "k"): 0}
    read = store.read(StateQuery("k", (CounterRef("a", "k"), CounterRef("c", "k", 60))), NOW)
    assert read.usage == {("a", "k"): 1, ("c", "k"): 2}
    # A new window starts empty; a fraction of a unit comes back as a Decimal.
    token4, _, usage, _ = store.take_key((("c", 60, unit // 2, None),), "k", False, NOW + 60,
                                         True)
    assert usage == {("c", "k"): 0}
    _, _, usage, _ = store.take_key((("c", 60, 0, None),), "k", False, NOW + 60, True)
    assert usage == {("c", "k"): Decimal("0.5")}
    store.release(token4, NOW + 60)
    store.release(token3, NOW)
    read = store.read(StateQuery("k", (CounterRef("a", "k"), CounterRef("c", "k", 60))), NOW)
    assert read.usage == {("a", "k"): 0, ("c", "k"): 0}
