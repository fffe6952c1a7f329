"""The approval inbox in a real headless browser (Debian's chromium, driven by Playwright
with the system browser): a parked approval appears, a click approves it, the agent's
identical retry passes once; a second one appears without a reload and a click denies it.
The run saves a screenshot of the page with the pending approval (path printed)."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright
from servekit import ALICE

from charter.hosts.serve import Sidecar

CHROMIUM = "/usr/bin/chromium"
CALL = {
    "stage": "tool_call",
    "agent": {"id": "sup-1", "team": "support"},
    "user": {"id": "u-7"},
    "session": {"id": "s-browser", "cost_usd": 0.2},
    "tool": "refund.create",
    "args": {
        "amount": 480,
        "currency": "EUR",
        "order_id": "o-77",
        "reason": "jane.doe@example.com asked twice",
    },
}


def test_inbox_approve_and_deny_in_chromium(support: tuple[str, Sidecar], tmp_path: Path) -> None:
    url, _ = support
    agent = httpx.Client(base_url=url)
    parked = agent.post("/v1/decide", json=CALL).json()
    assert parked["effect"] == "require_approval"
    ticket = parked["ticket"]["id"]
    shot = tmp_path / "inbox.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # (the console's "Failed to load resource" lines are the 401/403 answers expected here)
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.goto(url + parked["ticket"]["inbox"])
        page.fill("#token", ALICE)
        page.click("#login button[type=submit]")
        card = page.locator(f"#pending #ticket-{ticket}")
        expect(card).to_be_visible()
        expect(card).to_have_class("card focus")  # the ticket the link named
        expect(card.locator(".tool")).to_have_text("refund.create")
        expect(card.locator(".reasons")).to_contain_text("finance")
        args = card.locator(".args")
        expect(args).to_contain_text('"amount": 480')
        expect(args).not_to_contain_text("jane.doe@example.com")  # masked for the approver
        expect(args).to_contain_text("[EMAIL]")
        expect(page.locator("#who")).to_have_text("alice · finance")
        page.screenshot(path=str(shot), full_page=True)
        print(f"inbox screenshot: {shot}")

        # a request that forgets the CSRF token is refused, even with the session cookie
        status = page.evaluate(
            f"""fetch("/v1/approvals/{ticket}/grant", {{method: "POST",
                 headers: {{"content-type": "application/json"}}, body: "{{}}"}})
               .then(r => r.status)"""
        )
        assert status == 403

        card.get_by_role("button", name="Approve").click()
        expect(card).to_have_count(0)  # gone from the pending list
        decided = page.locator(f"#done #ticket-{ticket}")
        expect(decided).to_contain_text("granted by alice (finance)")

        ok = agent.post("/v1/decide", json=CALL).json()
        assert ok["effect"] == "allow", ok
        again = agent.post("/v1/decide", json=CALL).json()
        assert again["effect"] == "require_approval"  # single use: a new ticket
        second = again["ticket"]["id"]
        assert second != ticket

        # the page picks up the new ticket by itself (no reload) and denies it
        card2 = page.locator(f"#pending #ticket-{second}")
        expect(card2).to_be_visible(timeout=10_000)
        card2.get_by_label("reason").fill("refund already issued")
        card2.get_by_role("button", name="Deny").click()
        expect(page.locator(f"#done #ticket-{second}")).to_contain_text(
            "denied by alice: refund already issued"
        )
        expect(page.locator("#pending")).to_contain_text("Nothing waits for your approval.")
        assert errors == []  # no script errors, no CSP violations
        browser.close()
    assert shot.stat().st_size > 10_000
    retry = agent.post("/v1/decide", json=CALL).json()
    assert retry["effect"] == "require_approval"
    listed = agent.get("/v1/approvals?state=denied", headers={"authorization": f"Bearer {ALICE}"})
    assert [t["id"] for t in listed.json()["approvals"]] == [second]
