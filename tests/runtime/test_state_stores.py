"""The `Store` contract, run against the memory, SQLite and Redis stores alike."""

from __future__ import annotations

import multiprocessing
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from charter.runtime.state import (
    HISTORY_LIMIT,
    CounterRef,
    MemoryStore,
    Reservation,
    SessionCalls,
    SQLiteStore,
    StateQuery,
    Store,
    StoreError,
)
from charter.runtime.state.base import from_units, to_units

T0 = 1_800_000_000.0  # an hour boundary: 1_800_000_000 % 3600 == 0
HOUR = 3600
COST = "budget:cost_usd:3600"


def usage(store: Store, cid: str, key: str, window: int | None, now: float) -> Decimal:
    snap = store.read(StateQuery("s1", counters=(CounterRef(cid, key, window),)), now)
    return snap.usage[(cid, key)]


def reserve1(
    store: Store,
    amount: Decimal | int,
    limit: Decimal | int | None,
    now: float = T0,
    cid: str = COST,
    key: str = "agent-1",
    window: int | None = HOUR,
) -> str | None:
    result = store.reserve([Reservation(cid, key, window, amount, limit)], now)
    return result.token


# -- amounts ---------------------------------------------------------------------------


def test_units_round_trip_exactly() -> None:
    for text in ["0", "1", "0.1", "2.00", "123456789.123456789", "-0.3"]:
        assert from_units(to_units(Decimal(text))) == Decimal(text)
    assert to_units(7) == 7 * 10**9


def test_negative_reservations_are_rejected() -> None:
    with pytest.raises(ValueError):
        Reservation(COST, "a", HOUR, Decimal("-1"), 10)


def test_sub_unit_amounts_round_up() -> None:
    assert to_units(Decimal("0.0000000001")) == 1


# -- counters --------------------------------------------------------------------------


def test_empty_counter_reads_zero(store: Store) -> None:
    assert usage(store, COST, "agent-1", HOUR, T0) == 0


def test_reserve_adds_and_read_sees_outstanding_reservations(store: Store) -> None:
    assert reserve1(store, Decimal("0.25"), Decimal("2.00"))
    assert reserve1(store, Decimal("0.50"), Decimal("2.00"))
    assert usage(store, COST, "agent-1", HOUR, T0 + 10) == Decimal("0.75")


def test_counters_are_separate_per_key_and_counter(store: Store) -> None:
    reserve1(store, 3, 10, key="agent-1")
    reserve1(store, 4, 10, key="agent-2")
    reserve1(store, 5, 10, cid="limit:calls:email.send:3600")
    assert usage(store, COST, "agent-1", HOUR, T0) == 3
    assert usage(store, COST, "agent-2", HOUR, T0) == 4
    assert usage(store, "limit:calls:email.send:3600", "agent-1", HOUR, T0) == 5


def test_window_rolls_over_at_epoch_aligned_boundary(store: Store) -> None:
    reserve1(store, 9, 10, now=T0 + HOUR - 1)
    assert usage(store, COST, "agent-1", HOUR, T0 + HOUR - 0.001) == 9
    assert usage(store, COST, "agent-1", HOUR, T0 + HOUR) == 0
    # The new window has its own full allowance.
    assert reserve1(store, 10, 10, now=T0 + HOUR)
    assert usage(store, COST, "agent-1", HOUR, T0 + HOUR) == 10


def test_session_counter_never_expires(store: Store) -> None:
    cid = "budget:cost_usd:session"
    reserve1(store, Decimal("1.5"), 2, cid=cid, key="s1", window=None, now=T0)
    assert usage(store, cid, "s1", None, T0 + 365 * 86400) == Decimal("1.5")


def test_reserve_rejects_over_limit_and_names_the_counter(store: Store) -> None:
    assert reserve1(store, Decimal("1.90"), Decimal("2.00"))
    result = store.reserve([Reservation(COST, "agent-1", HOUR, Decimal("0.20"), Decimal("2"))], T0)
    assert (result.ok, result.token, result.failed) == (False, None, COST)
    assert usage(store, COST, "agent-1", HOUR, T0) == Decimal("1.90")
    # Exactly reaching the limit is allowed.
    assert reserve1(store, Decimal("0.10"), Decimal("2.00"))


def test_reserve_is_all_or_nothing(store: Store) -> None:
    reserve1(store, 9, 10, cid="limit:b", key="k")
    result = store.reserve(
        [
            Reservation("limit:a", "k", HOUR, 1, 10),
            Reservation("limit:b", "k", HOUR, 2, 10),
            Reservation("limit:c", "k", None, 1, 10),
        ],
        T0,
    )
    assert not result.ok and result.failed == "limit:b"
    assert usage(store, "limit:a", "k", HOUR, T0) == 0
    assert usage(store, "limit:b", "k", HOUR, T0) == 9
    assert usage(store, "limit:c", "k", None, T0) == 0


def test_reserve_counts_repeated_counters_together(store: Store) -> None:
    result = store.reserve(
        [Reservation("limit:a", "k", HOUR, 6, 10), Reservation("limit:a", "k", HOUR, 6, 10)], T0
    )
    assert not result.ok
    assert usage(store, "limit:a", "k", HOUR, T0) == 0


def test_reserve_without_limit_only_adds(store: Store) -> None:
    assert reserve1(store, 10**6, None)
    assert usage(store, COST, "agent-1", HOUR, T0) == 10**6


def test_large_amounts_stay_exact(store: Store) -> None:
    big = Decimal("9000000.123456789")
    assert reserve1(store, big, big)
    assert usage(store, COST, "agent-1", HOUR, T0) == big
    assert not reserve1(store, Decimal("0.000000001"), big)


# -- take: read, check and reserve in one step ------------------------------------------


def test_take_reads_and_reserves_with_usage_from_before(store: Store) -> None:
    reserve1(store, 3, 10, cid="limit:a", key="s1")
    store.add_labels("s1", ["x"])
    store.record_call("s1", "t", {"k": 1}, T0)
    got = store.take(
        StateQuery("s1", counters=(CounterRef("limit:r", "s1", HOUR),), history_tools=("t",)),
        [Reservation("limit:a", "s1", HOUR, 2, 10)], T0)
    assert got.token is not None and got.failed is None
    # The reserved counter's usage is reported too, as it was before this reservation.
    assert got.usage == {("limit:r", "s1"): 0, ("limit:a", "s1"): 3}
    assert got.labels == {"x"}
    assert [dict(e.fields) for e in got.history["t"]] == [{"k": 1}]
    assert usage(store, "limit:a", "s1", HOUR, T0) == 5
    store.release(got.token, T0)
    assert usage(store, "limit:a", "s1", HOUR, T0) == 3


def test_take_that_does_not_fit_adds_nothing_and_still_reads(store: Store) -> None:
    reserve1(store, 9, 10, cid="limit:b", key="k")
    store.add_labels("k", ["seen"])
    got = store.take(StateQuery("k"), [
        Reservation("limit:a", "k", HOUR, 1, 10),
        Reservation("limit:b", "k", HOUR, 2, 10),
        Reservation("limit:c", "k", None, 1, None),
    ], T0)
    assert (got.token, got.failed) == (None, "limit:b")
    assert got.usage == {("limit:a", "k"): 0, ("limit:b", "k"): 9, ("limit:c", "k"): 0}
    assert got.labels == {"seen"}
    for cid, window, used in (("limit:a", HOUR, 0), ("limit:b", HOUR, 9), ("limit:c", None, 0)):
        assert usage(store, cid, "k", window, T0) == used


def test_take_of_one_counter_twice_adds_up_and_reports_the_first_usage(store: Store) -> None:
    reserve1(store, 4, 10, cid="limit:a", key="k")
    two = [Reservation("limit:a", "k", HOUR, 4, 10), Reservation("limit:a", "k", HOUR, 3, 10)]
    got = store.take(StateQuery("k", labels=False), two, T0)
    assert got.token is None and got.failed == "limit:a"
    assert got.usage == {("limit:a", "k"): 4}
    got = store.take(StateQuery("k", labels=False), [
        Reservation("limit:a", "k", HOUR, 3, 10), Reservation("limit:a", "k", HOUR, 3, None)], T0)
    assert got.token is not None and got.usage == {("limit:a", "k"): 4}
    assert usage(store, "limit:a", "k", HOUR, T0) == 10


def test_take_without_reservations_is_a_read(store: Store) -> None:
    reserve1(store, Decimal("0.25"), None, cid=COST, key="a")
    store.bump_session_calls("s1", True)
    got = store.take(StateQuery("s1", counters=(CounterRef(COST, "a", HOUR),)), (), T0)
    assert (got.token, got.failed) == (None, None)
    assert got.usage == {(COST, "a"): Decimal("0.25")}
    assert got.calls == SessionCalls(1, 1)
    assert store.take(StateQuery("s1", calls=False), (), T0).calls == SessionCalls(0, 0)


def test_take_token_settles_like_a_reserve_token(store: Store) -> None:
    got = store.take(StateQuery("s"), [Reservation(COST, "a", HOUR, Decimal("1.5"), 2),
                                       Reservation("calls", "a", HOUR, 1, 5)], T0)
    assert got.token is not None
    store.settle(got.token, {(COST, "a"): Decimal("0.4")}, T0 + 1)
    store.settle(got.token, {(COST, "a"): Decimal("1.9")}, T0 + 1)  # settled once only
    assert usage(store, COST, "a", HOUR, T0 + 1) == Decimal("0.4")
    assert usage(store, "calls", "a", HOUR, T0 + 1) == 1


def test_usage_is_an_int_when_whole_and_an_exact_decimal_otherwise(store: Store) -> None:
    reserve1(store, 2, None, cid="whole", key="k")
    reserve1(store, Decimal("2.50"), None, cid="part", key="k")
    got = store.take(StateQuery("k", counters=(
        CounterRef("whole", "k", HOUR), CounterRef("part", "k", HOUR))), (), T0)
    assert type(got.usage[("whole", "k")]) is int and got.usage[("whole", "k")] == 2
    assert got.usage[("part", "k")] == Decimal("2.5")


# -- settle / release ------------------------------------------------------------------


def test_settle_lower_returns_the_difference(store: Store) -> None:
    token = reserve1(store, Decimal("1.00"), Decimal("2.00"))
    assert token
    store.settle(token, {(COST, "agent-1"): Decimal("0.30")}, T0 + 1)
    assert usage(store, COST, "agent-1", HOUR, T0 + 1) == Decimal("0.30")


def test_settle_higher_charges_actual_usage(store: Store) -> None:
    token = reserve1(store, Decimal("1.00"), Decimal("2.00"))
    assert token
    store.settle(token, {(COST, "agent-1"): Decimal("2.50")}, T0 + 1)
    assert usage(store, COST, "agent-1", HOUR, T0 + 1) == Decimal("2.50")
    assert not reserve1(store, Decimal("0.01"), Decimal("2.00"))


def test_settle_twice_and_unknown_token_are_no_ops(store: Store) -> None:
    token = reserve1(store, 5, 10)
    assert token
    store.settle(token, {(COST, "agent-1"): 2}, T0)
    store.settle(token, {(COST, "agent-1"): 7}, T0)
    store.release(token, T0)
    store.settle("no-such-token", {(COST, "agent-1"): 1}, T0)
    assert usage(store, COST, "agent-1", HOUR, T0) == 2


def test_look_alike_tokens_settle_nothing(store: Store) -> None:
    # Strings near a real token (padded, signed, spaced, another store's) are unknown tokens.
    token = reserve1(store, 5, 10)
    assert token
    head, _, tail = token.rpartition(".")
    others = [token + "0", token + " ", token[:-1], " " + token, token.upper(), "",
              f"{head}.0{tail}", f"{head}.+{tail}", f"{head}.{tail}_", "x" * 5000]
    for other in others:
        if other != token:
            store.release(other, T0)
            store.settle(other, {(COST, "agent-1"): 0}, T0)
    assert usage(store, COST, "agent-1", HOUR, T0) == 5
    store.release(token, T0)
    assert usage(store, COST, "agent-1", HOUR, T0) == 0


def test_settle_keeps_counters_missing_from_actual(store: Store) -> None:
    result = store.reserve(
        [
            Reservation(COST, "a", HOUR, Decimal("0.5"), 2),
            Reservation("limit:calls", "a", HOUR, 1, 10),
        ],
        T0,
    )
    assert result.token
    store.settle(result.token, {(COST, "a"): Decimal("0.1")}, T0)
    snap = store.read(
        StateQuery(
            "s", counters=(CounterRef(COST, "a", HOUR), CounterRef("limit:calls", "a", HOUR))
        ),
        T0,
    )
    assert snap.usage == {(COST, "a"): Decimal("0.1"), ("limit:calls", "a"): 1}


def test_release_undoes_the_reservation(store: Store) -> None:
    reserve1(store, 3, 10)
    token = reserve1(store, 7, 10)
    assert token
    assert not reserve1(store, 1, 10)
    store.release(token, T0)
    assert usage(store, COST, "agent-1", HOUR, T0) == 3
    assert reserve1(store, 7, 10)


def test_outstanding_reservations_of_equal_amounts_each_give_back_their_own(
        store: Store) -> None:
    # Equal amounts on one counter, interleaved with a different one: each token still
    # settles or releases exactly its own amount, in any order.
    tokens = [reserve1(store, amount, None) for amount in (2, 2, 5, 2, 2)]
    assert all(tokens)
    store.release(tokens[1], T0)  # type: ignore[arg-type]
    store.release(tokens[2], T0)  # type: ignore[arg-type]
    assert usage(store, COST, "agent-1", HOUR, T0) == 6
    store.settle(tokens[4], {(COST, "agent-1"): 1}, T0)  # type: ignore[arg-type]
    store.release(tokens[1], T0)  # type: ignore[arg-type]  # released already: nothing
    assert usage(store, COST, "agent-1", HOUR, T0) == 5
    for token in (tokens[0], tokens[3], tokens[4]):
        store.release(token, T0)  # type: ignore[arg-type]
    assert usage(store, COST, "agent-1", HOUR, T0) == 1  # the settled 1 stays charged


def test_settle_after_window_rolled_over_does_not_touch_new_window(store: Store) -> None:
    token = reserve1(store, 5, 10, now=T0 + HOUR - 1)
    assert token
    reserve1(store, 2, 10, now=T0 + HOUR)
    store.settle(token, {(COST, "agent-1"): 1}, T0 + HOUR + 1)
    assert usage(store, COST, "agent-1", HOUR, T0 + HOUR + 1) == 2


# -- labels, history, calls ------------------------------------------------------------


def test_labels_are_monotonic_per_session(store: Store) -> None:
    store.add_labels("s1", ["saw_pii"])
    store.add_labels("s1", ["external", "saw_pii"])
    store.add_labels("s1", [])
    store.add_labels("s2", ["other"])
    assert store.read(StateQuery("s1"), T0).labels == {"saw_pii", "external"}
    assert store.read(StateQuery("s2"), T0).labels == {"other"}
    assert store.read(StateQuery("s3"), T0).labels == frozenset()


def test_history_is_recorded_per_session_and_tool(store: Store) -> None:
    store.record_call("s1", "refund.create", {"amount": Decimal("100.50"), "to": "a"}, T0)
    store.record_call("s1", "refund.create", {"amount": 7, "ok": True, "tags": ["x"]}, T0 + 5)
    store.record_call("s1", "email.send", {"to": "b"}, T0 + 6)
    store.record_call("s2", "refund.create", {"amount": 1}, T0 + 7)
    snap = store.read(StateQuery("s1", history_tools=("refund.create", "files.delete")), T0 + 9)
    assert set(snap.history) == {"refund.create", "files.delete"}
    assert snap.history["files.delete"] == ()
    first, second = snap.history["refund.create"]
    assert (first.time, dict(first.fields)) == (T0, {"amount": Decimal("100.50"), "to": "a"})
    assert isinstance(first.fields["amount"], Decimal)
    assert (second.time, dict(second.fields)) == (T0 + 5, {"amount": 7, "ok": True, "tags": ["x"]})


def test_history_is_bounded_keeping_the_newest(store: Store) -> None:
    for i in range(HISTORY_LIMIT + 5):
        store.record_call("s1", "t", {"i": i}, T0 + i)
    entries = store.read(StateQuery("s1", history_tools=("t",)), T0).history["t"]
    assert len(entries) == HISTORY_LIMIT
    assert entries[0].fields == {"i": 5} and entries[-1].fields == {"i": HISTORY_LIMIT + 4}


def test_session_calls_count_and_reset_on_non_tool_step(store: Store) -> None:
    assert store.bump_session_calls("s1", True) == SessionCalls(1, 1)
    assert store.bump_session_calls("s1", True) == SessionCalls(2, 2)
    assert store.bump_session_calls("s1", False) == SessionCalls(2, 0)
    assert store.bump_session_calls("s1", True) == SessionCalls(3, 1)
    assert store.bump_session_calls("s2", False) == SessionCalls(0, 0)
    assert store.read(StateQuery("s1"), T0).calls == SessionCalls(3, 1)


def test_read_batches_everything(store: Store) -> None:
    reserve1(store, 1, 5, cid="limit:x", key="s1", window=None)
    store.add_labels("s1", ["a"])
    store.record_call("s1", "t", {"k": "v"}, T0)
    store.bump_session_calls("s1", True)
    snap = store.read(
        StateQuery("s1", counters=(CounterRef("limit:x", "s1", None),), history_tools=("t",)), T0
    )
    assert snap.usage == {("limit:x", "s1"): 1}
    assert snap.labels == {"a"}
    assert [e.fields for e in snap.history["t"]] == [{"k": "v"}]
    assert snap.calls == SessionCalls(1, 1)


def test_ids_with_separators_do_not_collide(store: Store) -> None:
    reserve1(store, 1, 10, cid="a:b", key="c")
    reserve1(store, 2, 10, cid="a", key="b:c")
    assert usage(store, "a:b", "c", HOUR, T0) == 1
    assert usage(store, "a", "b:c", HOUR, T0) == 2


# -- nonces ----------------------------------------------------------------------------


def test_nonce_is_single_use(store: Store) -> None:
    assert not store.is_nonce_used("n1")
    assert store.use_nonce("n1", T0 + 60) is True
    assert store.is_nonce_used("n1")
    assert store.use_nonce("n1", T0 + 60) is False
    assert store.use_nonce("n2", T0 + 60) is True


# -- failures --------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens once the socket is closed


def test_unreachable_redis_raises_store_error() -> None:
    pytest.importorskip("redis")
    from charter.runtime.state import RedisStore

    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", timeout=0.5)
    with pytest.raises(StoreError):
        store.read(StateQuery("s1", counters=(CounterRef(COST, "a", HOUR),)), T0)
    with pytest.raises(StoreError):
        store.reserve([Reservation(COST, "a", HOUR, 1, 10)], T0)
    with pytest.raises(StoreError):
        store.settle("t", {}, T0)
    with pytest.raises(StoreError):
        store.use_nonce("n", T0)
    with pytest.raises(StoreError):
        store.add_labels("s1", ["x"])


def test_unusable_sqlite_path_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "missing-dir" / "state.db")
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path)  # a directory, not a file


def test_lazy_sqlite_store_opens_its_file_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path, lazy=True)
    assert not path.exists()
    assert reserve1(store, 1, 5) is not None
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    store.close()
    assert usage(SQLiteStore(path, lazy=True), COST, "agent-1", HOUR, T0) == 1


def test_lazy_sqlite_store_refuses_what_it_can_see_is_unusable(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such directory"):
        SQLiteStore(tmp_path / "missing-dir" / "state.db", lazy=True)
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path, lazy=True)  # a directory, not a file
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, not even close")
    with pytest.raises(StoreError, match="not an SQLite database"):
        SQLiteStore(garbage, lazy=True)


def _reserve_in_child(store: SQLiteStore, out: Any) -> None:
    out.put([reserve1(store, 1, None) for _ in range(3)])


def test_sqlite_store_used_after_a_fork_keeps_tokens_apart(tmp_path: Path) -> None:
    # The child opens its own connection and makes tokens the parent never makes: both
    # write to one file, and one's settle must never touch the other's reservation.
    store = SQLiteStore(tmp_path / "state.db")
    ours = [reserve1(store, 1, None)]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_reserve_in_child, args=(store, out))
    child.start()
    theirs = out.get(timeout=30)
    child.join(timeout=30)
    ours += [reserve1(store, 1, None) for _ in range(3)]
    assert child.exitcode == 0 and len(set(ours) | set(theirs)) == 7
    assert usage(store, COST, "agent-1", HOUR, T0) == 7
    for token in theirs:
        store.release(token, T0)
    assert usage(store, COST, "agent-1", HOUR, T0) == 4
    store.close()


def test_sqlite_store_survives_restart(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "state.db")
    token = reserve1(first, 4, 10)
    first.add_labels("s1", ["x"])
    first.close()
    second = SQLiteStore(tmp_path / "state.db")
    assert token
    second.settle(token, {(COST, "agent-1"): 3}, T0)
    assert usage(second, COST, "agent-1", HOUR, T0) == 3
    assert second.read(StateQuery("s1"), T0).labels == {"x"}
    second.close()


def test_closed_sqlite_store_raises_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    store.close()
    with pytest.raises(StoreError):
        store.read(StateQuery("s1"), T0)


def test_memory_store_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)
