"""Canary and shadow versions and the change audit (issue 16: L-N1..N4, L-W1, L-W2, L-U1;
L-AC7, L-AC9, L-AC10 at test scale)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec

import charter
from charter.runtime import audit
from charter.runtime.audit import AuditLog
from charter.runtime.changes import read_changes
from charter.runtime.live import Live, bucket
from charter.runtime.replay_report import report

ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(__file__).parent / "data" / "canary_vectors.json"
STABLE = """policy "p"
default deny
tool "email.send" (to: str)
tool "web.fetch" (url: str)
@id("mail")
allow tool "email.send"
@id("web")
allow tool "web.fetch"
"""
CANDIDATE = STABLE + '@id("no-web-for-b")\ndeny tool "web.fetch" when agent.id == "b"\n'


def session(i: int, tool: str = "web.fetch", agent: str = "a") -> dict[str, object]:
    args = {"url": "https://x"} if tool == "web.fetch" else {"to": "x@y.z"}
    return {"tool": tool, "args": args, "agent": {"id": agent}, "session": {"id": f"s-{i}"}}


def test_bucket_shares_are_within_half_a_point_and_raising_only_adds() -> None:
    salt = "5eed0001"
    buckets = [bucket(salt, f"session-{i}") for i in range(100_000)]
    assert all(b is not None for b in buckets)
    for percent in (5, 25, 50):
        share = sum(1 for b in buckets if b is not None and b < percent * 100) / 1000
        assert abs(share - percent) <= 0.5, (percent, share)
    first = {i for i, b in enumerate(buckets) if b is not None and b < 500}
    raised = {i for i, b in enumerate(buckets) if b is not None and b < 2500}
    assert first <= raised


def test_only_strings_and_integers_are_bucketable() -> None:
    for value in (None, True, 1.5, [1], {"a": 1}):
        assert bucket("s", value) is None
    assert bucket("s", 7) == bucket("s", "7")


def test_the_committed_vectors_hold_in_processes_with_other_hash_seeds() -> None:
    data = json.loads(VECTORS.read_text())["vectors"]
    assert len(data) == 1000
    assert all(bucket(salt, value) == b for salt, value, b in data)
    code = (
        "import json, sys; from charter.runtime.live import bucket; "
        f"rows = json.load(open({str(VECTORS)!r}))['vectors']; "
        "print(sum(bucket(s, v) == b for s, v, b in rows))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert out.stdout.strip() == "1000"


def test_a_canary_routes_its_share_sticky_and_keeps_the_salt_when_raised() -> None:
    stable = charter.compile(STABLE)
    live = Live(stable)
    candidate = live.canary(charter.compile(CANDIDATE), 25)
    n = 100_000
    chosen = [live.decide(session(i)).policy.digest for i in range(n)]  # type: ignore[union-attr]
    share = chosen.count(candidate.digest) / n * 100
    assert abs(share - 25) <= 0.5
    salt = live.control.canary.salt  # type: ignore[union-attr]
    assert [live.decide(session(i)).policy.digest for i in range(2000)] == chosen[:2000]  # type: ignore[union-attr]
    live.canary(candidate, 50)
    assert live.control.canary.salt == salt  # type: ignore[union-attr]
    again = [live.decide(session(i)).policy.digest for i in range(5000)]  # type: ignore[union-attr]
    assert all(
        a == candidate.digest
        for a, c in zip(again, chosen[:5000], strict=True)
        if c == candidate.digest
    )
    no_key = {"tool": "web.fetch", "args": {"url": "u"}}
    assert live.decide(no_key).policy.digest == stable.digest  # type: ignore[union-attr]
    assert live.decide({**no_key, "session": {"id": True}}).policy.digest == stable.digest  # type: ignore[union-attr]
    promoted = live.promote()
    assert promoted.digest == candidate.digest and live.control.canary is None
    assert live.decide == live.policy.decide


def test_shadow_decisions_are_counted_and_logged_beside_the_enforced_ones(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    live = Live(charter.compile(STABLE), log=path)
    shadow = live.shadow(charter.compile(CANDIDATE))
    for agent in ("a", "b"):
        d = live.check(session(1, agent=agent))
        assert d.allowed  # never enforced
    assert live.decide(session(2, agent="b")).allowed
    live.close()
    assert live.shadow_stats.divergence == {"allow->deny": 2}
    assert live.shadow_stats.decisions == {"stable": 3}
    rows = list(audit.read(path))
    shadows = [r for r in rows if r.get("event") == "shadow"]
    decisions = [r for r in rows if r.get("event") is None]
    assert len(decisions) == 2 and len(shadows) == 2  # one check of b, one decide of b
    by_trace = {r["trace_id"]: r for r in decisions}
    logged = [s for s in shadows if s["trace_id"] in by_trace]
    assert len(logged) == 1
    assert logged[0]["shadow_policy"]["digest"] == shadow.digest
    assert logged[0]["shadow_policy"]["effect"] == "deny"
    assert logged[0]["shadow_policy"]["rules"] == ["web", "no-web-for-b"]
    assert by_trace[logged[0]["trace_id"]]["effect"] == "allow"


def shadowed_traffic(path: Path, stable: str, candidate: str) -> Live:
    live = Live(charter.compile(stable), log=AuditLog(path))
    live.shadow(charter.compile(candidate))
    rng = random.Random(3)
    for i in range(3000):
        live.check(session(i, rng.choice(["web.fetch", "email.send"]), rng.choice("abc")))
    live.close()
    return live


# The logged policy reads agent.id, so the log's replay blocks capture it.
READS_AGENT = STABLE + '@id("note")\nwarn tool "web.fetch" when agent.id == "z" because "z"\n'


def test_shadow_counts_equal_an_offline_replay_of_the_same_traffic(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    candidate = READS_AGENT + CANDIDATE[len(STABLE) :]
    live = shadowed_traffic(path, READS_AGENT, candidate)
    offline = report(path, charter.compile(candidate))
    assert offline.tally.inconclusive == 0
    changed = Counter({f"{o}->{n}": c for (o, n), c in offline.matrix.items() if o != n})
    assert changed == Counter(live.shadow_stats.divergence)
    assert sum(changed.values()) > 300
    assert offline.changed_rules == live.shadow_stats.changed_rules


def test_a_path_the_log_never_captured_makes_the_replay_inconclusive(tmp_path: Path) -> None:
    """STABLE never reads agent.id, so its log leaves it out: the candidate's rule on it
    cannot be replayed, and offline the records are inconclusive, not changed."""
    path = tmp_path / "decisions.jsonl"
    shadowed_traffic(path, STABLE, CANDIDATE)
    offline = report(path, charter.compile(CANDIDATE))
    assert offline.tally.changed == 0
    assert offline.inconclusive_by_path["/request/agent/id"] == offline.tally.inconclusive > 0


def test_one_change_record_per_change_with_actor_and_digests(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    v1, v2 = charter.compile(STABLE), charter.compile(CANDIDATE)
    live = Live(v1, changes=path, actor="deploy")
    live.activate(v2, actor="alice", reason="tighten web")
    sid = live.kill("email.*", "incident", actor="oncall")
    live.unkill(sid, actor="oncall")
    live.canary(v1, 5, actor="alice")
    live.canary(v1, 25, actor="alice")
    live.abort_canary(actor="alice", reason="errors")
    live.shadow(v1, actor="bob")
    live.stop_shadow(actor="bob")
    live.close()
    rows = list(read_changes(path))
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("activate", "deploy"),
        ("activate", "alice"),
        ("kill", "oncall"),
        ("unkill", "oncall"),
        ("canary", "alice"),
        ("canary", "alice"),
        ("abort_canary", "alice"),
        ("shadow", "bob"),
        ("stop_shadow", "bob"),
    ]
    assert rows[1]["from_digest"] == v1.digest and rows[1]["to_digest"] == v2.digest
    assert rows[5]["control"]["canary"]["percent"] == 25
    assert len({r["host"] for r in rows}) == 1


def test_change_records_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    code = (
        "import os, signal, sys, charter\n"
        "from charter.runtime.live import Live\n"
        "live = Live(charter.compile('policy \"p\"\\ndefault allow\\n'), changes=sys.argv[1])\n"
        "live.kill('email.*', 'x', actor='oncall')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert [r["action"] for r in read_changes(path)] == ["activate", "kill"]


TIGHTER = STABLE + '@id("every-20th")\ndeny tool "web.fetch" when session.id in {SESSIONS}\n'


def test_a_guarded_canary_aborts_once_min_samples_see_it_tighten_too_much(
    tmp_path: Path,
) -> None:
    """The candidate denies exactly every 20th session (5 % > 2 %): no abort before 500
    compared requests, abort at the 500th; then everything is on the stable version."""
    from charter.runtime.live import CanaryGuard

    every_20th = ", ".join(f'"s-{i}"' for i in range(0, 2000, 20))
    live = Live(charter.compile(STABLE), changes=tmp_path / "changes.jsonl")
    live.canary(
        charter.compile(TIGHTER.replace("{SESSIONS}", "{" + every_20th + "}")),
        50,
        guard=CanaryGuard(min_samples=500),
    )
    stats = live.control.canary.stats  # type: ignore[union-attr]
    for i in range(499):
        live.decide(session(i))
    assert live.control.canary is not None and stats.compared == 499 and stats.tightened == 25
    live.decide(session(499))
    assert live.control.canary is None and stats.aborted is not None
    assert stats.compared == 500
    assert all(live.decide(session(i)).allowed for i in range(0, 2000, 20))  # stable again
    aborted = [
        r for r in read_changes(tmp_path / "changes.jsonl") if r["action"] == "canary_aborted"
    ]
    assert len(aborted) == 1 and aborted[0]["control"]["canary"]["tightened"] == 25


def test_a_guarded_canary_aborts_at_once_on_a_loosening() -> None:
    from charter.runtime.live import CanaryGuard

    strict = STABLE + '@id("no-b")\ndeny tool "web.fetch" when agent.id == "b"\n'
    live = Live(charter.compile(strict))
    live.canary(
        charter.compile(strict.replace('agent.id == "b"', 'agent.id == "zz"')),
        1,
        guard=CanaryGuard(),
    )
    live.decide(session(1, agent="a"))
    assert live.control.canary is not None
    assert not live.decide(session(2, agent="b")).allowed  # stable enforced; compared
    assert live.control.canary is None  # the first loosening, before any min_samples


def test_a_guarded_canary_identical_to_stable_never_aborts() -> None:
    from charter.runtime.live import CanaryGuard

    live = Live(charter.compile(STABLE))
    live.canary(charter.compile(STABLE + "# the same rules\n"), 50, guard=CanaryGuard())
    rng = random.Random(5)
    for i in range(100_000):
        live.decide(session(i, rng.choice(["web.fetch", "email.send"]), rng.choice("abc")))
    assert live.control.canary is not None
    assert live.control.canary.stats.compared == 100_000


def test_status_says_what_is_served_and_how() -> None:
    live = Live(charter.compile(STABLE))
    sid = live.kill("email.*", "x")
    live.canary(charter.compile(CANDIDATE), 10)
    live.shadow(charter.compile(CANDIDATE))
    live.decide(session(1, agent="b"))
    status = json.loads(msgspec.json.encode(live.status()))  # the JSON, same names (L-H1)
    assert status == live.status().to_dict() | {"updated_at": status["updated_at"]}
    assert status["state"] == "READY" and status["active"]["digest"] == live.policy.digest
    assert [s["id"] for s in status["control"]["kill_switches"]] == [sid]
    assert status["canary"]["percent"] == 10 and status["canary"]["key"] == "session.id"
    assert sum(status["shadow"]["decisions"].values()) == 1


def test_check_routes_as_decide_does_and_other_key_paths_are_read() -> None:
    stable = charter.compile(STABLE)
    live = Live(stable)
    candidate = live.canary(charter.compile(CANDIDATE), 30)
    by_decide = [live.decide(session(i)).policy.digest for i in range(400)]  # type: ignore[union-attr]
    by_check = [live.check(session(i)).policy.digest for i in range(400)]  # type: ignore[union-attr]
    assert by_check == by_decide and candidate.digest in by_decide
    assert stable.digest in by_decide
    # a key path that is not two deep: read step by step, same cohort rule (str or int)
    live.canary(charter.compile(CANDIDATE), 100, key="agent.id")
    assert live.decide(session(1, agent="b")).policy.digest == candidate.digest  # type: ignore[union-attr]
    live.canary(charter.compile(CANDIDATE), 100, key="session")
    assert live.decide(session(1)).policy.digest == stable.digest  # type: ignore[union-attr]  # a dict
    assert live.check(session(1)).policy.digest == stable.digest  # type: ignore[union-attr]
