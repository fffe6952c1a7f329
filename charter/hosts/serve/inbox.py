"""The approval inbox page of `charter serve` (`GET /approvals`): one self-contained HTML
page (no external assets, inline style and script under a per-response CSP nonce).

The approver signs in with their token (`POST /approvals/session` sets an HttpOnly,
SameSite=Strict cookie and hands the page a CSRF token it repeats in `X-CSRF-Token`); the
page lists the pending approvals they may decide (tool, masked arguments, rules, reasons,
approver groups, expiry), refreshes itself every two seconds, and approves or denies with a
click. Values are put in the page as text (`textContent`), never as HTML.
"""

from __future__ import annotations

import json
import secrets

__all__ = ["page"]

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;
color:#1c1e21}
header{background:#1f2a44;color:#fff;padding:12px 24px;display:flex;align-items:center;gap:16px}
header h1{font-size:18px;margin:0;flex:1}
main{max-width:980px;margin:24px auto;padding:0 16px}
.card{background:#fff;border:1px solid #d8dbe0;border-radius:8px;padding:16px;margin:0 0 14px}
.card.focus{border-color:#3867d6;box-shadow:0 0 0 2px #3867d633}
.tool{font-family:ui-monospace,Menlo,monospace;font-weight:600;font-size:16px}
.meta{color:#5b6270;font-size:13px;margin:4px 0 8px}
pre{background:#f1f3f6;border-radius:6px;padding:8px 10px;overflow:auto;max-height:220px;
margin:6px 0;font-size:13px}
.reasons{margin:6px 0 10px 18px;padding:0}
.actions{display:flex;gap:8px;align-items:center;flex-wrap:wrap}
button{font:inherit;border-radius:6px;border:1px solid #aab;padding:6px 14px;cursor:pointer;
background:#fff}
button.approve{background:#1e8e3e;border-color:#1e8e3e;color:#fff}
button.deny{background:#fff;border-color:#c5221f;color:#c5221f}
input{font:inherit;padding:6px 8px;border:1px solid #aab;border-radius:6px}
.empty{color:#5b6270;text-align:center;padding:32px}
.pill{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;background:#e8ecf4;
margin-right:4px}
.state-granted{color:#1e8e3e}.state-denied{color:#c5221f}.state-used{color:#5b6270}
#msg{min-height:20px;color:#c5221f;margin:0 0 10px}
h2{font-size:15px;color:#5b6270;text-transform:uppercase;letter-spacing:.04em}
"""

_SCRIPT = """
"use strict";
const focusId = JSON.parse(document.getElementById("focus").textContent);
let csrf = null, timer = null;
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function say(text) { $("msg").textContent = text || ""; }
async function api(method, path, body) {
  const opts = {method, credentials: "same-origin", headers: {}};
  if (body !== undefined) {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (csrf && method !== "GET") opts.headers["x-csrf-token"] = csrf;
  const r = await fetch(path, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (!r.ok) throw new Error(data.message || ("HTTP " + r.status));
  return data;
}
function until(t) {
  const s = Math.round(t - Date.now() / 1000);
  if (s <= 0) return "expired";
  if (s < 120) return "expires in " + s + " s";
  return "expires in " + Math.round(s / 60) + " min";
}
function card(t, actions) {
  const c = el("div", "card" + (t.id === focusId ? " focus" : ""));
  c.id = "ticket-" + t.id;
  c.dataset.ticket = t.id;
  c.appendChild(el("div", "tool", t.tool));
  const meta = el("div", "meta");
  meta.appendChild(el("span", "", "ticket " + t.id + " · "));
  meta.appendChild(el("span", "", "approvers: " + (t.approvers.join(", ") || "any") + " · "));
  if (t.session) meta.appendChild(el("span", "", "session " + t.session + " · "));
  meta.appendChild(el("span", "expiry", t.state === "pending" ? until(t.expires_at) : t.state));
  c.appendChild(meta);
  if (t.rules.length) {
    const r = el("div");
    for (const id of t.rules) r.appendChild(el("span", "pill", id));
    c.appendChild(r);
  }
  const ul = el("ul", "reasons");
  for (const reason of t.reasons) ul.appendChild(el("li", "", reason));
  c.appendChild(ul);
  c.appendChild(el("pre", "args", JSON.stringify(t.args, null, 2)));
  if (actions) {
    const a = el("div", "actions");
    const ok = el("button", "approve", "Approve");
    ok.type = "button";
    ok.addEventListener("click", () => decide(t.id, "grant", {}));
    const note = el("input");
    note.placeholder = "reason (for a denial)";
    note.setAttribute("aria-label", "reason");
    const no = el("button", "deny", "Deny");
    no.type = "button";
    no.addEventListener("click", () => decide(t.id, "deny", {reason: note.value || null}));
    a.append(ok, no, note);
    c.appendChild(a);
  } else {
    const who = t.by ? (t.state + " by " + t.by + (t.group ? " (" + t.group + ")" : "")) : t.state;
    c.appendChild(el("div", "meta state-" + t.state, who + (t.note ? ": " + t.note : "")));
  }
  return c;
}
async function decide(id, verb, body) {
  try {
    await api("POST", "/v1/approvals/" + encodeURIComponent(id) + "/" + verb, body);
    say("");
  } catch (e) { say(e.message); }
  refresh();
}
async function refresh() {
  let pending, all;
  try {
    pending = await api("GET", "/v1/approvals?state=pending");
    all = await api("GET", "/v1/approvals?state=all");
  } catch (e) {
    say(e.message);
    if (/sign in|not signed/.test(e.message)) signedOut();
    return;
  }
  const list = $("pending");
  list.replaceChildren();
  const live = pending.approvals.filter((t) => t.state === "pending");
  if (!live.length) list.appendChild(el("div", "empty", "Nothing waits for your approval."));
  for (const t of live) list.appendChild(card(t, true));
  const done = $("done");
  done.replaceChildren();
  const decided = all.approvals.filter((t) => t.state !== "pending").slice(-10).reverse();
  if (!decided.length) done.appendChild(el("div", "empty", "Nothing decided yet."));
  for (const t of decided) done.appendChild(card(t, false));
  document.title = (live.length ? "(" + live.length + ") " : "") + "Charter approvals";
}
function signedIn(who) {
  csrf = who.csrf;
  $("login").hidden = true;
  $("inbox").hidden = false;
  $("who").textContent = who.name + " · " + who.groups.join(", ");
  $("logout").hidden = false;
  refresh();
  if (!timer) timer = setInterval(refresh, 2000);
}
function signedOut() {
  csrf = null;
  if (timer) { clearInterval(timer); timer = null; }
  $("login").hidden = false;
  $("inbox").hidden = true;
  $("who").textContent = "";
  $("logout").hidden = true;
}
$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    signedIn(await api("POST", "/approvals/session", {token: $("token").value}));
    $("token").value = "";
    say("");
  } catch (e) { say(e.message); }
});
$("logout").addEventListener("click", async () => {
  try { await api("DELETE", "/approvals/session"); } catch (e) { /* signed out anyway */ }
  signedOut();
});
api("GET", "/approvals/session").then(signedIn, signedOut);
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Charter approvals</title>
<style nonce="{nonce}">{style}</style></head>
<body>
<header><h1>Charter · approvals</h1><span id="who"></span>
<button id="logout" type="button" hidden>Sign out</button></header>
<main>
<p id="msg" role="status"></p>
<form id="login" class="card" hidden>
<label for="token">Approver token</label>
<input id="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<section id="inbox" hidden>
<h2>Waiting for you</h2><div id="pending"></div>
<h2>Recently decided</h2><div id="done"></div>
</section>
</main>
<script id="focus" type="application/json">{focus}</script>
<script nonce="{nonce}">{script}</script>
</body></html>
"""


def page(focus: str | None = None) -> tuple[str, str]:
    """The inbox HTML (the ticket `focus` highlighted) and the CSP nonce it uses."""
    nonce = secrets.token_urlsafe(16)
    # `</` cannot end the JSON script element early: escape it.
    focus_json = json.dumps(focus).replace("</", "<\\/")
    html = (
        _PAGE.replace("{nonce}", nonce)
        .replace("{style}", _STYLE)
        .replace("{script}", _SCRIPT)
        .replace("{focus}", focus_json)
    )
    return html, nonce
