"""Grants: signed, bound to one exact action, expiring, single use."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from charter.runtime.approvals import (
    BAD_SIGNATURE,
    EXPIRED,
    MALFORMED,
    REPLAYED,
    WRONG_ACTION,
    Grant,
    action_digest,
    canonical_json,
    consume_grant,
    mint_grant,
    verify_grant,
)
from charter.runtime.state import MemoryStore

SECRET = b"test-secret-0123456789"
NOW = 1_800_000_000.0
ARGS = {"amount": Decimal("400.00"), "currency": "USD", "customer_email": "a@b.co"}


def digest(
    args: object = ARGS,
    stage: str = "tool_call",
    tool: str = "refund.create",
    session: str = "sess-1",
) -> str:
    return action_digest({"stage": stage, "tool": tool, "args": args, "session": {"id": session}})


def grant(ttl: float = 300, group: str = "finance") -> Grant:
    return mint_grant(SECRET, digest(), "alice", group, ttl, NOW)


def test_canon_treats_equal_numbers_alike() -> None:
    assert canonical_json([100, 100.0, Decimal("100.00"), Decimal("1E+2")]) == "[100,100,100,100]"
    assert canonical_json({"b": 0.1, "a": Decimal("-0.50")}) == '{"a":-0.5,"b":0.1}'
    assert canonical_json([True, 1, None]) == "[true,1,null]"
    assert digest({"amount": 400, "currency": "USD", "customer_email": "a@b.co"}) == digest()


def test_canon_rejects_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        canonical_json(float("nan"))


def test_happy_path_and_forms() -> None:
    g = grant()
    store = MemoryStore()
    for form in (g, g.to_dict(), g.to_token(), msgspec.json.decode(msgspec.json.encode(g))):
        check = verify_grant(SECRET, form, digest(), NOW + 10, store)
        assert (check.ok, check.group, check.reason, check.code) == (True, "finance", None, None)


def test_forged_signature() -> None:
    forged = mint_grant(b"attacker-secret", digest(), "mallory", "finance", 300, NOW)
    check = verify_grant(SECRET, forged, digest(), NOW, MemoryStore())
    assert not check.ok and check.code == BAD_SIGNATURE and check.group is None


def test_altered_args_do_not_match() -> None:
    other = digest({**ARGS, "amount": Decimal("4000")})
    assert verify_grant(SECRET, grant(), other, NOW, MemoryStore()).code == WRONG_ACTION


def test_rewriting_the_digest_breaks_the_signature() -> None:
    other = digest({**ARGS, "amount": Decimal("4000")})
    tampered = {**grant().to_dict(), "digest": other}
    assert verify_grant(SECRET, tampered, other, NOW, MemoryStore()).code == BAD_SIGNATURE


def test_widened_group() -> None:
    tampered = {**grant().to_dict(), "group": "admins"}
    assert verify_grant(SECRET, tampered, digest(), NOW, MemoryStore()).code == BAD_SIGNATURE


def test_extended_expiry() -> None:
    g = grant(ttl=60)
    tampered = {**g.to_dict(), "expires_at": g.expires_at + 86400}
    check = verify_grant(SECRET, tampered, digest(), NOW + 3600, MemoryStore())
    assert check.code == BAD_SIGNATURE


def test_expired() -> None:
    g = grant(ttl=60)
    assert verify_grant(SECRET, g, digest(), NOW + 59, MemoryStore()).ok
    check = verify_grant(SECRET, g, digest(), NOW + 60, MemoryStore())
    assert not check.ok and check.code == EXPIRED and check.reason


def test_replayed() -> None:
    g, store = grant(), MemoryStore()
    assert verify_grant(SECRET, g, digest(), NOW, store, consume=True).ok
    check = verify_grant(SECRET, g, digest(), NOW + 1, store, consume=True)
    assert not check.ok and check.code == REPLAYED


def test_verify_without_consume_leaves_the_grant_usable() -> None:
    g, store = grant(), MemoryStore()
    assert verify_grant(SECRET, g, digest(), NOW, store).ok
    assert verify_grant(SECRET, g, digest(), NOW, store).ok
    assert consume_grant(g, store) is True
    assert consume_grant(g, store) is False  # a racing second use loses
    assert verify_grant(SECRET, g, digest(), NOW, store).code == REPLAYED


@pytest.mark.parametrize(
    "moved",
    [
        {"session": "sess-2"},
        {"tool": "files.delete"},
        {"stage": "tool_result"},
    ],
)
def test_transplanted_to_another_action(moved: dict[str, str]) -> None:
    check = verify_grant(SECRET, grant(), digest(**moved), NOW, MemoryStore())
    assert not check.ok and check.code == WRONG_ACTION


@pytest.mark.parametrize(
    "bad",
    [
        None,
        42,
        "not-a-grant",
        "cg1.!!!",
        {"digest": "x"},
        {
            "digest": "d",
            "approver": "a",
            "group": "g",
            "issued_at": "soon",
            "expires_at": 1.0,
            "nonce": "n",
            "signature": "s",
        },
    ],
)
def test_malformed(bad: object) -> None:
    check = verify_grant(SECRET, bad, digest(), NOW, MemoryStore())
    assert not check.ok and check.code == MALFORMED


def test_times_may_arrive_as_json_integers() -> None:
    g = mint_grant(SECRET, digest(), "alice", "finance", 300, 1_800_000_000)
    wire = msgspec.json.decode(msgspec.json.encode(g.to_dict()))
    assert verify_grant(SECRET, wire, digest(), NOW, MemoryStore()).ok
