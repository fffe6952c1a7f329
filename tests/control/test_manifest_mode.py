"""Manifest mode for a watched directory (issue 16, L-G6): with `require_manifest=True` a
half-copied directory is "not ready" — neither gated nor rejected, the active version
serving — until `.charter-manifest.json`, written last, lists exactly its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.control import LiveError, watch
from charter.control.manifest import DIR_MANIFEST, write_manifest
from charter.runtime.changes import read_changes
from tests.waiting import wait_for

TESTS = 'test "x is allowed" {\n  call "x" {n: 1}\n  expect allow\n}\n'
X = {"tool": "x", "args": {"n": 1}}


def write_version(where: Path, tag: str) -> None:
    (where / "policy.agentpolicy").write_text(
        f'policy "p"\ndefault deny\ntool "x" (n: int)\n@id("{tag}")\nallow tool "x"\n'
    )
    (where / "policy_test.agentpolicy").write_text(TESTS + f"# {tag}\n")


def test_a_half_copied_directory_is_not_ready_until_its_manifest_matches(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    write_version(policy, "a")
    write_manifest(policy, builder="deploy")
    live = watch(policy, state_dir=tmp_path / "state", require_manifest=True, start=False)
    assert live.decide(X).rules == ("a",)
    watcher = live.watcher

    # v2 copied one file at a time; the manifest still describes v1
    (policy / "policy.agentpolicy").write_text(
        (policy / "policy.agentpolicy").read_text().replace('"a"', '"b"')
    )
    assert watcher.reload() is None
    assert "policy.agentpolicy does not match its SHA-256" in watcher.not_ready
    (policy / "extra.agentpolicy").write_text('allow tool "y"\n')
    assert watcher.reload() is None and "extra.agentpolicy is present" in watcher.not_ready
    (policy / "extra.agentpolicy").unlink()
    assert live.decide(X).rules == ("a",) and watcher.reloads_rejected == 0
    assert live.status().state == "READY"  # not ready is not broken

    write_manifest(policy)  # the deploy's last step
    assert watcher.reload() is not None and watcher.not_ready is None
    assert live.decide(X).rules == ("b",)
    actions = [c["action"] for c in read_changes(tmp_path / "state" / "changes.jsonl")]
    assert actions == ["activate", "activate"]  # no reject on the way
    live.close()


def test_the_watcher_applies_a_deploy_when_the_manifest_arrives(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    write_version(policy, "a")
    write_manifest(policy)
    live = watch(policy, require_manifest=True, step_ms=10, debounce_ms=100, poll_interval_s=0.5)
    write_version(policy, "b")
    wait_for(lambda: live.watcher.not_ready is not None, "the copy seen as not ready")
    assert live.decide(X).rules == ("a",)
    write_manifest(policy)
    wait_for(lambda: live.decide(X).rules == ("b",), "the deploy going live")
    live.close()


def test_a_start_without_a_matching_manifest(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    write_version(policy, "a")
    with pytest.raises(LiveError, match=f"no {DIR_MANIFEST}"):
        watch(policy, require_manifest=True, start=False)
    write_manifest(policy)
    watch(policy, state_dir=tmp_path / "state", require_manifest=True, start=False).close()
    write_version(policy, "b")
    (policy / DIR_MANIFEST).write_text(json.dumps({"format": "nope"}))
    # not ready at start: the kept version serves until the manifest matches
    live = watch(policy, state_dir=tmp_path / "state", require_manifest=True, start=False)
    assert live.decide(X).rules == ("a",) and live.status().state == "DEGRADED"
    assert (
        live.watcher.reload() is None and "not a charter-dir-manifest/1" in live.watcher.not_ready
    )
    write_manifest(policy)
    assert live.watcher.reload() is not None and live.status().state == "READY"
    assert live.decide(X).rules == ("b",)
    live.close()


def test_charter_manifest_writes_the_manifest(tmp_path: Path) -> None:
    write_version(tmp_path, "a")
    out = CliRunner().invoke(cli, ["manifest", str(tmp_path), "--actor", "deploy-bot"])
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / DIR_MANIFEST).read_text())
    assert sorted(data["files"]) == ["policy.agentpolicy", "policy_test.agentpolicy"]
    assert data["builder"] == "deploy-bot"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert CliRunner().invoke(cli, ["manifest", str(empty)]).exit_code == 2
