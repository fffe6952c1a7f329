"""`charter serve` over a real uvicorn on loopback: every endpoint, bad input, approvals by
API, and the example corpus giving the decisions `Policy.decide` and `Guard.check` give."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servekit import ALICE, BOB, EXAMPLES, serving

import charter
from charter.hosts.serve import Sidecar
from charter.runtime.audit import read as read_log
from charter.runtime.guard import Guard
from charter.runtime.state.base import StoreError
from charter.runtime.state.memory import MemoryStore
from tests.redis_server import spawn_redis

FOLDERS = sorted(p for p in EXAMPLES.iterdir() if (p / "requests").is_dir())
REFUND = {
    "stage": "tool_call",
    "agent": {"id": "sup-1", "team": "support"},
    "user": {"id": "u-1"},
    "session": {"id": "s-approve", "cost_usd": 0.1},
    "tool": "refund.create",
    "args": {"amount": 250, "currency": "EUR", "order_id": "o-2"},
}


def _requests(folder: Path) -> list[Path]:
    return sorted((folder / "requests").glob("*.json"))


def _strip(answer: bytes) -> tuple[bytes, dict[str, Any]]:
    """The decision bytes of an answer, and the keys the sidecar added after them."""
    body = json.loads(answer)
    extra = {k: body.pop(k) for k in ("decision_id", "ticket") if k in body}
    cut = answer.rindex(b',"decision_id":')
    return answer[:cut] + b"}", extra


@pytest.fixture(scope="module")
def corpus() -> Iterator[dict[Path, str]]:
    """One sidecar per example folder (memory state), each on its own port."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        urls = {}
        for folder in FOLDERS:
            guard = Guard(charter.load(folder))
            urls[folder] = stack.enter_context(serving(Sidecar(guard).app()))
        yield urls


# ── the corpus ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_stateless_decide_is_policy_decide_byte_for_byte(
    corpus: dict[Path, str], folder: Path
) -> None:
    policy = charter.load(folder)
    with httpx.Client(base_url=corpus[folder]) as http:
        for path in _requests(folder):
            raw = path.read_bytes()
            r = http.post(
                "/v1/decide?stateless=1", content=raw, headers={"content-type": "application/json"}
            )
            assert r.status_code == 200, path
            decision, extra = _strip(r.content)
            assert decision == policy.decide(raw).to_json(), path.name
            assert len(extra["decision_id"]) == 32


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_stateful_decide_is_guard_check(corpus: dict[Path, str], folder: Path) -> None:
    """The sidecar's Guard and a Guard in this process, fed the same requests in the same
    order, decide the same (effect, rules, reasons, approvers, redactions)."""
    local = Guard(charter.load(folder))
    with httpx.Client(base_url=corpus[folder]) as http:
        for path in _requests(folder):
            raw = path.read_bytes()
            r = http.post("/v1/check", content=raw)
            got = json.loads(r.content)
            want = local.check(raw).to_dict()
            for key in ("effect", "allowed", "rules", "reasons", "approvers", "redactions"):
                assert got[key] == json.loads(json.dumps(want[key], default=str)), (path, key)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_batch_decides_in_order(corpus: dict[Path, str], folder: Path) -> None:
    policy = charter.load(folder)
    paths = _requests(folder)
    items = [json.loads(p.read_bytes()) for p in paths]
    with httpx.Client(base_url=corpus[folder]) as http:
        r = http.post("/v1/decide/batch?stateless=1", json={"requests": items})
    assert r.status_code == 200
    got = r.json()["decisions"]
    assert len(got) == len(paths)
    for path, answer in zip(paths, got, strict=True):
        want = policy.decide(path.read_bytes()).to_dict()
        assert (answer["effect"], answer["rules"]) == (want["effect"], list(want["rules"]))


def test_opa_shaped_query(corpus: dict[Path, str]) -> None:
    folder = EXAMPLES / "support"
    raw = (folder / "requests" / "04-refund-needs-approval.json").read_text()
    # curl -d sends application/x-www-form-urlencoded; OPA clients send JSON
    r = httpx.post(
        corpus[folder] + "/v1/data/charter/decision",
        content='{"input": ' + raw + "}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["result"]["effect"] == "require_approval"
    assert body["result"]["approvers"] == ["finance"]
    assert len(body["decision_id"]) == 32


# ── bad input ────────────────────────────────────────────────────────────────


def test_undecidable_requests_are_200_denies(support: tuple[str, Sidecar]) -> None:
    url, _ = support
    with httpx.Client(base_url=url) as http:
        for body in (b"{not json", b"[1, 2]", b'{"tool": 7}', b""):
            for path in ("/v1/decide", "/v1/decide?stateless=1", "/v1/check"):
                r = http.post(path, content=body, headers={"content-type": "application/json"})
                assert r.status_code == 200, (path, body)
                d = r.json()
                assert d["effect"] == "deny" and d["allowed"] is False, (path, body)
                assert d["reasons"], (path, body)
        r = http.post("/v1/decide", json={"tool": 7})
        assert "tool" in r.json()["reasons"][0]  # the reason names the field


def test_http_errors_name_the_problem(support: tuple[str, Sidecar]) -> None:
    url, _ = support
    with httpx.Client(base_url=url) as http:
        r = http.post("/v1/decide", content=b"{}", headers={"content-type": "text/plain"})
        assert r.status_code == 415 and "content-type" in r.json()["message"]
        big = b'{"tool": "kb.search", "args": {"q": "' + b"x" * 70_000 + b'"}}'
        r = http.post("/v1/decide", content=big)
        assert r.status_code == 413 and r.json()["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
            for _ in range(80):
                yield b" " * 1024

        r = http.post("/v1/decide", content=chunks())
        assert r.status_code == 413
        r = http.post("/v1/settle", content=b"nope")
        assert r.status_code == 400 and r.json()["code"] == "invalid_parameter"
        r = http.post("/v1/settle", json={"cost_usd": 1})
        assert r.status_code == 400 and "reservation" in r.json()["message"]
        r = http.post("/v1/settle", json={"reservation": "r", "tokens": "many"})
        assert r.status_code == 400 and "tokens" in r.json()["message"]
        r = http.post("/v1/decide/batch", json={"requests": {"tool": "x"}})
        assert r.status_code == 400 and "requests" in r.json()["message"]
        r = http.post("/v1/decide/batch", json={"requests": [{}] * 1001})
        assert r.status_code == 400 and "1000" in r.json()["message"]
        r = http.post("/v1/data/charter/decision", json={"query": {}})
        assert r.status_code == 400 and "input" in r.json()["message"]
        r = http.get("/v1/approvals")
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        r = http.get("/v1/approvals", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = http.get("/v1/approvals?state=odd", headers={"authorization": f"Bearer {ALICE}"})
        assert r.status_code == 400 and "state" in r.json()["message"]
        r = http.post(
            "/v1/approvals/nope/grant", json={}, headers={"authorization": f"Bearer {ALICE}"}
        )
        assert r.status_code == 404 and "nope" in r.json()["message"]
        r = http.post(
            "/v1/approve", json={"group": "finance"}, headers={"authorization": f"Bearer {ALICE}"}
        )
        assert r.status_code == 400 and "action" in r.json()["message"]


# ── settle, release, approve ─────────────────────────────────────────────────


RATE = """policy "serve-rate"
default deny
@id("kb-rate")
allow tool "kb.search"
@id("kb-limit")
limit calls(tool "kb.search") <= 2 per 1h because "two searches an hour"
"""


def test_settle_and_release(tmp_path: Path) -> None:
    (tmp_path / "p.agentpolicy").write_text(RATE)
    sidecar = Sidecar(Guard(charter.load(tmp_path)))
    call = {"tool": "kb.search", "session": {"id": "s-rate"}, "args": {"q": "x"}}
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        d = http.post("/v1/decide", json=call).json()
        assert d["effect"] == "allow" and d["reservation"]
        r = http.post("/v1/settle", json={"reservation": d["reservation"], "cost_usd": 0.05})
        assert r.status_code == 200 and r.json() == {"ok": True}
        d2 = http.post("/v1/decide", json=call).json()
        r = http.post("/v1/release", json={"reservation": d2["reservation"]})
        assert r.status_code == 200 and r.json() == {"ok": True}
        # the released call gave its slot back: one more fits, then the limit denies
        assert http.post("/v1/decide", json=call).json()["effect"] == "allow"
        over = http.post("/v1/decide", json=call).json()
        assert over["effect"] == "deny" and over["reasons"] == ["two searches an hour"]
        metrics = http.get("/metrics").text
    assert 'charter_reservations_total{result="settled"} 1' in metrics
    assert 'charter_reservations_total{result="released"} 1' in metrics


def test_approve_endpoint_mints_a_grant_for_the_decision(support: tuple[str, Sidecar]) -> None:
    url, _ = support
    request = {**REFUND, "session": {"id": "s-mint", "cost_usd": 0.1}}
    with httpx.Client(base_url=url) as http:
        d = http.post("/v1/decide", json=request).json()
        assert d["effect"] == "require_approval" and d["action"]
        body = {"decision": d, "group": "finance", "ttl": 60}
        r = http.post("/v1/approve", json=body, headers={"authorization": f"Bearer {BOB}"})
        assert r.status_code == 403  # bob approves for security, not finance
        r = http.post("/v1/approve", json=body, headers={"authorization": f"Bearer {ALICE}"})
        assert r.status_code == 200, r.text
        grant = r.json()["grant"]
        assert grant.startswith("cg1.")
        again = http.post("/v1/decide", json={**request, "approvals": [grant]}).json()
        assert again["effect"] == "allow", again


def test_approval_round_trip_over_the_api(support: tuple[str, Sidecar], tmp_path: Path) -> None:
    url, _ = support
    alice = {"authorization": f"Bearer {ALICE}"}
    bob = {"authorization": f"Bearer {BOB}"}
    with httpx.Client(base_url=url) as http:
        d = http.post("/v1/decide", json=REFUND).json()
        assert d["effect"] == "require_approval"
        ticket = d["ticket"]
        assert (
            ticket["approvers"] == ["finance"] and ticket["inbox"] == f"/approvals/{ticket['id']}"
        )
        # the same call again finds the same ticket
        assert http.post("/v1/decide", json=REFUND).json()["ticket"]["id"] == ticket["id"]
        listed = http.get("/v1/approvals", headers=alice).json()
        assert [t["id"] for t in listed["approvals"]] == [ticket["id"]]
        shown = listed["approvals"][0]
        assert shown["tool"] == "refund.create" and shown["rules"] == [
            "refund-allow",
            "refund-approval",
        ]
        assert "grant" not in shown
        assert http.get("/v1/approvals", headers=bob).json()["approvals"] == []
        r = http.post(f"/v1/approvals/{ticket['id']}/grant", json={"group": "finance"}, headers=bob)
        assert r.status_code == 403 and "security" in r.json()["message"]
        r = http.post(f"/v1/approvals/{ticket['id']}/grant", json={"by": "mallory"}, headers=alice)
        assert r.status_code == 403 and "alice" in r.json()["message"]
        r = http.post(f"/v1/approvals/{ticket['id']}/grant", json={}, headers=alice)
        assert r.status_code == 200 and r.json()["state"] == "granted"
        assert r.json()["by"] == "alice" and r.json()["group"] == "finance"
        r = http.post(f"/v1/approvals/{ticket['id']}/grant", json={}, headers=alice)
        assert r.status_code == 409  # already granted
        edited = {**REFUND, "args": {**REFUND["args"], "amount": 260}}
        assert http.post("/v1/decide", json=edited).json()["effect"] == "require_approval"
        ok = http.post("/v1/decide", json=REFUND).json()
        assert ok["effect"] == "allow", ok
        again = http.post("/v1/decide", json=REFUND).json()
        assert again["effect"] == "require_approval" and again["ticket"]["id"] != ticket["id"]
        r = http.post(
            f"/v1/approvals/{again['ticket']['id']}/deny",
            json={"reason": "not this one"},
            headers=alice,
        )
        assert r.status_code == 200 and r.json()["state"] == "denied"
        metrics = http.get("/metrics").text
    for state, n in (("parked", 4), ("granted", 1), ("used", 1), ("denied", 1)):
        assert f'charter_approvals_total{{state="{state}"}} {n}' in metrics, state
    log = tmp_path / "decisions.jsonl"
    events = [r for r in read_log(log) if r.get("event") == "approval"]
    assert [(e["state"], e["by"], e["ticket"]) for e in events] == [
        ("granted", "alice", ticket["id"]),
        ("denied", "alice", again["ticket"]["id"]),
    ]
    assert all(float(e["time"]) > 1e9 for e in events)  # when


def test_inbox_session_needs_its_csrf_token_and_same_origin(support: tuple[str, Sidecar]) -> None:
    url, _ = support
    with httpx.Client(base_url=url) as http:
        page = http.get("/approvals")
        assert page.status_code == 200 and "Charter approvals" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "<script src" not in page.text and "http" not in page.text.split("<body>")[1]
        assert http.get("/approvals/session").status_code == 401
        r = http.post("/approvals/session", json={"token": "guess"})
        assert r.status_code == 401
        r = http.post("/approvals/session", json={"token": ALICE})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = r.json()["csrf"]
        assert http.get("/approvals/session").json()["csrf"] == csrf
        ticket = http.post("/v1/decide", json=REFUND).json()["ticket"]["id"]
        grant = f"/v1/approvals/{ticket}/grant"
        assert http.get("/v1/approvals").status_code == 200  # reading needs the cookie only
        r = http.post(grant, json={})
        assert r.status_code == 403 and "CSRF" in r.json()["message"]
        r = http.post(grant, json={}, headers={"x-csrf-token": "wrong"})
        assert r.status_code == 403
        r = http.post(
            grant, json={}, headers={"x-csrf-token": csrf, "origin": "http://evil.example"}
        )
        assert r.status_code == 403 and "cross-origin" in r.json()["message"]
        r = http.post(grant, json={}, headers={"x-csrf-token": csrf, "origin": url})
        assert r.status_code == 200 and r.json()["by"] == "alice"
        assert http.delete("/approvals/session").status_code == 200
        assert http.get("/v1/approvals").status_code == 401


# ── hooks, health, status, metrics ───────────────────────────────────────────


def test_hook_envelope_answers_like_charter_hook(support: tuple[str, Sidecar]) -> None:
    url, _ = support
    sample = Path(__file__).resolve().parents[1] / "samples" / "claude-code" / "pre_deny.json"
    with httpx.Client(base_url=url) as http:
        hooks = "/v1/hooks/claude-code?reply=envelope"
        r = http.post(hooks, content=sample.read_bytes())
        assert r.status_code == 200
        answer = r.json()
        out = json.loads(answer["stdout"])
        assert out["hookSpecificOutput"]["permissionDecision"] == "deny"
        r = http.post(hooks, content=b"{broken")
        assert r.status_code == 200 and r.json()["exit_code"] == 2  # the host's block
        r = http.post("/v1/hooks/no-such-agent?reply=envelope", content=sample.read_bytes())
        assert r.status_code == 200 and r.json()["exit_code"] == 2


def test_health_status_policy_and_metrics(support: tuple[str, Sidecar]) -> None:
    url, sidecar = support
    info = sidecar.guard.policy.info
    with httpx.Client(base_url=url) as http:
        assert http.get("/health").json() == {}
        assert http.get("/health/ready").status_code == 200
        status = http.get("/v1/status").json()
        assert status["policy"]["digest"] == info.digest
        assert status["policy"]["source"] == "examples/support" and status["store"] == "memory"
        assert http.get("/v1/policy").json()["name"] == info.name
        http.post("/v1/decide", json={"tool": "kb.search", "session": {"id": "s", "cost_usd": 0}})
        http.post("/v1/decide", content=b"{bad")
        r = http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert 'charter_decisions_total{effect="allow",stage="tool_call"} 1' in text
    assert 'charter_decisions_total{effect="deny",stage="invalid"} 1' in text
    assert (
        f'charter_policy_info{{name="{info.name}",version="{info.version}",'
        f'digest="{info.digest}"}} 1' in text
    )
    assert 'charter_decision_duration_seconds_bucket{le="1e-05"}' in text
    assert "charter_decision_duration_seconds_count 2" in text
    assert 'charter_http_requests_total{code="200",route="decide"} 2' in text.replace(
        'route="decide",code="200"', 'code="200",route="decide"'
    )
    assert "# TYPE charter_decision_duration_seconds histogram" in text


class _DownStore(MemoryStore):
    """A store whose every read fails, like Redis stopped."""

    down = True

    def read(self, *args: Any, **kw: Any) -> Any:
        if self.down:
            raise StoreError("connection refused")
        return super().read(*args, **kw)

    def take(self, *args: Any, **kw: Any) -> Any:
        if self.down:
            raise StoreError("connection refused")
        return super().take(*args, **kw)


def test_readiness_follows_the_store(tmp_path: Path) -> None:
    (tmp_path / "p.agentpolicy").write_text(RATE)
    store = _DownStore()
    guard = Guard(charter.load(tmp_path), state=store)
    sidecar = Sidecar(guard, store_kind="redis")
    call = {"tool": "kb.search", "session": {"id": "s-down"}, "args": {"q": "x"}}
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        r = http.get("/health/ready")
        assert r.status_code == 503 and r.json()["code"] == "not_ready"
        d = http.post("/v1/decide", json=call).json()
        assert d["effect"] == "deny" and "state store unavailable" in d["reasons"][0]
        assert 'charter_store_errors_total{store="redis"} 1' in http.get("/metrics").text
        store.down = False
        assert http.get("/health/ready").status_code == 200
        assert http.post("/v1/decide", json=call).json()["effect"] == "allow"


# ── the command ──────────────────────────────────────────────────────────────


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_charter_serve_command_shares_tickets_with_charter_approvals(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    people = tmp_path / "approvers.toml"
    people.write_text(f'[approvers.alice]\ntoken = "{ALICE}"\ngroups = ["finance"]\n')
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter.cli.main",
            "serve",
            str(EXAMPLES / "support"),
            "--listen",
            f"127.0.0.1:{port}",
            "--state",
            f"sqlite:{state}",
            "--approvers",
            str(people),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert httpx.get(url + "/health/ready").status_code == 200
        d = httpx.post(url + "/v1/decide", json=REFUND).json()
        ticket = d["ticket"]["id"]
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "charter.cli.main",
                "approvals",
                "list",
                "--json",
                "--state",
                str(state),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert ticket in listed.stdout
        r = httpx.post(
            f"{url}/v1/approvals/{ticket}/grant",
            json={},
            headers={"authorization": f"Bearer {ALICE}"},
        )
        assert r.status_code == 200, r.text
        assert httpx.post(url + "/v1/decide", json=REFUND).json()["effect"] == "allow"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_reload_keeps_the_old_policy_when_the_edit_is_broken(tmp_path: Path) -> None:
    source = tmp_path / "p.agentpolicy"
    source.write_text(RATE.replace("<= 2 per 1h", "<= 500 per 1h"))
    sidecar = Sidecar(Guard(charter.load(tmp_path)), reload=lambda: charter.load(tmp_path))
    call = {"tool": "kb.search", "session": {"id": "s-reload"}, "args": {"q": "x"}}
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        first = http.get("/v1/policy").json()["digest"]
        assert http.post("/v1/decide", json=call).json()["effect"] == "allow"
        source.write_text(RATE + "deny tool when\n")  # does not compile
        r = http.post("/v1/reload").json()
        assert r["reloaded"] is False and r["digest"] == first
        assert r["diagnostics"] and r["diagnostics"][0]["line"] == 7
        assert http.get("/v1/policy").json()["digest"] == first
        assert http.post("/v1/decide", json=call).json()["effect"] == "allow"
        source.write_text(
            RATE.replace("<= 2 per 1h", "<= 500 per 1h").replace(
                'allow tool "kb.search"', 'deny tool "kb.search"'
            )
        )
        r = http.post("/v1/reload").json()
        assert r["reloaded"] is True and r["changed"] is True and r["previous"] == first
        denied = http.post("/v1/decide", json=call).json()
        assert denied["effect"] == "deny" and "two searches an hour" not in denied["reasons"]
        metrics = http.get("/metrics").text
    assert f'digest="{r["digest"]}"}} 1' in metrics and f'digest="{first}"' not in metrics
    assert 'charter_policy_reloads_total{result="failed"} 1' in metrics
    assert 'charter_policy_reloads_total{result="ok"} 1' in metrics


@pytest.mark.parametrize("how", ["sighup", "watch"])
def test_the_command_reloads_on_sighup_and_on_edit(tmp_path: Path, how: str) -> None:
    source = tmp_path / "p.agentpolicy"
    roomy = RATE.replace("<= 2 per 1h", "<= 500 per 1h")  # the limit stays out of the way
    source.write_text(roomy)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter.cli.main",
            "serve",
            str(tmp_path),
            "--listen",
            f"127.0.0.1:{port}",
            *(["--watch"] if how == "watch" else []),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    call = {"tool": "kb.search", "session": {"id": "s-hup"}, "args": {"q": "x"}}

    def effect_becomes(want: str) -> str:
        for _ in range(200):
            got = httpx.post(url + "/v1/decide", json=call).json()["effect"]
            if got == want:
                break
            time.sleep(0.05)
        return str(got)

    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert httpx.post(url + "/v1/decide", json=call).json()["effect"] == "allow"
        if how == "watch":  # a broken edit is not loaded: the old policy keeps serving
            source.write_text(roomy + "deny tool when\n")
            time.sleep(1.5)
            assert httpx.post(url + "/v1/decide", json=call).json()["effect"] == "allow"
        source.write_text(roomy.replace('allow tool "kb.search"', 'deny tool "kb.search"'))
        if how == "sighup":
            proc.send_signal(signal.SIGHUP)
        assert effect_becomes("deny") == "deny"
        last = httpx.post(url + "/v1/decide", json=call).json()
        assert "two searches an hour" not in last["reasons"]  # the edit's deny, not the limit
        assert proc.poll() is None  # reloaded, still serving
        metrics = httpx.get(url + "/metrics").text
        assert 'charter_policy_reloads_total{result="ok"} 1' in metrics
        if how == "watch":
            assert 'charter_policy_reloads_total{result="failed"} 1' in metrics
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_two_workers_on_sqlite_share_a_limit_exactly(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "p.agentpolicy").write_text(RATE.replace("<= 2 per 1h", "<= 6 per 1h"))
    people = tmp_path / "approvers.toml"
    people.write_text(f'[approvers.alice]\ntoken = "{ALICE}"\ngroups = ["finance"]\n')
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    assert (
        subprocess.run(
            [sys.executable, "-m", "charter.cli.main", "serve", str(policy), "--workers", "2"],
            env=env,
            capture_output=True,
            text=True,
        ).stderr.count("--workers needs a shared state")
        == 1
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charter.cli.main",
            "serve",
            str(policy),
            "--listen",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--state",
            f"sqlite:{tmp_path / 's.db'}",
            "--approvers",
            str(people),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    call = {"tool": "kb.search", "session": {"id": "s-workers"}, "args": {"q": "x"}}
    try:
        for _ in range(400):
            try:
                if httpx.get(url + "/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        # hold connections open until two are served by different workers (a keep-alive
        # connection stays with the worker that accepted it), then alternate between them
        held: dict[int, httpx.Client] = {}
        opened = []
        for _ in range(60):
            http = httpx.Client(base_url=url)
            opened.append(http)
            held.setdefault(http.get("/v1/status").json()["pid"], http)
            if len(held) == 2:
                break
            time.sleep(0.05)
        assert len(held) == 2, "one worker took every connection"
        a, b = held.values()
        effects = [
            (a if i % 2 else b).post("/v1/decide", json=call).json()["effect"] for i in range(7)
        ]
        assert effects == ["allow"] * 6 + ["deny"]
        # an inbox session signed by one worker is good at the other (shared secret)
        signed = a.post("/approvals/session", json={"token": ALICE})
        a.cookies.clear()
        cookie = {"cookie": f"charter_inbox={signed.cookies['charter_inbox']}"}
        assert b.get("/v1/approvals", headers=cookie).status_code == 200
        for http in opened:
            http.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


def test_opa_shaped_decision_log(tmp_path: Path) -> None:
    log = tmp_path / "opa.jsonl"
    guard = Guard(charter.load(EXAMPLES / "support"))
    sidecar = Sidecar(guard, opa_log=log)
    secret = {**REFUND, "args": {**REFUND["args"], "reason": "mail jane.doe@example.com"}}
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        d = http.post("/v1/decide", json=secret, headers={"traceparent": parent}).json()
        http.post("/v1/decide?stateless=1", content=b"{broken")
    sidecar.opa_log.close()  # type: ignore[union-attr]
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    info = guard.policy.info
    assert first["decision_id"] == d["decision_id"]
    assert first["path"] == "charter/decision" and first["timestamp"].endswith("Z")
    assert first["result"]["effect"] == "require_approval"
    assert first["bundles"] == {info.name: {"revision": info.digest}}
    assert first["labels"]["app"] == "charter" and len(first["labels"]["id"]) == 32
    assert (first["trace_id"], first["span_id"]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    )
    assert first["requested_by"].startswith("127.0.0.1:")
    assert first["input"]["args"]["reason"] == "mail [EMAIL]"
    assert first["masked"] == ["/input/args/reason"]
    assert "jane.doe" not in log.read_text()
    assert isinstance(first["metrics"]["timer_charter_decide_ns"], int)
    assert second["result"]["effect"] == "deny" and second["req_id"] == 2
    assert "trace_id" not in second


def _redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    proc = spawn_redis(server, port, workdir)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("redis-server did not start")


def test_readiness_flips_when_redis_stops_and_comes_back(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from charter.runtime.state.redis import RedisStore

    (tmp_path / "p.agentpolicy").write_text(RATE.replace("<= 2 per 1h", "<= 50 per 1h"))
    port = _free_port()
    redis_proc = _redis(port, tmp_path)
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    sidecar = Sidecar(Guard(charter.load(tmp_path), state=store), store_kind="redis")
    call = {"tool": "kb.search", "session": {"id": "s-redis"}, "args": {"q": "x"}}
    try:
        with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
            assert http.get("/health/ready").status_code == 200
            assert http.post("/v1/decide", json=call).json()["effect"] == "allow"
            redis_proc.terminate()
            redis_proc.wait(10)
            r = http.get("/health/ready")
            assert r.status_code == 503 and "state store unavailable" in r.json()["message"]
            d = http.post("/v1/decide", json=call).json()
            assert d["effect"] == "deny" and d["reasons"][0].startswith("state store unavailable")
            redis_proc = _redis(port, tmp_path)
            assert http.get("/health/ready").status_code == 200
            assert http.post("/v1/decide", json=call).json()["effect"] == "allow"
            assert 'charter_store_errors_total{store="redis"} 1' in http.get("/metrics").text
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)


def test_opa_decision_events_are_uploaded_with_retry(tmp_path: Path) -> None:
    """A receiver that fails the first upload (503) gets every event once the next try
    succeeds, gzip'd JSON arrays as OPA's decision-log plugin sends them."""
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[dict[str, Any]] = []
    tries: list[int] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["content-length"]))
            tries.append(len(body))
            if len(tries) == 1:
                self.send_response(503)
            else:
                assert self.headers["content-encoding"] == "gzip"
                got.extend(json.loads(gzip.decompress(body)))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    logs = f"http://127.0.0.1:{receiver.server_address[1]}/logs"
    sidecar = Sidecar(Guard(charter.load(EXAMPLES / "support")), opa_log_url=logs)
    assert sidecar.opa_log is not None
    sidecar.opa_log.every = 0.1
    try:
        with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
            ids = [http.post("/v1/decide", json=REFUND).json()["decision_id"] for _ in range(3)]
            for _ in range(100):
                if len(got) >= 3:
                    break
                sidecar.opa_log.flush()
                time.sleep(0.1)
    finally:
        sidecar.opa_log.close()
        receiver.shutdown()
    assert len(tries) >= 2  # the failed upload was tried again
    assert [e["decision_id"] for e in got] == ids
    assert all(e["path"] == "charter/decision" for e in got)


def test_config_file_sets_the_options(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "approvers.toml").write_text(
        f'[approvers.alice]\ntoken = "{ALICE}"\ngroups = ["finance"]\n'
    )
    config = tmp_path / "charter-serve.toml"
    config.write_text(
        f'[serve]\nlisten = "127.0.0.1:{port}"\nstate = "sqlite:state.db"\n'
        'approvers = "approvers.toml"\nmax_body = 4096\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    cmd = [sys.executable, "-m", "charter.cli.main", "serve", str(EXAMPLES / "support")]
    bad = tmp_path / "bad.toml"
    bad.write_text('[serve]\nlisten = "127.0.0.1:1"\nstorage = "memory"\n')
    refused = subprocess.run([*cmd, "--config", str(bad)], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "unknown key 'storage'" in refused.stderr
    proc = subprocess.Popen([*cmd, "--config", str(config)], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert httpx.get(url + "/v1/status").json()["store"] == "sqlite"
        assert (tmp_path / "state.db").is_file()  # relative to the config file
        big = {"tool": "kb.search", "args": {"q": "x" * 5000}}
        assert httpx.post(url + "/v1/decide", json=big).status_code == 413
        d = httpx.post(url + "/v1/decide", json=REFUND).json()
        r = httpx.post(
            f"{url}/v1/approvals/{d['ticket']['id']}/grant",
            json={},
            headers={"authorization": f"Bearer {ALICE}"},
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
