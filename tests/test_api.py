"""The public Python API: compile, load, save/load_compiled, Decision JSON, robustness."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

import charter
from charter import CompileError, Decision, Snapshot

ROOT = Path(__file__).resolve().parent.parent
POLICY = '''
policy "api" version "3.2.1"
use pii
tool "pay" (amount: decimal, to: str) tags money
@id("pay") allow tool "pay" when args.to != "mallory"
@id("big") require approval from "finance" tool "pay" when args.amount > 100
  because "big payment"
@id("warn") warn tool "pay" when args.amount > 50 because "sizeable"
@id("shadow") @shadow deny tool "pay" when args.to == "bob" because "trial"
@id("redact") on tool_result redact pii.email in result
on tool_result allow tool "pay"
'''
DESIGN_FIELDS = {"effect", "allowed", "reasons", "rules", "approvers", "redactions",
                 "warnings", "labels", "shadow", "errors", "policy"}


def test_compile_and_decide() -> None:
    p = charter.compile(POLICY)
    assert (p.name, p.version) == ("api", "3.2.1")
    d = p.decide({"tool": "pay", "args": {"amount": 500, "to": "bob"}})
    assert isinstance(d, Decision)
    assert d.effect == "require_approval" and not d.allowed
    assert d.approvers == ("finance",)
    assert set(d.rules) == {"pay", "big", "warn"}
    assert d.warnings == ("sizeable",)
    assert [(s.rule, s.effect) for s in d.shadow] == [("shadow", "deny")]
    assert d.policy is not None and d.policy.name == "api" and d.policy.digest


def test_compile_error_lists_every_diagnostic() -> None:
    with pytest.raises(CompileError) as info:
        charter.compile('tool "t" (n: int)\nallow tool "t" when args.m > 1\n'
                        'deny tool "t" when args.n = 2\n', "bad.agentpolicy")
    text = str(info.value)
    assert "bad.agentpolicy:2:" in text and "CH0202" in text
    assert "bad.agentpolicy:3:" in text and "CH0207" in text


def test_load_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "a.agentpolicy").write_text('policy "dir" version "1"\nallow tool "a"\n')
    (tmp_path / "b.agentpolicy").write_text('deny tool "a" when agent.id == "x"\n')
    (tmp_path / "a_test.agentpolicy").write_text("this is not even valid syntax {{{\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.agentpolicy").write_text("allow tool \"c\"\n")
    p = charter.load(tmp_path)
    assert p.decide({"tool": "a", "agent": {"id": "y"}}).effect == "allow"
    d = p.decide({"tool": "a", "agent": {"id": "x"}})
    assert d.effect == "deny" and d.rules == ("a.agentpolicy:2", "b.agentpolicy:1")
    assert charter.load(tmp_path / "b.agentpolicy").decide({"tool": "a"}).effect == "deny"
    with pytest.raises(FileNotFoundError):
        charter.load(tmp_path / "sub" / "nothing-here")


def test_load_examples() -> None:
    for name in ("support", "coding", "finance"):
        p = charter.load(ROOT / "examples" / name)
        assert p.version


def test_save_and_load_compiled_round_trip(tmp_path: Path) -> None:
    p = charter.compile(POLICY)
    path = tmp_path / "p.charter"
    p.save(path)
    q = charter.load_compiled(path)
    assert (q.name, q.version, q.digest) == (p.name, p.version, p.digest)
    requests: list[Any] = [
        {"tool": "pay", "args": {"amount": 10, "to": "a"}},
        {"tool": "pay", "args": {"amount": 75, "to": "bob"}},
        {"tool": "pay", "args": {"amount": 500, "to": "mallory"}},
        {"tool": "pay", "args": {"to": "a"}},
        {"stage": "tool_result", "tool": "pay", "result": "mail x@example.com"},
        {"tool": 3},
    ]
    for r in requests:
        assert q.decide(r) == p.decide(r)
    granted = Snapshot(approved_groups=frozenset({"finance"}))
    assert q.decide(requests[2], granted) == p.decide(requests[2], granted)


def test_load_compiled_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.charter"
    bad.write_bytes(b"not a policy")
    with pytest.raises(Exception):  # noqa: B017 - any clear error, never a silent policy
        charter.load_compiled(bad)


def test_decision_json_has_design_field_names() -> None:
    p = charter.compile(POLICY)
    d = p.decide({"stage": "tool_result", "tool": "pay", "result": {"e": "x@example.com"}})
    data = json.loads(msgspec.json.encode(d))
    assert set(data) >= DESIGN_FIELDS
    assert data["effect"] == "allow" and data["allowed"] is True
    assert data["redactions"][0]["field"] == "result"
    assert data["redactions"][0]["counts"] == {"pii.email": 1}
    assert set(data["policy"]) == {"name", "version", "digest"}
    assert json.loads(d.to_json()) == data
    assert d.to_dict()["effect"] == "allow"
    assert d.redact({"e": "x@example.com"}) != {"e": "x@example.com"}


GARBAGE: list[Any] = [
    None, 3, 3.5, True, [], [1, 2], "", "{", "[]", "null", b"", b"\xff", b"\x00\x01",
    {"stage": None}, {"stage": "weird", "tool": "pay"}, {"stage": ["tool_call"]},
    {"tool": None}, {"tool": ""}, {"tool": {"name": None}}, {"tool": {"name": "pay", "tags": 5}},
    {"tool": "pay", "args": None}, {"tool": "pay", "args": "amount=5"},
    {"tool": "pay", "args": {"amount": float("nan"), "to": "a"}},
    {"tool": "pay", "args": {"amount": float("inf"), "to": "a"}},
    {"tool": "pay", "args": {"amount": Decimal("1e400"), "to": "a"}},
    {"tool": "pay", "args": {"amount": object(), "to": object()}},
    {"tool": "pay", "session": "s", "agent": 5, "user": [], "now": 12},
    {"stage": "tool_result", "tool": "pay", "result": object()},
    {1: 2, "tool": "pay"},
]


def _deep(n: int) -> Any:
    value: Any = "x@example.com"
    for _ in range(n):
        value = {"k": [value]}
    return value


@pytest.mark.parametrize("request_", [*GARBAGE, {"tool": "pay", "args": _deep(2000)},
                                      {"stage": "tool_result", "tool": "pay",
                                       "result": _deep(2000)}],
                         ids=lambda r: f"{type(r).__name__}")
def test_decide_never_raises(request_: Any) -> None:
    p = charter.compile(POLICY)
    d = p.decide(request_)
    assert isinstance(d, Decision)
    assert d.effect in ("allow", "deny", "require_approval")
    if d.effect != "allow":
        assert d.reasons


def test_huge_args_are_scanned() -> None:
    p = charter.compile('use pii\nallow tool "t"\n@id("no-mail") deny tool "t" when args '
                        "contains pii.email because \"mail\"\n")
    args = {f"k{i}": ["filler text"] * 20 for i in range(500)}
    args["k499"].append("reach me at jane@example.com")
    assert p.decide({"tool": "t", "args": args}).rules == ("policy.agentpolicy:2", "no-mail")


def test_threads_get_identical_decisions() -> None:
    p = charter.load(ROOT / "examples" / "finance")
    reqs = [json.loads(f.read_text(), parse_float=Decimal)
            for f in sorted((ROOT / "examples" / "finance" / "requests").glob("*.json"))]
    expected = [p.decide(r) for r in reqs]
    results: list[list[Decision]] = []
    errors: list[BaseException] = []
    fresh = charter.load(ROOT / "examples" / "finance")  # cold caches, shared by all threads

    def work() -> None:
        try:
            results.append([fresh.decide(r) for _ in range(20) for r in reqs][-len(reqs):])
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8
    for r in results:
        assert r == expected
