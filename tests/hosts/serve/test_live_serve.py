"""`charter serve --state-dir`: the sidecar over a `Live` handle on a watched directory
(issue 16, L-H3): `/health`, `/health?strict`, `/status`, kill switches applied to every
decision, and `charter status --url` / `charter rollback` against it, over a real uvicorn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from click.testing import CliRunner
from servekit import serving

from charter.cli.main import cli
from charter.control import watch
from charter.hosts.serve import Sidecar
from charter.runtime.live import Live
from charter.runtime.live_status import LiveStatus
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
CALL = {"tool": "kb.search", "session": {"id": "s-live"}, "args": {"q": "x"}}


def put(path: Path, text: str) -> None:
    """Replace a watched file whole (tmp+rename): a watcher never reads half of it, so
    every version the test makes is one the test meant (in-place writes are test_live_reload's)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def version(tag: str, effect: str = "allow") -> str:
    return (
        f'policy "kb"\ndefault deny\ntool "kb.search" (q: str)\n'
        f'@id("{tag}-search")\n{effect} tool "kb.search"\n'
    )


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    (d / "kb.agentpolicy").write_text(version("a"))
    return d


@pytest.fixture
def live(policy_dir: Path, tmp_path: Path) -> Iterator[Live]:
    handle = watch(
        policy_dir,
        state_dir=tmp_path / "state",
        properties=0,
        step_ms=10,
        debounce_ms=100,
        poll_interval_s=0.2,
        stale_after_s=0.5,
    )
    yield handle
    handle.close()


def test_health_strict_and_status_follow_the_live_state(
    live: Live, policy_dir: Path, tmp_path: Path
) -> None:
    sidecar = Sidecar(live.guard, live=live)
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        assert http.get("/health").json() == {"state": "READY", "digest": live.policy.digest}
        assert http.get("/health?strict").status_code == 200
        status = msgspec.json.decode(http.get("/status").content, type=LiveStatus)
        assert status.state == "READY" and status.active is not None
        assert status.active.digest == live.policy.digest
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["a-search"]
        same = http.post("/v1/reload").json()  # the watcher's gate, at once: nothing new
        assert same["reloaded"] is True and same["changed"] is False

        # A broken edit: still serving (200), not READY (strict 503), the reason in /status.
        put(policy_dir / "kb.agentpolicy", 'policy "kb"\nallow tool "kb.search" when')
        wait_for(lambda: http.get("/health?strict").status_code == 503, "strict health fails")
        health = http.get("/health")
        assert health.status_code == 200 and health.json()["state"] == "DEGRADED"
        body = http.get("/status").json()
        assert body["last_attempt"]["ok"] is False
        assert body["last_attempt"]["stage_failed"] == "compile"
        shown = CliRunner().invoke(cli, ["status", "--url", url])
        assert shown.exit_code == 1 and "state      DEGRADED" in shown.output
        assert "failed at compile" in shown.output
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["a-search"]

        # The fix activates; every route follows the new version.
        put(policy_dir / "kb.agentpolicy", version("b"))
        wait_for(lambda: http.get("/health?strict").status_code == 200, "READY after the fix")
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["b-search"]
        wait_for(
            lambda: http.get("/v1/status").json()["policy"]["digest"] == live.policy.digest,
            "/v1/status follows the swap",
        )
        metrics = http.get("/metrics").text
        assert 'charter_policy_reloads_total{result="failed"} 1' in metrics
        assert 'charter_policy_reloads_total{result="ok"} 1' in metrics

        # Kill switches apply to Guard and stateless decisions alike.
        sid = live.kill("kb.*", "incident 7")
        for path in ("/v1/decide", "/v1/decide?stateless=1", "/v1/check"):
            answer = http.post(path, json=CALL).json()
            assert answer["effect"] == "deny" and answer["rules"] == [f"kill:{sid}"], path
        live.unkill(sid)
        assert http.post("/v1/decide", json=CALL).json()["effect"] == "allow"

        # The source gone longer than stale_after_s: STALE, strict 503, still deciding.
        shutil.move(policy_dir, tmp_path / "moved")
        wait_for(lambda: http.get("/health").json()["state"] == "STALE", "STALE")
        assert http.get("/health?strict").status_code == 503
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["b-search"]


def test_a_fixed_policy_sidecar_reports_ready(policy_dir: Path) -> None:
    import charter
    from charter.runtime.guard import Guard

    guard = Guard(charter.load(policy_dir))
    with serving(Sidecar(guard, source=str(policy_dir)).app()) as url:
        assert httpx.get(url + "/health?strict").status_code == 200
        status = msgspec.json.decode(httpx.get(url + "/status").content, type=LiveStatus)
        assert status.state == "READY" and status.active is not None
        assert status.active.digest == guard.policy.info.digest
        assert CliRunner().invoke(cli, ["status", "--url", url]).exit_code == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_command_serves_live_and_takes_a_cli_rollback(policy_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    control = tmp_path / "control.json"
    args = [
        *("serve", str(policy_dir), "--listen", f"127.0.0.1:{port}"),
        *("--state-dir", str(state), "--control", str(control)),
    ]
    assert (
        CliRunner().invoke(cli, [*args, "--workers", "2", "--state", "sqlite:x.db"]).exit_code == 2
    )
    assert CliRunner().invoke(cli, ["serve", str(policy_dir), "--control", "x"]).exit_code == 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "charter.cli.main", *args], env=env, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"

    def rules() -> list[str]:
        answer: list[str] = httpx.post(url + "/v1/decide", json=CALL).json()["rules"]
        return answer

    def up() -> bool:
        try:
            return httpx.get(url + "/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, "the sidecar up")
        first = httpx.get(url + "/status").json()["active"]["digest"]
        assert rules() == ["a-search"]
        put(policy_dir / "kb.agentpolicy", version("b"))
        wait_for(lambda: rules() == ["b-search"], "the edit served")
        back = CliRunner().invoke(cli, ["rollback", "--state-dir", str(state), "--actor", "ops"])
        assert back.exit_code == 0, back.output
        assert rules() == ["a-search"]
        status = httpx.get(url + "/status").json()
        assert status["pinned"] == first and status["active"]["digest"] == first
        assert CliRunner().invoke(cli, ["unpin", "--state-dir", str(state)]).exit_code == 0
        assert rules() == ["b-search"]
        # A kill switch written to the control file reaches the running sidecar.
        killed = CliRunner().invoke(
            cli, ["kill", "kb.*", "--control", str(control), "--reason", "incident 9"]
        )
        assert killed.exit_code == 0, killed.output
        sid = killed.output.strip()
        wait_for(lambda: rules() == [f"kill:{sid}"], "the kill switch applied")
        listed = CliRunner().invoke(cli, ["kill", "--list", "--control", str(control)])
        assert [s["id"] for s in json.loads(listed.output)["switches"]] == [sid]
        assert CliRunner().invoke(cli, ["unkill", sid, "--control", str(control)]).exit_code == 0
        wait_for(lambda: rules() == ["b-search"], "the switch removed")
        both = ["kill", "x", "--redis", "redis://x", "--control", "y"]
        assert CliRunner().invoke(cli, both).exit_code == 2
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_kill_switches_apply_to_hook_events_too(tmp_path: Path) -> None:
    """A live sidecar answers `/v1/hooks/{agent}` through the handle: a kill switch stops a
    coding agent's tool as it stops `/v1/decide`."""
    hosts = ROOT / "tests" / "hosts"
    live = watch(hosts / "policy", state_dir=tmp_path / "state", properties=0, start=False)
    body = (hosts / "samples" / "claude-code" / "pre_allow.json").read_bytes()
    with serving(Sidecar(live.guard, live=live).app()) as url, httpx.Client(base_url=url) as http:
        path = "/v1/hooks/claude-code"
        assert http.post(path, content=body).json() == {}  # allowed by the policy
        sid = live.kill("shell.*", "incident 11")
        answer = http.post(path, content=body).json()["hookSpecificOutput"]
        assert answer["permissionDecision"] == "deny"
        assert f"kill switch {sid}: incident 11" in answer["permissionDecisionReason"]
    live.close()
