"""RedisStore beyond the shared contract: its own wire path (scripts lost, connections
dropped, other kinds of client), exact amounts beyond what Lua numbers hold, reservations
recorded by earlier versions, and tokens after a fork. A real redis-server throughout."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from decimal import Decimal
from typing import Any

import pytest

from charter.runtime.state import CounterRef, Reservation, StateQuery, StoreError

redis = pytest.importorskip("redis")

T0 = 1_800_000_000.0
HOUR = 3600
CID = "budget:cost_usd:3600"


@pytest.fixture
def store(redis_url: str) -> Any:
    from charter.runtime.state import RedisStore

    s = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}:")
    yield s
    s.close()


def _used(store: Any, key: str = "a") -> Any:
    return store.read(StateQuery("s", counters=(CounterRef(CID, key, HOUR),)), T0).usage[(CID, key)]


def _kill_own_connections(store: Any) -> None:
    """Have the server drop the store's idle wire connections (as a restart would)."""
    for script in (store._take, store._settle):
        for conn in script._idle:
            conn.send_command("CLIENT", "ID")
            store._r.client_kill_filter(_id=conn.read_response())


def _take(store: Any, amount: Any, limit: Any, key: str = "a") -> Any:
    return store.take(
        StateQuery("s", labels=True), [Reservation(CID, key, HOUR, amount, limit)], T0
    )


def test_a_flushed_script_is_loaded_again(store: Any) -> None:
    assert _take(store, 1, 10).token
    store._r.script_flush()
    got = _take(store, 2, 10)  # NOSCRIPT: loaded and sent again
    assert got.token and got.usage == {(CID, "a"): 1}
    store.settle(got.token, {(CID, "a"): 1}, T0)  # the settle script too
    assert _used(store) == 2


def test_a_connection_the_server_dropped_is_replaced(store: Any) -> None:
    assert _take(store, 1, 10).token
    _kill_own_connections(store)
    assert _take(store, 1, 10).token  # the idle one failed; a new one carried the take
    assert _used(store) == 2


def test_a_server_that_went_away_is_a_store_error(redis_url: str) -> None:
    from charter.runtime.state import RedisStore

    store = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}:", timeout=0.5)
    assert _take(store, 1, 10).token
    _kill_own_connections(store)
    store._take._pool.connection_kwargs["port"] = 1  # nothing listens there
    with pytest.raises(StoreError):
        _take(store, 1, 10)
    store.close()


@pytest.mark.parametrize("kind", ["blocking pool", "decoded replies", "single connection"])
def test_other_kinds_of_client_work_alike(redis_url: str, kind: str) -> None:
    from charter.runtime.state import RedisStore

    if kind == "blocking pool":
        client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(redis_url))
    elif kind == "decoded replies":
        client = redis.Redis.from_url(redis_url, decode_responses=True)
    else:
        client = redis.Redis.from_url(redis_url, single_connection_client=True)
    store = RedisStore(client, prefix=f"test-{uuid.uuid4().hex}:")
    store.add_labels("s", ["pii"])
    store.record_call("s", "t", {"n": 1}, T0)
    got = store.take(
        StateQuery("s", history_tools=("t",)), [Reservation(CID, "a", HOUR, Decimal("0.5"), 1)], T0
    )
    assert got.token and got.labels == {"pii"} and got.usage == {(CID, "a"): 0}
    assert [e.fields for e in got.history["t"]] == [{"n": 1}]
    assert not _take(store, 1, 1).token and _used(store) == Decimal("0.5")
    store.settle(got.token, {(CID, "a"): Decimal("0.25")}, T0)
    assert _used(store) == Decimal("0.25")
    store.close()


def test_amounts_beyond_what_lua_numbers_hold_stay_exact(store: Any) -> None:
    # 2**53 units is about 9e6: above it, a Lua number (a double) is no longer exact.
    big = Decimal("90000000.000000001")  # 9e16 + 1 units
    got = _take(store, big, big)
    assert got.token and got.usage == {(CID, "a"): 0}
    assert _used(store) == big
    over = _take(store, Decimal("0.000000001"), big)  # one unit more does not fit
    assert over.failed == CID and over.usage == {(CID, "a"): big}
    assert _take(store, 0, big).usage == {(CID, "a"): big}  # usage before, exactly
    assert _used(store) == big
    # A small usage under a limit of 17 digits and more fits (no string compare needed).
    assert _take(store, 1, Decimal("10") ** 12, key="b").token


def test_a_reservation_recorded_by_an_earlier_version_still_settles(store: Any) -> None:
    got = _take(store, 5, 10)
    assert got.token
    # Before 2026-12 the record was a list of (ident, counter key, units) triples.
    record = store._key("r", got.token)
    ident, key, units = json.loads(store._r.get(record))
    store._r.delete(record)
    store._r.rpush(record, ident, key, units)
    store.settle(got.token, {(CID, "a"): 2}, T0)
    assert _used(store) == 2
    store.settle(got.token, {(CID, "a"): 9}, T0)  # once only
    assert _used(store) == 2


def _child_tokens(store: Any, out: Any) -> None:
    out.put([_take(store, 0, None).token for _ in range(3)])


def test_a_forked_child_makes_tokens_of_its_own(store: Any) -> None:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_tokens, args=(store, out))
    child.start()
    theirs = out.get(timeout=30)
    child.join(timeout=30)
    ours = [_take(store, 0, None).token for _ in range(3)]
    assert child.exitcode == 0 and not set(theirs) & set(ours)
