"""The decision log's replay block (schema v1) and `runtime.replay`: a Guard-written log
re-decided against the policy that wrote it gives the logged effect and rules."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import charter
from benchmarks import replay_workload as workload
from charter.runtime import audit
from charter.runtime.audit import AuditLog, LogVersionError
from charter.runtime.guard import Guard
from charter.runtime.reads import EQ, SCAN, TYPE, VALUE, reads_of
from charter.runtime.replay import ReplayError, replay, replay_log, replay_record
from charter.runtime.state import MemoryStore

KEY = workload.HASH_KEY


def _decisions(path: Path) -> list[dict[str, Any]]:
    return [r for r in audit.read(path) if r.get("event") is None]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[str]]:
    path = tmp_path_factory.mktemp("replay") / "decisions.jsonl"
    seen = workload.write_log(path, 10_000)
    return path, seen


def test_a_guard_written_log_replays_with_identical_effects_and_rules(
        logged: tuple[Path, Counter[str]]) -> None:
    path, seen = logged
    records = _decisions(path)
    assert len(records) == 10_000
    policy = workload.policy()
    outs = [replay_record(r, policy, hash_key=KEY) for r in records]
    differ = [(r["tool"], r["effect"], r["rules"], o.decision.effect, o.decision.rules)
              for r, o in zip(records, outs, strict=True) if not o.same]
    assert differ == []
    assert [o.inconclusive for o in outs if o.inconclusive] == []
    # Effects and rules as the Guard logged them, not only as the replay saw them.
    assert all(o.decision.effect == r["effect"] and list(o.decision.rules) == r["rules"]
               for r, o in zip(records, outs, strict=True))


def test_the_workload_covers_what_replay_must_reconstruct(
        logged: tuple[Path, Counter[str]]) -> None:
    path, seen = logged
    records = _decisions(path)
    reasons = Counter(reason for r in records for reason in r["reasons"])
    for because in ("session budget of $0.50 reached", "hourly agent budget reached",
                    "web.fetch rate limit", "lookups per customer",
                    "refunds over 50 need finance", "deletes need two of ops",
                    "no card numbers in e-mail", "never e-mail the CEO",
                    "look the customer up first", "untrusted MCP server",
                    "no egress after PII"):
        assert reasons[because] > 0, because
    assert seen["granted allow"] > 0  # approvals with grants, one and two approvers
    assert any(r.get("approved_by") and r["tool"] == "files.delete" and r["allowed"]
               for r in records)
    blocks = [r["replay"] for r in records]
    kinds = Counter(kind for b in blocks for kind in (b.get("masked") or {}).values())
    assert kinds["str"] > 1000
    masked = {p for b in blocks for p in b.get("masked") or {}}
    assert "/request/args/to" in masked and "/request/args/body" in masked
    assert any(p.startswith("/snapshot/counters/") for p in masked)  # keyed by an e-mail
    assert any(p.startswith("/snapshot/history/") for p in masked)
    assert any("pii.card" in (b.get("scans") or {}).get("args", ()) for b in blocks)
    assert any(b.get("counts") for b in blocks)
    assert any(b["snapshot"] and b["snapshot"].get("labels") for b in blocks)
    assert any(b["snapshot"] and b["snapshot"].get("approvers") for b in blocks)
    assert any(isinstance(b["request"]["tool"], dict) and b["request"]["tool"].get("server")
               for b in blocks)
    assert any("cost_usd" in (b["request"].get("session") or {}) for b in blocks)
    text = path.read_text()
    for clear in ("@example.com", "ceo@corp.example", *workload.CARDS):
        assert clear not in text  # masked in the record and in its replay block


def test_without_the_hash_key_equality_on_masked_fields_is_inconclusive_never_changed(
        logged: tuple[Path, Counter[str]]) -> None:
    path, _ = logged
    policy = workload.policy()
    outs = [replay_record(r, policy) for r in _decisions(path)[:3000]]
    assert [o for o in outs if not o.inconclusive and not o.same] == []
    inconclusive = Counter(p for o in outs for p in o.inconclusive)
    assert inconclusive["/request/args/to"] > 0  # `args.to == "ceo@corp.example"`
    assert all(o.same for o in outs if o.inconclusive == ())
    tally = replay_log(path, policy, hash_key=KEY)
    assert (tally.records, tally.same, tally.changed, tally.inconclusive) == (
        10_000, 10_000, 0, 0)


POLICY = """
policy "small" version "1"
use pii
default deny
tool "email.send" (to: str, body: str) tags external
allow tool "email.send"
deny tool "email.send" when args contains pii.email because "no addresses in mail"
deny tool "email.send" when args.to == "boss@corp.example" because "not the boss"
deny tool "email.send" when hour_of(now) >= 25 because "never"
"""


def _one(tmp_path: Path, request: dict[str, Any], **log: Any) -> dict[str, Any]:
    path = tmp_path / "one.jsonl"
    path.unlink(missing_ok=True)
    guard = Guard(charter.compile(POLICY), MemoryStore(), log=AuditLog(path, **log))
    guard.check(request)
    guard.log.close()  # type: ignore[union-attr]
    (record,) = audit.read(path)
    return record


def test_contains_on_a_masked_field_replays_from_the_recorded_verdict(tmp_path: Path) -> None:
    record = _one(tmp_path, {"tool": "email.send",
                             "args": {"to": "team", "body": "write to ann@example.com"}})
    block = record["replay"]
    assert block["request"]["args"]["body"] == "write to [EMAIL]"
    assert block["masked"] == {"/request/args/body": "str"}
    assert block["scans"] == {"args": ["pii.email"]}
    policy = charter.compile(POLICY)
    assert replay(record, policy).effect == "deny" == record["effect"]
    # Without the verdict the masked text has no address: the verdict is what replays.
    del block["scans"]
    assert replay(record, policy).effect == "allow"
    assert replay_record(record, policy).inconclusive == ("/request/args/body",)


def test_equality_on_a_masked_field_replays_with_the_operator_key(tmp_path: Path) -> None:
    record = _one(tmp_path, {"tool": "email.send", "args": {"to": "boss@corp.example",
                                                            "body": "hi"}}, hash_key=KEY)
    policy = charter.compile(POLICY)
    assert record["effect"] == "deny"
    assert "boss@corp.example" not in json.dumps(record, default=str)
    assert set(record["replay"]["hashes"]) == {"/request/args/to"}
    out = replay_record(record, policy, hash_key=KEY)
    assert out.same and out.inconclusive == ()
    # Without the key the constant cannot be matched: inconclusive, not a silent allow.
    assert replay_record(record, policy).inconclusive == ("/request/args/to",)
    # A policy comparing with another constant sees a value equal to neither.
    other = charter.compile(POLICY.replace("boss@corp.example", "cfo@corp.example"))
    assert "not the boss" not in replay(record, other, hash_key=KEY).reasons


def test_the_decisions_now_is_recorded_and_replayed(tmp_path: Path) -> None:
    record = _one(tmp_path, {"tool": "email.send", "args": {"to": "team", "body": "hi"}})
    block = record["replay"]
    assert isinstance(block["request"]["now"], Decimal | float)
    policy = charter.compile(POLICY.replace(">= 25", f">= {_hour(block) + 1}"))
    assert replay(record, policy).effect == "allow"
    policy = charter.compile(POLICY.replace(">= 25", f">= {_hour(block)}"))
    assert replay(record, policy).effect == "deny"
    assert replay(record, policy, now=float(block["request"]["now"]) - 3600).effect == "allow"


def _hour(block: dict[str, Any]) -> int:
    import datetime

    when = datetime.datetime.fromtimestamp(float(block["request"]["now"]), datetime.UTC)
    return when.hour


def test_records_of_unknown_versions_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    record = _one(tmp_path, {"tool": "email.send", "args": {"to": "x", "body": "hi"}})
    assert record["v"] == 1 and record["replay"]["v"] == 1
    policy = charter.compile(POLICY)
    with pytest.raises(ReplayError, match="schema v2 is not one this Charter reads"):
        replay({**record, "v": 2}, policy)
    with pytest.raises(ReplayError, match="replay block schema v7"):
        replay({**record, "replay": {**record["replay"], "v": 7}}, policy)
    with pytest.raises(ReplayError, match="no replay block"):
        replay({k: v for k, v in record.items() if k != "replay"}, policy)
    with pytest.raises(ReplayError, match="no schema version"):
        replay({k: v for k, v in record.items() if k != "v"}, policy)
    path = tmp_path / "future.jsonl"
    path.write_text(json.dumps({"v": 1, "effect": "allow"}) + "\n"
                    + json.dumps({"v": 3, "effect": "allow"}) + "\n")
    with pytest.raises(LogVersionError, match=r"future\.jsonl:2: decision log schema v3"):
        list(audit.read(path))


def test_replay_off_and_unmasked_logs(tmp_path: Path) -> None:
    request = {"tool": "email.send", "args": {"to": "x", "body": "ann@example.com"}}
    assert "replay" not in _one(tmp_path, request, replay=False)
    clear = _one(tmp_path, request, mask=False)
    assert clear["replay"]["request"]["args"]["body"] == "ann@example.com"
    assert "masked" not in clear["replay"] and "scans" not in clear["replay"]
    assert replay(clear, charter.compile(POLICY)).effect == "deny"


def test_a_capture_that_fails_still_logs_the_decision(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.runtime import capture

    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(capture.Capture, "block", broken)
    record = _one(tmp_path, {"tool": "email.send", "args": {"to": "x", "body": "hi"}})
    assert record["effect"] == "allow"
    assert record["replay"] == {"v": 1, "error": "cannot capture the decision (RuntimeError)"}
    with pytest.raises(ReplayError):
        replay(record, charter.compile(POLICY))


def test_a_hash_key_must_be_a_secret() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        AuditLog("/dev/null", hash_key=b"short")


def test_reads_are_derived_from_the_ir() -> None:
    reads = reads_of(charter.compile("""
policy "r"
use pii
default deny
tool "t" (a: str, b: int, c: str)
strict args
allow tool "t" when args.a == "x" and args.b < 5 and args.c contains pii.email
  when has(agent.team) and "l" in session.labels
limit calls(tool "t") <= 3 per 1h per user.id
"""))
    assert reads.kinds_over(("args", "a")) & EQ and not reads.kinds_over(("args", "a")) & VALUE
    assert reads.kinds_over(("args", "b")) & VALUE
    assert reads.kinds_over(("args", "c")) & SCAN
    assert reads.kinds_over(("args", "zz")) == TYPE  # `strict args` reads every key
    assert reads.kinds_over(("user", "id")) == EQ
    assert reads.kinds_over(("session", "labels")) == EQ
    assert reads.kinds_over(("agent", "team")) == SCAN
    assert reads.kinds_over(("agent", "id")) == 0
    req = {"tool": "t", "args": {"a": 1}, "agent": {"id": "a", "team": "x"},
           "user": {"id": "u", "name": "n"}, "approvals": ["g"], "trace_id": "t"}
    assert reads.project(req) == {"tool": "t", "args": {"a": 1}, "agent": {"team": "x"},
                                  "user": {"id": "u"}}
    assert set(reads.scans) == {"args.c"} and "x" in reads.constants


def test_request_errors_are_logged_as_objects_and_replay(tmp_path: Path) -> None:
    record = _one(tmp_path, {"tool": "email.send", "args": {"body": "hi"}})
    assert record["effect"] == "deny"
    assert record["errors"] == [{"rule": "policy.agentpolicy:8", "field": "args.to",
                                 "message": "args.to missing"}]
    out = replay_record(record, charter.compile(POLICY))
    assert out.same and [e.field for e in out.decision.errors] == ["args.to"]


def test_the_log_takes_verdicts_from_the_decisions_own_scans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.stdlib.scanner import Scanner

    calls: list[object] = []
    real = Scanner.scan

    def counted(self: Scanner, value: object) -> frozenset[str]:
        calls.append(value)
        return real(self, value)

    monkeypatch.setattr(Scanner, "scan", counted)
    request = {"tool": "email.send", "args": {"to": "x", "body": "mail ann@example.com"}}
    plain = Guard(charter.compile(POLICY), MemoryStore())
    plain.check(request)
    without = len(calls)
    calls.clear()
    record = _one(tmp_path, request)
    assert record["replay"]["scans"] == {"args": ["pii.email"]}
    assert len(calls) == without > 0  # the decision's scans, and not one more


def test_the_capture_benchmark_runs_and_replays_what_it_wrote() -> None:
    import contextlib
    import io

    from benchmarks import replay_log

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert replay_log.main(["--quick"]) == 0
    assert "300 of 300 the same" in out.getvalue()
    assert "AuditLog.write + replay" in out.getvalue()


def test_charter_replay_prints_the_counts(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from charter.cli.main import cli

    path = tmp_path / "log.jsonl"
    workload.write_log(path, 200)
    source = tmp_path / "workload.agentpolicy"
    source.write_text(workload.POLICY)
    key = tmp_path / "key"
    key.write_bytes(KEY)
    same = CliRunner().invoke(cli, ["replay", str(path), str(source), "--hash-key-file",
                                    str(key)])
    assert same.exit_code == 0, same.output
    assert "replayed 200 of 200 records (0 not replayable): 200 the same, 0 changed" in (
        same.output)
    source.write_text(workload.POLICY.replace("<= 0.50 per session", "<= 0.01 per session"))
    changed = CliRunner().invoke(cli, ["replay", str(path), str(source), "--hash-key-file",
                                       str(key)])
    # A tighter budget only tightens: reported, and not a failure of the gate (R-S5).
    assert changed.exit_code == 0 and " 0 changed" not in changed.output
    path.write_text('{"v": 9, "effect": "allow"}\n')
    future = CliRunner().invoke(cli, ["replay", str(path), str(source)])
    assert future.exit_code == 2 and "schema v9" in future.output


NUMBERS = """
policy "numbers" version "1"
use pii
default deny
tool "pay" (card: int, memo: str, raw?: any)
strict args
allow tool "pay"
deny tool "pay" when args.card == 4111111111111111 because "a test card"
deny tool "pay" when args.memo like "*ann*" because "no ann"
deny tool "pay" when has(args.raw) and args.raw contains pii.email because "mail in raw"
"""


def _numbers(tmp_path: Path, request: dict[str, Any], **log: Any) -> dict[str, Any]:
    path = tmp_path / "n.jsonl"
    path.unlink(missing_ok=True)
    guard = Guard(charter.compile(NUMBERS), MemoryStore(), log=AuditLog(path, **log))
    guard.check(request)
    guard.log.close()  # type: ignore[union-attr]
    (record,) = audit.read(path)
    return record


def test_masked_numbers_keep_their_type_and_replay_by_hash(tmp_path: Path) -> None:
    policy = charter.compile(NUMBERS)
    for card, effect in ((4111111111111111, "deny"), (5555555555554444, "allow")):
        record = _numbers(tmp_path, {"tool": "pay", "args": {"card": card, "memo": "x"}},
                          hash_key=KEY)
        assert record["replay"]["masked"] == {"/request/args/card": "num"}
        assert record["effect"] == effect
        out = replay_record(record, policy, hash_key=KEY)
        assert out.same and out.inconclusive == ()
        # Without the key the equality is inconclusive; `strict args` still sees an int.
        unkeyed = replay_record(record, policy)
        assert unkeyed.inconclusive == ("/request/args/card",)
        assert not any("args.card" in r for r in unkeyed.decision.reasons)


def test_a_masked_value_read_by_like_is_inconclusive(tmp_path: Path) -> None:
    record = _numbers(tmp_path, {"tool": "pay", "args": {"card": 1, "memo": "ann@example.com"}},
                      hash_key=KEY)
    assert record["effect"] == "deny"
    out = replay_record(record, charter.compile(NUMBERS), hash_key=KEY)
    assert out.inconclusive == ("/request/args/memo",)


def test_bytes_and_nested_masked_values_replay(tmp_path: Path) -> None:
    request = {"tool": "pay", "args": {"card": 2, "memo": "m",
                                       "raw": {"to": [b"bob@example.com"], "n": 1.5}}}
    record = _numbers(tmp_path, request)
    block = record["replay"]
    assert block["request"]["args"]["raw"] == {"to": [{"$bytes": "[EMAIL]"}], "n": Decimal("1.5")}
    assert block["masked"] == {"/request/args/raw/to/0/$bytes": "str"}
    assert block["scans"] == {"args.raw": ["pii.email"]}
    out = replay_record(record, charter.compile(NUMBERS))
    assert record["effect"] == "deny" and out.same and out.inconclusive == ()


def test_when_the_guard_overrules_the_policy_the_block_keeps_the_policys_answer(
        tmp_path: Path) -> None:
    text = ('policy "d" version "1"\ndefault deny\ntool "t" (x: str)\nallow tool "t"\n'
            'limit calls(tool "t") <= 5 per 1h\n')
    path = tmp_path / "d.jsonl"
    guard = Guard(charter.compile(text), log=AuditLog(path))
    # The policy allows; the Guard cannot charge a negative estimate and denies.
    decision = guard.check({"tool": "t", "args": {"x": "a"}, "session": {"id": "s"},
                            "estimate": {"cost_usd": -1}})
    guard.close()
    (record,) = audit.read(path)
    assert decision.effect == record["effect"] == "deny" and record["rules"] == []
    assert record["replay"]["decided"] == {"effect": "allow", "rules": ["policy.agentpolicy:4"]}
    out = replay_record(record, charter.compile(text))
    assert out.same and (out.effect, out.decision.effect) == ("allow", "allow")


SHAPES = """
policy "shapes" version "1"
use pii
default deny
tool "send" (to: str, cc?: str)
allow tool "send"
deny tool "send" when agent.id == "x" because "not x"
deny tool "send" when agent.labels.level == "1" because "no levels"
deny tool "send" when args.to == "nobody" because "nobody"
"""


def test_a_path_the_logging_policy_never_read_is_inconclusive_with_its_path(
        tmp_path: Path) -> None:
    """R-S2: what the block holds comes from the logging policy's read set (its first
    block says it, `reads`); a candidate reading outside it gets `inconclusive`."""
    path = tmp_path / "shapes.jsonl"
    guard = Guard(charter.compile(SHAPES), MemoryStore(), log=AuditLog(path))
    requests = [
        {"id": "y", "team": "t", "labels": {"level": "1", "tag": "a"}},
        {"id": "y", "team": "t", "labels": {"tag": "a"}},  # no level: captured as absent
        {"id": "y", "team": "t", "labels": "flat"},  # not an object: kept whole
        {"id": "x", "team": "t"},  # no labels at all: captured as absent
    ]
    for agent in requests:
        guard.check({"tool": "send", "args": {"to": "y", "cc": "z"}, "agent": agent})
    guard.close()
    records = _decisions(path)
    # A payload a rule reads part of (`args.to`) is held whole; other roots as read.
    assert records[0]["replay"]["reads"] == [
        ["agent", "id"], ["agent", "labels", "level"], ["args"], ["stage"], ["tool"]]
    assert records[0]["replay"]["request"]["args"] == {"to": "y", "cc": "z"}
    assert all("reads" not in r["replay"] for r in records[1:])  # said once per version
    old = charter.compile(SHAPES)
    assert [replay_record(r, old).inconclusive for r in records] == [()] * 4

    def inconclusive(rule: str) -> list[tuple[str, ...]]:
        new = charter.compile(SHAPES + rule)
        return [replay_record(r, new).inconclusive for r in records]

    # `args.cc` was never read by a rule, but `args` is a payload: held whole.
    assert inconclusive('deny tool "send" when args.cc == "z" because "c"\n') == [()] * 4
    # `agent.team` was never read: unknown wherever the block shows `agent` as an object.
    assert inconclusive('deny tool "send" when agent.team == "t" because "b"\n') == [
        ("/request/agent/team",)] * 4
    # `agent.labels.tag` is under a read object: unknown where `labels` was an object;
    # known where it was a string (kept whole) or absent.
    assert inconclusive('deny tool "send" when agent.labels.tag == "a" because "t"\n') == [
        ("/request/agent/labels/tag",), ("/request/agent/labels/tag",), (), ()]
    # All of `labels` read where only parts were kept: unknown for every object `labels`.
    assert inconclusive(
        'deny tool "send" when agent.labels contains pii.email because "z"\n') == [
        ("/request/agent/labels",), ("/request/agent/labels",), (), ()]
    # A rule of another tool reads nothing this call could: no record is unknown.
    assert inconclusive('tool "other" (body: str)\nallow tool "other"\n'
                        'deny tool "other" when agent.team == "hi" because "o"\n') == [()] * 4
    # Without the `reads` of its version (a log cut from its head), a record's capture is
    # unknown: a key the block lacks may be one never read, so only what the block shows
    # (down to a value that is not an object) is known.
    del records[0]["replay"]["reads"]
    from charter.runtime.captured import Captures

    unknown = charter.compile(SHAPES + 'deny tool "send" when args.to == "z" because "z"\n')
    cut = [replay_record(r, unknown, captures=Captures(unknown)).inconclusive for r in records]
    assert cut == [(), ("/request/agent/labels/level",), (), ("/request/agent/labels/level",)]
    # ... unless the logging policy is given (`against=`).
    known = [replay_record(r, unknown, captures=Captures(unknown, logged_by=old)).inconclusive
             for r in records]
    assert known == [()] * 4


def test_replay_never_changes_the_record_and_plain_is_the_same_replay(
        logged: tuple[Path, Counter[str]]) -> None:
    """`plain=True` (what `replay_log` passes for a line without ``$bytes``/``$unloggable``)
    copies only what replay puts back or marks: the record stays as it was, and the
    outcome is the one of the full copy."""
    import copy

    from charter.runtime.replay import with_plain

    path, _ = logged
    policy = workload.policy()
    pairs = [(r, p) for r, p in with_plain(path) if r.get("event") is None][:2000]
    assert all(plain for _, plain in pairs)
    masked = [r for r, _ in pairs if r["replay"].get("masked")]
    assert len(masked) > 500
    for record, _ in pairs:
        before = copy.deepcopy(record)
        fast = replay_record(record, policy, hash_key=KEY, plain=True)
        assert record == before
        full = replay_record(record, policy, hash_key=KEY)
        assert record == before
        assert (fast.decision, fast.inconclusive) == (full.decision, full.inconclusive)
        assert fast.same


def test_policies_replayed_without_captures_are_not_kept_forever() -> None:
    """`replay_record` without `captures=` caches what a policy's own blocks hold; the
    cache must not keep every policy ever replayed (a host replaying each new version)."""
    import gc
    import weakref

    from charter.runtime import replay as replay_mod

    src = 'policy "p"\ndefault deny\ntool "x" (n: int)\nallow tool "x"\n'
    refs = []
    for i in range(40):
        p = charter.compile(src + f"# version {i}\n", "p.agentpolicy")
        refs.append(weakref.ref(p))
        replay_mod._own_captures(p)  # noqa: SLF001 - the cache under test
        del p
    gc.collect()
    assert sum(r() is not None for r in refs) <= replay_mod._MAX_OWN  # noqa: SLF001
