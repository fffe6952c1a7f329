"""Every decision is logged (issue 18, D5): no value in a request can make the record vanish.

Each case below used to raise inside `AuditLog.write` (the Guard swallowed the error, so the
decision stood but left no trace). Now an unloggable value is logged as a placeholder that
names why, and a write that fails on the file itself is counted and reported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import charter
from charter.runtime import audit
from charter.runtime.audit import AuditLog

POLICY = """
policy "audit-total" version "1"
default deny
tool "t" (x: any)
tool "spend" (amount: decimal)
allow tool "t", "spend"
budget cost_usd <= 10.00 per session because "budget"
"""


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _cycle_list() -> object:
    items: list[object] = [1]
    items.append(items)
    return items


def _cycle_dict() -> object:
    d: dict[str, object] = {"a": 1}
    d["self"] = {"inner": d}
    return d


def _shared(levels: int) -> object:
    # No cycle, but 2**levels leaves: a walk without a budget never ends.
    node: object = "x"
    for _ in range(levels):
        node = [node, node]
    return node


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


class _BrokenMapping(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise RuntimeError("cannot read")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1


RAISED: dict[str, object] = {
    "nested_2000": _nested(2000),
    "decimal_nan": Decimal("NaN"),
    "decimal_snan": Decimal("sNaN"),
    "decimal_inf": Decimal("Infinity"),
    "decimal_minus_inf": Decimal("-Infinity"),
    "int_5000_digits": 10**4999,
    "cyclic_list": _cycle_list(),
    "cyclic_dict": _cycle_dict(),
    "lone_surrogate": "a\ud800b",
}
"""Values whose record used to be lost (AuditLog.write raised)."""

CASES: dict[str, object] = {
    **RAISED,
    "float_inf": float("inf"),
    "shared_2_18": _shared(18),
    "object": _Opaque(),
    "broken_mapping": _BrokenMapping(),
    "non_utf8_bytes": b"\xff\xfe\x00",
}
"""Also values that used to be logged wrongly: as a repr, null, or a tree of 2**18 leaves."""


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(RAISED))
def test_every_value_is_logged_by_the_guard(tmp_path: Path, name: str) -> None:
    path = tmp_path / "decisions.jsonl"
    guard = charter.Guard(charter.compile(POLICY), log=path)
    decision = guard.check({"tool": "t", "session": {"id": "s1"}, "args": {"x": RAISED[name]}})
    guard.close()
    assert decision.effect == "allow"
    records = list(audit.read(path))
    assert len(records) == 1, _text(path)
    assert records[0]["effect"] == "allow" and records[0]["tool"] == "t"


@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize("name", sorted(RAISED))
def test_audit_log_write_never_raises_for_a_value(tmp_path: Path, name: str, mask: bool) -> None:
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path, mask=mask) as log:
        log.write({"effect": "deny", "args": {"x": RAISED[name]}, "trace_id": RAISED[name]})
    (record,) = audit.read(path)
    assert record["effect"] == "deny"


def _unloggable(path: Path) -> list[str]:
    (record,) = audit.read(path)
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if "$unloggable" in v:
                found.append(v["$unloggable"])
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(record["args"])
    return found


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("nested_2000", "nested deeper than 64 levels"),
        ("decimal_nan", "decimal NaN"),
        ("decimal_minus_inf", "decimal -Infinity"),
        ("float_inf", "float inf"),
        ("int_5000_digits", "int of 5000 digits"),
        ("cyclic_list", "cycle"),
        ("cyclic_dict", "cycle"),
        ("shared_2_18", "more than 100000 values"),
        ("object", "object of type _Opaque"),
        ("broken_mapping", "_BrokenMapping that raised RuntimeError when read"),
        ("non_utf8_bytes", "3 bytes, not UTF-8 text"),
    ],
)
def test_placeholders_name_why(tmp_path: Path, name: str, why: str) -> None:
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path) as log:
        log.write({"effect": "deny", "args": {"x": CASES[name]}})
    reasons = _unloggable(path)
    assert any(why in r for r in reasons), reasons


def test_structure_around_an_unloggable_value_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path) as log:
        log.write({"effect": "deny", "args": {"ok": [1, "two"], "bad": Decimal("NaN"),
                                              "keys": {None: 1, 3: "three"}}})
    (record,) = audit.read(path)
    args: Any = record["args"]
    assert args["ok"] == [1, "two"]
    assert args["bad"] == {"$unloggable": "decimal NaN"}
    assert args["keys"]["3"] == "three"
    assert args["keys"]["null"] == 1


def test_without_the_matchers_values_are_placeholders_not_a_lost_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def missing(user: object) -> object:
        raise ImportError("no charter.stdlib")

    monkeypatch.setattr(audit, "_masker", missing)
    path = tmp_path / "decisions.jsonl"
    with caplog.at_level(logging.ERROR, logger="charter.audit"), AuditLog(path) as log:
        log.write({"effect": "deny", "rules": ["r1"], "args": {"email": "a@example.com"}})
    (record,) = audit.read(path)
    assert record["effect"] == "deny" and record["rules"] == ["r1"]
    assert record["args"] == {"$unloggable": "masking unavailable (ImportError)"}
    assert any("cannot mask" in r.getMessage() for r in caplog.records)


def test_lone_surrogates_are_kept_visibly(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    with AuditLog(path) as log:
        log.write({"effect": "deny", "args": {"x": "a\ud800b"}})
    (record,) = audit.read(path)
    assert record["args"] == {"x": "a\\ud800b"}


# ── the file itself fails ──────────────────────────────────────────────────────


def test_a_closed_log_is_counted_and_reported_and_the_decision_stands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(tmp_path / "d.jsonl")
    guard = charter.Guard(charter.compile(POLICY), log=log)
    log.close()
    with caplog.at_level(logging.ERROR, logger="charter.guard"):
        decision = guard.check({"tool": "t", "session": {"id": "s1"}, "args": {"x": 1}})
    assert decision.effect == "allow"
    assert log.failures == 1
    assert any("decision log" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_counted_and_the_decision_stands(caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog("/dev/full")
    guard = charter.Guard(charter.compile(POLICY), log=log)
    with caplog.at_level(logging.ERROR, logger="charter.guard"):
        decision = guard.check({"tool": "t", "session": {"id": "s1"}, "args": {"x": 1}})
    log.close()
    assert decision.effect == "allow"
    assert log.failures == 1
    assert isinstance(log.last_error, OSError)
    assert any("No space left" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_required_log_that_fails_turns_allow_into_deny_and_releases() -> None:
    log = AuditLog("/dev/full", required=True)
    guard = charter.Guard(charter.compile(POLICY), log=log)
    request = {"tool": "spend", "args": {"amount": 1}, "session": {"id": "s1"},
               "estimate": {"cost_usd": Decimal("6")}}
    first = guard.check(request)
    assert first.effect == "deny" and not first.allowed
    assert "decision log" in first.reasons[0]
    assert first.reservation is None
    # The failed call charged nothing: with a working log the same spend fits the budget.
    guard.log = AuditLog(os.devnull)
    assert guard.check(request).allowed
    log.close()


def test_a_torn_write_does_not_glue_the_next_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.jsonl"
    log = AuditLog(path)
    real_write = os.write
    log_fd = log._fd
    calls = {"n": 0}

    def half_then_fail(fd: int, data: Any) -> int:
        if fd != log_fd:
            return real_write(fd, data)
        calls["n"] += 1
        if calls["n"] == 1:
            real_write(fd, bytes(data[:5]))
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(audit.os, "write", half_then_fail)
    with pytest.raises(OSError):
        log.write({"effect": "deny", "trace_id": "t0"})
    log.write({"effect": "allow", "trace_id": "t1"})
    log.close()
    assert [r["trace_id"] for r in audit.read(path)] == ["t1"]
    assert log.failures == 1
