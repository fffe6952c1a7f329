"""`charter replay LOG --policy NEW` (issue 16, Part C: R-AC1, R-AC2): a Guard-written log
replayed against its own policy is 100 % unchanged; against a known edit the transition
table holds exactly the hand-computed flips; inconclusive records are never changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import replay_workload as workload
from charter.cli.main import cli
from charter.runtime import audit
from charter.runtime.replay_report import report

KEY = workload.HASH_KEY
NO_WEB = workload.POLICY + 'deny tool "web.fetch" because "no web today"\n'
CEO = 'deny tool "email.send" when args.to == "ceo@corp.example" because "never e-mail the CEO"'
# The CEO rule edited in place (same line, so no other rule id moves) to one that never fires.
CEO_OK = workload.POLICY.replace(CEO, CEO.replace("ceo@corp", "nobody@corp"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("replay-report")
    workload.write_log(d / "log.jsonl", 3_000)
    (d / "key").write_bytes(KEY)
    (d / "old").mkdir()
    (d / "old" / "workload.agentpolicy").write_text(workload.POLICY)
    (d / "new").mkdir()
    (d / "new" / "workload.agentpolicy").write_text(NO_WEB)
    (d / "loose").mkdir()
    (d / "loose" / "workload.agentpolicy").write_text(CEO_OK)
    return d


def replay(d: Path, policy: str, *more: str) -> tuple[int, str]:
    out = CliRunner().invoke(
        cli,
        [
            "replay",
            str(d / "log.jsonl"),
            "--policy",
            str(d / policy),
            "--hash-key-file",
            str(d / "key"),
            *more,
        ],
    )
    return out.exit_code, out.stdout if "json" in more else out.output


def test_a_log_against_its_own_policy_is_all_unchanged(logged: Path) -> None:
    code, text = replay(logged, "old")
    assert code == 0, text
    assert (
        "replayed 3,000 of 3,000 records (0 not replayable): 3,000 the same, 0 changed, "
        "0 inconclusive" in text
    )
    code, raw = replay(logged, "old", "--format", "json")
    data = json.loads(raw)
    assert data["totals"]["unchanged"] == 3_000 and data["totals"]["changed"] == 0
    assert all(k.split("->")[0] == k.split("->")[1] for k in data["matrix"])


def test_a_known_edit_gives_exactly_the_hand_computed_flips(logged: Path) -> None:
    records = [r for r in audit.read(logged / "log.jsonl") if r.get("event") is None]
    # By hand: every web.fetch call the old policy allowed is now denied; nothing else
    # changes effect (a denied web.fetch stays denied, with one more rule).
    expected = Counter(
        (r["effect"], "deny")
        for r in records
        if r["tool"] == "web.fetch" and r["stage"] == "tool_call" and r["effect"] != "deny"
    )
    code, raw = replay(logged, "new", "--format", "json")
    assert code == 0  # tightening alone passes the gate (R-S5)
    data = json.loads(raw)
    flips = {k: v for k, v in data["matrix"].items() if k.split("->")[0] != k.split("->")[1]}
    assert flips == {f"{o}->{n}": c for (o, n), c in expected.items()}
    assert sum(expected.values()) > 0
    assert data["totals"]["loosened"] == 0
    assert data["by_tool"] == {"web.fetch": data["totals"]["changed"]}
    assert all(s["new"]["reasons"][0] == "no web today" for s in data["samples"]["allow->deny"])
    assert len(data["samples"]["allow->deny"]) == 3
    code, text = replay(logged, "new")
    assert "allow->deny" in text and "tightening: " in text


def test_without_the_key_masked_equality_is_inconclusive_never_changed(logged: Path) -> None:
    policy = workload.policy()
    found = report(logged / "log.jsonl", policy)
    assert found.tally.changed == 0
    assert found.tally.inconclusive > 0
    assert sum(found.inconclusive_by_path.values()) >= found.tally.inconclusive
    assert found.tally.same + found.tally.inconclusive == found.tally.records


def test_the_policy_is_given_once(logged: Path) -> None:
    out = CliRunner().invoke(cli, ["replay", str(logged / "log.jsonl")])
    assert out.exit_code == 2 and "give the policy once" in out.output


def test_against_the_writing_policy_every_record_is_reproduced(logged: Path) -> None:
    code, raw = replay(logged, "new", "--against", str(logged / "old"), "--format", "json")
    data = json.loads(raw)
    assert data["totals"]["baseline_mismatches"] == 0 and data["against"]
    # Against another policy as the baseline, the records it does not reproduce show.
    code, raw = replay(logged, "old", "--against", str(logged / "new"), "--format", "json")
    data = json.loads(raw)
    assert data["totals"]["baseline_mismatches"] > 0
    code, text = replay(logged, "old", "--against", str(logged / "old"))
    assert code == 0 and "0 records it does not reproduce" in text


def test_loosening_fails_the_gate_unless_allowed(logged: Path) -> None:
    records = [r for r in audit.read(logged / "log.jsonl") if r.get("event") is None]
    ceo = f"workload.agentpolicy:{workload.POLICY.splitlines().index(CEO) + 1}"
    # By hand: a call denied by the CEO rule alone is allowed once that rule cannot fire;
    # one also denied for another reason (a budget, a label) stays denied, one rule less.
    alone = ["never e-mail the CEO"]
    freed = sum(1 for r in records if ceo in r["rules"] and r["reasons"] == alone)
    fewer = sum(1 for r in records if ceo in r["rules"]) - freed
    assert freed > 0 and fewer > 0
    code, raw = replay(logged, "loose", "--format", "json")
    data = json.loads(raw)
    assert code == 1
    assert data["matrix"].get("deny->allow") == freed
    assert data["totals"]["loosened"] == freed and data["totals"]["tightened"] == 0
    assert data["totals"]["changed_rules"] == fewer
    assert data["totals"]["changed"] == freed + fewer
    code, _ = replay(logged, "loose", "--allow-loosen")
    assert code == 0


def test_max_changed_fails_on_volume(logged: Path) -> None:
    code, raw = replay(logged, "new", "--format", "json")
    data = json.loads(raw)
    share = data["totals"]["changed"] * 100 / data["totals"]["replayed"]
    assert 1 < share < 99
    below, above = f"{int(share)}%", f"{int(share) + 1}"
    code, _ = replay(logged, "new", "--max-changed", below)
    assert code == 1
    assert replay(logged, "new", "--max-changed", above)[0] == 0
    # Loosening is judged on its own: a generous volume limit does not excuse it.
    assert replay(logged, "loose", "--max-changed", "100%")[0] == 1
    assert replay(logged, "loose", "--max-changed", "100%", "--allow-loosen")[0] == 0
    assert replay(logged, "old", "--max-changed", "0%")[0] == 0
    for bad in ("lots", "101%", "-1", "nan"):
        code, text = replay(logged, "new", "--max-changed", bad)
        assert code == 2 and "percentage" in text, (bad, text)


def test_usage_and_io_errors_exit_2(logged: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.agentpolicy"
    broken.write_text('policy "broken" version "1"\nallow tool\n')
    runner = CliRunner()
    log = str(logged / "log.jsonl")
    cases = [
        ["replay", str(tmp_path / "missing.jsonl"), "--policy", str(logged / "old")],
        ["replay", log, "--policy", str(tmp_path / "missing")],
        ["replay", log, "--policy", str(broken)],
        ["replay", log, "--policy", str(logged / "old"), "--against", str(broken)],
        ["replay", log, "--policy", str(logged / "old"), "--hash-key-file", str(tmp_path)],
        ["replay", str(tmp_path), "--policy", str(logged / "old")],
    ]
    for args in cases:
        assert runner.invoke(cli, args).exit_code == 2, args


def test_the_exit_codes_of_the_real_command(logged: Path) -> None:
    """The gate as CI runs it: a separate `charter replay` process."""

    def run(policy: str, *more: str) -> int:
        args = [
            sys.executable,
            "-m",
            "charter.cli",
            "replay",
            str(logged / "log.jsonl"),
            "--policy",
            str(logged / policy),
            "--hash-key-file",
            str(logged / "key"),
            *more,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, check=False).returncode

    assert run("old") == 0
    assert run("new") == 0
    assert run("new", "--max-changed", "0.5%") == 1
    assert run("loose") == 1
    assert run("loose", "--allow-loosen") == 0
    assert run("loose", "--max-changed", "x") == 2


TEAM = workload.POLICY + (
    'deny tool "crm.lookup" when agent.team == "support" because "no lookups by support"\n'
)


def test_a_path_the_log_never_captured_is_inconclusive_never_changed(
    logged: Path, tmp_path: Path
) -> None:
    """R-AC2: the logging policy reads `agent.id` only, so the blocks hold no `agent.team`;
    a candidate denying crm.lookup by team is inconclusive on exactly the crm.lookup calls
    (by hand: every such call sends a team) and unchanged elsewhere, none of it changed."""
    records = [r for r in audit.read(logged / "log.jsonl") if r.get("event") is None]
    lookups = sum(1 for r in records if r["tool"] == "crm.lookup" and r["stage"] == "tool_call")
    first = records[0]["tool"] == "crm.lookup" and records[0]["stage"] == "tool_call"
    assert lookups > 0
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "workload.agentpolicy").write_text(TEAM)
    code, raw = replay(logged, str(tmp_path / "team"), "--format", "json")
    data = json.loads(raw)
    assert code == 0
    totals = data["totals"]
    assert (totals["inconclusive"], totals["changed"], totals["unchanged"]) == (
        lookups,
        0,
        len(records) - lookups,
    )
    assert data["inconclusive_by_path"] == {"/request/agent/team": lookups}
    # A log cut from its head has lost the `reads` of its version: with the logging policy
    # given (`--against`) the capture is known again and the counts are the same.
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (logged / "log.jsonl").read_text().splitlines(keepends=True)
    head = [i for i, line in enumerate(lines) if '"reads":' in line]
    assert len(head) == 1
    (cut / "log.jsonl").write_text("".join(lines[head[0] + 1 :]))
    (cut / "key").write_bytes(KEY)
    team = str(tmp_path / "team")
    code, raw = replay(cut, team, "--against", str(logged / "old"), "--format", "json")
    again = json.loads(raw)["totals"]
    assert (again["inconclusive"], again["changed"]) == (lookups - first, 0)
    # Without it, only what the blocks show is known: more records are inconclusive, and
    # still none of them is counted as changed.
    code, raw = replay(cut, team, "--format", "json")
    unknown = json.loads(raw)["totals"]
    assert unknown["changed"] == 0 and unknown["inconclusive"] >= lookups
    assert unknown["inconclusive"] + unknown["unchanged"] == unknown["replayed"]


MAIL_LIMIT = workload.POLICY + (
    'limit calls(tool "email.send") <= 1 per 1h per agent.id because "one e-mail an hour"\n'
)


def test_a_counter_the_log_never_loaded_is_inconclusive_never_changed(
    logged: Path, tmp_path: Path
) -> None:
    """R-S2: a new limit has a counter of its own (ids come from content), which the
    logging Guard never loaded: on exactly the e-mail calls the snapshot cannot say how
    many there were, so those records are inconclusive by the counter, none changed."""
    records = [r for r in audit.read(logged / "log.jsonl") if r.get("event") is None]
    mails = sum(1 for r in records if r["tool"] == "email.send" and r["stage"] == "tool_call")
    assert mails > 0
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "workload.agentpolicy").write_text(MAIL_LIMIT)
    code, raw = replay(logged, str(tmp_path / "mail"), "--format", "json")
    data = json.loads(raw)
    totals = data["totals"]
    assert (totals["inconclusive"], totals["changed"], totals["unchanged"]) == (
        mails,
        0,
        len(records) - mails,
    )
    ((pointer, n),) = data["inconclusive_by_path"].items()
    assert pointer.startswith("/snapshot/counters/calls:1h:") and n == mails


FETCH_FIRST = workload.POLICY + (
    'deny tool "email.send" unless previously call "web.fetch" within 1h because "fetch first"\n'
)


def test_a_history_the_log_never_loaded_is_inconclusive_never_changed(
    logged: Path, tmp_path: Path
) -> None:
    """R-S2: the logging Guard loads the history of crm.lookup for refunds only; a
    candidate asking `previously call "web.fetch"` on e-mails finds no web.fetch history
    in those snapshots — not "no calls" (a loaded history with none is an empty list) but
    not loaded: inconclusive on exactly the e-mail calls, none changed."""
    records = [r for r in audit.read(logged / "log.jsonl") if r.get("event") is None]
    mails = sum(1 for r in records if r["tool"] == "email.send" and r["stage"] == "tool_call")
    refunds = [r for r in records if r["tool"] == "refund.create" and r["stage"] == "tool_call"]
    assert all("crm.lookup" in r["replay"]["snapshot"]["history"] for r in refunds)
    (tmp_path / "fetch").mkdir()
    (tmp_path / "fetch" / "workload.agentpolicy").write_text(FETCH_FIRST)
    code, raw = replay(logged, str(tmp_path / "fetch"), "--format", "json")
    data = json.loads(raw)
    totals = data["totals"]
    assert (totals["inconclusive"], totals["changed"]) == (mails, 0)
    assert data["inconclusive_by_path"] == {"/snapshot/history/web.fetch": mails}
