"""`charter replay LOG --policy NEW` (issue 16, Part C: R-AC1, R-AC2): a Guard-written log
replayed against its own policy is 100 % unchanged; against a known edit the transition
table holds exactly the hand-computed flips; inconclusive records are never changes."""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("replay-report")
    workload.write_log(d / "log.jsonl", 3_000)
    (d / "key").write_bytes(KEY)
    (d / "old").mkdir()
    (d / "old" / "workload.agentpolicy").write_text(workload.POLICY)
    (d / "new").mkdir()
    (d / "new" / "workload.agentpolicy").write_text(NO_WEB)
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
    return out.exit_code, out.output


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
    assert code == 1
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
