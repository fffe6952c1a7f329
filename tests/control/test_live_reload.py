"""`Live` over a watched policy directory (issue 16, L-AC1 at test scale, L-AC6, L-AC9):
a real `watchfiles` watcher, edits of every kind while 8 threads decide, and restarts."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from charter.compiler.pipeline import compile_sources
from charter.control import LiveError, watch
from charter.language.source import Source
from charter.runtime.changes import read_changes
from charter.runtime.live import Live
from tests.waiting import wait_for

TESTS = """test "x is allowed" {
  call "x" {n: 1}
  expect allow
}
test "y is denied" {
  call "y" {n: 1}
  expect deny
}
"""
X = {"tool": "x", "args": {"n": 1}}
Y = {"tool": "y", "args": {"n": 1}}


def version(tag: str, x_effect: str = "allow") -> str:
    """A policy whose rule ids all start with `tag-`: a decision names its version."""
    return (
        f'policy "p"\ndefault deny\ntool "x" (n: int)\ntool "y" (n: int)\n'
        f'@id("{tag}-x")\n{x_effect} tool "x"\n'
        f'@id("{tag}-w")\nwarn tool "x" because "version {tag}"\n'
        f'@id("{tag}-y")\ndeny tool "y" because "version {tag}"\n'
    )


def digest_of(path: Path, text: str) -> str:
    compiled = compile_sources([Source(str(path), text)]).compiled
    assert compiled is not None
    return compiled.ir.digest


def put(path: Path, text: str) -> None:
    """Replace a watched file whole (tmp+rename): a watcher never reads half of it, so
    every version the test makes is one the test meant (in-place writes are tested here
    on their own)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def live_on(d: Path, state: Path, **kw: object) -> Live:
    return watch(
        d, state_dir=state, properties=0, step_ms=10, debounce_ms=200, poll_interval_s=0.2, **kw
    )  # type: ignore[arg-type]


def test_idle_live_is_the_active_policy_and_guard(policy_dir: Path, tmp_path: Path) -> None:
    with live_on(policy_dir, tmp_path / "state", start=False) as live:
        assert live.decide == live.policy.decide  # the same bound closure: no wrapper
        assert live.decide is live.active.decide
        assert live.check == live.guard.check
        assert live.decide(X).rules == ("a-x", "a-w")


def write_in_place(path: Path, text: str) -> None:
    with path.open("w") as f:
        f.write(text)


def write_by_rename(path: Path, text: str) -> None:
    tmp = path.with_name(".tmp-edit")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_half_then_rest(path: Path, text: str) -> None:
    """A slow writer: half a file (cut inside a string: it cannot compile), a pause long
    enough for the watcher to gate it, then the rest."""
    cut = text.index('"version') + 4
    with path.open("w") as f:
        f.write(text[:cut])
        f.flush()
        time.sleep(0.3)
        f.write(text[cut:])


def test_edits_under_load_serve_only_good_versions_never_mixed(
    policy_dir: Path, tmp_path: Path
) -> None:
    file = policy_dir / "policy.agentpolicy"
    live = live_on(policy_dir, tmp_path / "state")
    good = {"a": digest_of(file, version("a")), "b": digest_of(file, version("b"))}
    failing_tests = digest_of(file, version("c", x_effect="deny"))
    prefix = {d: tag for tag, d in good.items()}
    stop = threading.Event()
    seen: list[Counter[tuple[str, tuple[str, ...]]]] = []
    errors: list[str] = []

    def decide() -> None:
        mine: Counter[tuple[str, tuple[str, ...]]] = Counter()
        seen.append(mine)
        while not stop.is_set():
            for req in (X, Y):
                d = live.decide(req)
                assert d.policy is not None
                mine[(d.policy.digest, d.rules)] += 1
            time.sleep(0.0001)  # let the watcher's gate have the GIL now and then

    threads = [threading.Thread(target=decide) for _ in range(8)]
    for t in threads:
        t.start()
    writers = [write_in_place, write_by_rename, write_half_then_rest]
    good_edits = 0
    bad_edits = 0
    try:
        for i in range(12):
            tag = "b" if i % 2 == 0 else "a"
            writers[i % 3](file, version(tag))
            good_edits += 1
            wait_for(lambda t=tag: live.active.digest == good[t], f"edit {i} active")  # type: ignore[misc]
            rejected = live.watcher.reloads_rejected
            if i % 3 == 0:
                write_by_rename(file, version("c", x_effect="deny"))  # a failing test
            elif i % 3 == 1:
                write_by_rename(file, version("c")[:-5])  # truncated inside a string
            else:
                write_by_rename(file, version("c").replace("default deny", "default"))
            bad_edits += 1
            wait_for(
                lambda r=rejected: live.watcher.reloads_rejected > r,  # type: ignore[misc]
                f"bad edit {i} rejected",
            )
            assert live.active.digest == good[tag]  # the last known good stays
            assert live.watcher.status().state == "DEGRADED"
    finally:
        stop.set()
        for t in threads:
            t.join()
        live.close()
    total: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for c in seen:
        total.update(c)
    assert not errors
    assert sum(total.values()) > 0
    digests = {d for d, _ in total}
    assert digests <= set(good.values()), "a decision from a version that failed the gate"
    assert failing_tests not in digests
    for (d, rules), _n in total.items():
        assert rules and all(r.startswith(prefix[d] + "-") for r in rules), (d, rules)
    changes = list(read_changes(tmp_path / "state" / "changes.jsonl"))
    activations = [c for c in changes if c["action"] == "activate" and c.get("reason") != "start"]
    assert len(activations) == good_edits  # one record per change (L-AC9)
    rejects = [c for c in changes if c["action"] == "reject"]
    assert len(rejects) >= bad_edits
    assert {c["stage_failed"] for c in rejects} >= {"tests", "compile"}
    assert all(c["actor"] == f"file:{policy_dir}" for c in activations + rejects)


def test_a_rejected_version_is_logged_with_its_reason(
    policy_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = live_on(policy_dir, tmp_path / "state", start=False)
    (policy_dir / "policy.agentpolicy").write_text(version("c", x_effect="deny"))
    with caplog.at_level(logging.ERROR, logger="charter.live"):
        result = live.watcher.reload()
    assert result is not None and not result.ok and result.stage_failed == "tests"
    assert any("x is allowed" in line for line in result.diagnostics)
    assert "rejected" in caplog.text and "tests" in caplog.text
    assert live.decide(X).rules == ("a-x", "a-w")
    assert live.watcher.reload() is None  # the same sources are not gated again
    status = live.watcher.status()
    assert status.state == "DEGRADED" and status.last_attempt is not None
    assert status.last_attempt["stage_failed"] == "tests"
    live.close()


def test_restart_on_a_broken_source_serves_the_last_known_good(
    policy_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = live_on(policy_dir, state, start=False)
    good = first.active.digest
    first.close()
    (policy_dir / "policy.agentpolicy").write_text('policy "p"\nallow tool "x" when')
    again = live_on(policy_dir, state, start=False)
    assert again.active.digest == good
    assert again.watcher.status().state == "DEGRADED"
    status = again.status()
    assert status.state == "DEGRADED" and status.active is not None
    assert status.active.digest == good
    assert again.decide(X).rules == ("a-x", "a-w")
    again.close()
    with pytest.raises(LiveError, match="no last-known-good"):
        live_on(policy_dir, tmp_path / "empty-state", start=False)


def test_a_fixed_source_after_a_broken_start_activates(policy_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    live_on(policy_dir, state, start=False).close()
    (policy_dir / "policy.agentpolicy").write_text('policy "p"\nallow tool')
    live = live_on(policy_dir, state)
    try:
        write_by_rename(policy_dir / "policy.agentpolicy", version("b"))
        wait_for(lambda: live.decide(X).rules == ("b-x", "b-w"), "the fix active")
        assert live.watcher.status().state == "READY"
    finally:
        live.close()


def test_polling_backend_reloads_too(policy_dir: Path, tmp_path: Path) -> None:
    live = live_on(policy_dir, tmp_path / "state", force_polling=True)
    try:
        write_in_place(policy_dir / "policy.agentpolicy", version("b"))
        wait_for(lambda: live.decide(X).rules == ("b-x", "b-w"), "the edit active")
    finally:
        live.close()


def test_swaps_keep_budgets_and_reservations(tmp_path: Path) -> None:
    import charter

    text = (
        'policy "p"\ndefault allow\ntool "x" (n: int)\n'
        'limit calls(tool "x") <= 2 per session because "cap {}"\n'
    )
    live = Live(charter.compile(text.format(1)))
    req = {**X, "session": {"id": "s"}}
    assert live.check(req).allowed and live.check(req).allowed
    live.activate(charter.compile(text.format(2) + "\n# edited\n"))
    third = live.check(req)
    assert not third.allowed and third.reasons == ("cap 2",)  # the count carried over


def test_rollback_pins_a_kept_version_until_the_source_changes(
    policy_dir: Path, tmp_path: Path
) -> None:
    file = policy_dir / "policy.agentpolicy"
    live = live_on(policy_dir, tmp_path / "state", start=False)
    first = live.active.digest
    file.write_text(version("b"))
    assert live.watcher.reload() is not None and live.decide(X).rules == ("b-x", "b-w")
    second = live.active.digest
    assert live.watcher.rollback(actor="oncall") == first
    assert live.decide(X).rules == ("a-x", "a-w")
    assert live.watcher.reload() is None  # pinned: the source rolled back from stays off
    live.watcher.unpin()
    assert live.active.digest == second  # unpinned: the source is gated and active again
    assert live.watcher.rollback(to=first) == first
    file.write_text(version("b") + "# a new edit\n")
    assert live.watcher.reload() is not None  # a changed source ends the pin
    assert live.decide(X).rules == ("b-x", "b-w") and live.watcher.pinned is None
    rolled = [
        c
        for c in read_changes(tmp_path / "state" / "changes.jsonl")
        if c.get("reason") == "rollback"
    ]
    assert len(rolled) == 2 and rolled[0]["actor"] == "oncall"
    with pytest.raises(LiveError, match="no kept version"):
        live.watcher.rollback(to="0000000000000000")
    live.close()
