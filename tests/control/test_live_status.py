"""`Live.status()` as a `LiveStatus`, events, staleness and rollback on the handle (issue
16: L-H1, L-H2, L-K3, L-U1), with a real `watchfiles` watcher on a real directory."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import msgspec
import pytest

import charter
from charter.control import LiveError, watch
from charter.runtime.changes import read_changes
from charter.runtime.live import CanaryGuard, KillSwitch, Live
from charter.runtime.live_file import FileControl
from charter.runtime.live_status import LiveEvent, LiveStatus
from tests.control.test_live_reload import X, put, version, wait_for


class Events:
    """Collects events, with the thread each was delivered on."""

    def __init__(self) -> None:
        self.seen: list[LiveEvent] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, event: LiveEvent) -> None:
        with self.lock:
            self.seen.append(event)
            self.threads.add(threading.current_thread().name)

    def kinds(self) -> list[str]:
        with self.lock:
            return [e.kind for e in self.seen]


def live_on(d: Path, state: Path, **kw: object) -> Live:
    return watch(
        d, state_dir=state, properties=0, step_ms=10, debounce_ms=100, poll_interval_s=0.2, **kw
    )  # type: ignore[arg-type]


def test_status_is_a_struct_whose_json_reads_back(policy_dir: Path, tmp_path: Path) -> None:
    with live_on(policy_dir, tmp_path / "state", start=False) as live:
        status = live.status()
        assert isinstance(status, LiveStatus) and status.state == "READY"
        back = msgspec.json.decode(msgspec.json.encode(status), type=LiveStatus)
        assert back == status
        assert status.active is not None and status.active.digest == live.policy.digest
        assert status.last_attempt is not None and status.last_attempt.ok
        assert [h.digest for h in status.history] == [live.policy.digest]
        assert status.watcher is not None and status.watcher.path == str(policy_dir)
        assert status.pinned is None and status.unreachable == []
    assert live.status().state == "NOT_READY"  # closed: nothing follows the source any more


def test_events_name_each_change_and_never_run_on_the_deciding_thread(
    policy_dir: Path, tmp_path: Path
) -> None:
    events = Events()
    live = live_on(policy_dir, tmp_path / "state", start=False, on_event=events)
    first = live.active.digest
    (policy_dir / "policy.agentpolicy").write_text(version("b"))
    live.watcher.reload()
    second = live.active.digest
    (policy_dir / "policy.agentpolicy").write_text('policy "p"\nallow tool "x" when')
    live.watcher.reload()
    sid = live.kill("y", "incident")
    live.unkill(sid)
    # A guarded canary whose candidate loosens aborts on the decision path; the listener
    # must not run there.
    loosening = charter.compile('policy "p"\ndefault allow\ntool "x" (n: int)\ntool "y" (n: int)\n')
    live.canary(loosening, 100, guard=CanaryGuard())
    assert live.decide({"tool": "y", "args": {"n": 1}, "session": {"id": "s1"}}).allowed
    assert live.control.canary is None  # aborted
    live.watcher.rollback(to=first)
    assert live.events.drain()
    kinds = events.kinds()
    assert kinds[0] == "READY"
    assert kinds.count("CONFIGURATION_CHANGED") == 2  # the reload, the rollback
    assert kinds.count("ERROR") == 1 and kinds.count("CANARY_ABORTED") == 1
    assert kinds.count("CONTROL_CHANGED") == 3  # kill, unkill, canary
    changed = next(e for e in events.seen if e.kind == "CONFIGURATION_CHANGED")
    assert changed.from_digest == first and changed.to_digest == second
    assert changed.diff is not None and "b-x" in changed.diff["rules_added"]
    assert "a-x" in changed.diff["rules_removed"]
    error = next(e for e in events.seen if e.kind == "ERROR")
    assert error.diagnostics and error.reason.startswith("gate failed at compile")
    assert threading.current_thread().name not in events.threads
    assert events.threads == {"charter-live-events"}
    live.close()


def test_a_listener_that_raises_stops_neither_events_nor_the_watcher(
    policy_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = Events()

    def broken(event: LiveEvent) -> None:
        raise RuntimeError("listener bug")

    live = live_on(policy_dir, tmp_path / "state", on_event=broken)
    live.on_event(events)
    put(policy_dir / "policy.agentpolicy", version("b"))
    wait_for(lambda: live.decide(X).rules == ("b-x", "b-w"), "the first edit")
    put(policy_dir / "policy.agentpolicy", version("c"))
    wait_for(lambda: live.decide(X).rules == ("c-x", "c-w"), "the edit after a failed listener")
    assert live.events.drain()
    assert events.kinds().count("CONFIGURATION_CHANGED") == 2
    assert "listener bug" in caplog.text
    live.close()


def test_an_unreachable_source_is_stale_then_ready_again(policy_dir: Path, tmp_path: Path) -> None:
    events = Events()
    state = tmp_path / "state"
    live = live_on(policy_dir, state, on_event=events, stale_after_s=0.3)
    digest = live.active.digest
    moved = tmp_path / "moved"
    shutil.move(policy_dir, moved)
    wait_for(lambda: live.status().state == "STALE", "STALE after the source vanished")
    wait_for(lambda: "STALE" in events.kinds(), "a STALE event")
    status = live.status()
    assert [u.what for u in status.unreachable] == ["source"]
    assert live.decide(X).rules == ("a-x", "a-w") and live.active.digest == digest  # kept
    shutil.move(moved, policy_dir)
    wait_for(lambda: live.status().state == "READY", "READY once the source is back")
    wait_for(lambda: events.kinds()[-1:] == ["READY"], "a READY event")
    live.close()
    # One record for the vanished source, not one per poll.
    rejects = [c for c in read_changes(state / "changes.jsonl") if c["action"] == "reject"]
    assert len(rejects) == 1 and rejects[0]["stage_failed"] == "read"


def test_an_unreadable_control_file_is_stale(tmp_path: Path) -> None:
    events = Events()
    live = Live(charter.compile(version("a")), on_event=events, stale_after_s=0.3)
    path = tmp_path / "control.json"
    control = FileControl(path, poll_interval_s=0.1).attach(live)
    control.kill(KillSwitch("k1", ("y",), "test"))
    wait_for(lambda: len(live.switches) == 1, "the switch applied")
    path.write_text("{torn")
    wait_for(lambda: live.status().state == "STALE", "STALE with the control file unreadable")
    assert [u.what for u in live.status().unreachable] == ["control"]
    assert len(live.switches) == 1  # what was applied holds
    path.unlink()
    wait_for(lambda: live.status().state == "READY", "READY once the file reads again")
    live.close()


def test_rollback_and_unpin_on_the_handle_are_one_record_each(
    policy_dir: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    live = live_on(policy_dir, state, start=False)
    first = live.active.digest
    (policy_dir / "policy.agentpolicy").write_text(version("b"))
    live.watcher.reload()
    second = live.active.digest
    assert live.rollback(actor="oncall", reason="bad deploy") == first
    status = live.status()
    assert status.pinned == first and status.state == "READY"
    assert live.decide(X).rules == ("a-x", "a-w")
    live.unpin(actor="oncall")
    assert live.active.digest == second and live.status().pinned is None
    actions = [(c["action"], c.get("actor")) for c in read_changes(state / "changes.jsonl")]
    assert actions == [
        ("activate", "file:" + str(policy_dir)),
        ("activate", "file:" + str(policy_dir)),
        ("rollback", "oncall"),
        ("unpin", "oncall"),
        ("activate", "file:" + str(policy_dir)),
    ]
    live.close()
    with pytest.raises(LiveError, match="watched source"):
        Live(charter.compile(version("a"))).rollback()


def test_bad_stale_after_is_refused() -> None:
    with pytest.raises(ValueError, match="stale_after_s"):
        Live(charter.compile(version("a")), stale_after_s=0)


def test_switches_from_the_control_source_are_one_change_record_each(tmp_path: Path) -> None:
    changes = tmp_path / "changes.jsonl"
    live = Live(charter.compile(version("a")), changes=changes)
    path = tmp_path / "control.json"
    FileControl(path, poll_interval_s=0.1).attach(live)
    writer = FileControl(path)  # another process's `charter kill --control`
    writer.kill(KillSwitch("k1", ("y",), "incident", actor="alice"))
    wait_for(lambda: [s.id for s in live.switches] == ["k1"], "the switch applied")
    own = live.kill("x", "mine", actor="bob")  # made here, then carried back by the file
    wait_for(lambda: own in {s.id for s in writer.read()[1]}, "this handle's switch written")
    writer.unkill("k1")
    wait_for(lambda: [s.id for s in live.switches] == [own], "the switch removed")
    live.close()
    rows = [(c["action"], c.get("actor")) for c in read_changes(changes)]
    assert rows == [
        ("activate", "api"),
        ("kill", "alice"),
        ("kill", "bob"),
        ("unkill", f"file:{path}"),
    ]


def test_an_unkill_during_a_sync_is_not_undone_by_the_sync(tmp_path: Path) -> None:
    """The sync pushes switches made here that the source lacks; an operator's unkill that
    lands between the sync's read and that push must win (it used to be written back)."""
    live = Live(charter.compile(version("a")))
    path = tmp_path / "control.json"

    class Racing(FileControl):
        armed = False
        race: threading.Thread | None = None

        def read(self) -> tuple[int, list[KillSwitch]]:
            seq, switches = super().read()
            return seq, [s for s in switches if s.id != "k9"]  # read before the kill landed

        def kill(self, switch: KillSwitch) -> int:
            if self.armed and self.race is None:
                # The operator's unkill, from another thread, right as the push writes.
                self.race = threading.Thread(target=live.unkill, args=("k9",))
                self.race.start()
                self.race.join(0.5)  # the push holds the lock: it waits for this write
            return super().kill(switch)

    control = Racing(path).attach(live, start=False)
    live.kill("y", "incident", switch_id="k9")
    control.armed = True
    control.sync()  # pushes k9 (the source "lacks" it) while the unkill races
    assert control.race is not None
    control.race.join(5)
    assert "k9" not in {s.id for s in FileControl(path).read()[1]}  # the unkill won
    assert live.switches == ()
    live.close()
