"""Request shapes: µs per decision for each shape a host sends, beside hand-written Python.

    python benchmarks/shapes.py [--quick] [--markdown]
    python -m benchmarks.shapes ...

One policy (the 21-rule reference policy of ``benchmarks/reference`` plus rules for nested
arguments, tool results and model input), one request per shape, and for each shape a
hand-written Python function that makes the same decision on the same dict, timed in the
same process in alternating repeats (the ratio is the median of per-repeat ratios, GC off).

The twins are honest: they read the request the way Charter's reader does (the stage is a
known one; the tool a non-empty name, or an object with a string name, a list of string tags
and a string server), use the declared tags for granting rules and the sent tags as well for
restricting ones, scan texts with the same matcher set the policy compiles (Charter's
``Scanner``; rewriting ``pii.any`` and ``secrets.any`` as Python ``re`` would be a different
check), and on the error path evaluate every rule, each one guarded, and return the same
reasons as Charter, naming the missing field and the rule. Before anything is timed, each
twin must return Charter's effect (and, for the error path, its reasons) on its request.

Targets (issue 11): every shape within 2x of its twin, the error path within 5x.
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/shapes.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import pii_corpus, reference  # noqa: E402
from benchmarks.timing import QUICK, Settings, calibrate, run_loops  # noqa: E402

TARGET = 2.0
TARGET_ERROR = 5.0

EXTRA = """
use pii, secrets

# Nested arguments: an order with its customer and a list of items.
tool "orders.create" (order: map<str, any>) tags write
allow tool "orders.create" when args.order["customer"]["region"] in eu_regions
deny tool "orders.create" when len(args.order["items"]) > 20 because "at most 20 items"
deny tool "orders.create" when args.order["items"][0]["sku"] like "BANNED-*"
  because "banned item"

# What tools return and what goes to the model is scanned.
on tool_result allow
on tool_result deny when result contains secrets.any because "no secrets in tool output"
on tool_result warn when result contains pii.any because "personal data in tool output"
on model_input allow
on model_input deny when input contains secrets.any because "no secrets to the model"
"""

Twin = Callable[[dict[str, Any], Any], Any]


@dataclass
class Shape:
    name: str
    request: dict[str, Any]
    twin: Twin
    state: Any = None
    target: float = TARGET
    compare_reasons: bool = False


# ── the hand-written twins ───────────────────────────────────────────────────

_STAGES = frozenset({"tool_call", "tool_result", "model_input", "model_output"})
_TAGS: dict[str, frozenset[str]] = {
    "kb.read": frozenset({"read"}),
    "search.web": frozenset({"read"}),
    "calendar.list": frozenset({"read"}),
    "refund.create": frozenset({"write", "money"}),
    "files.delete": frozenset({"destructive"}),
    "db.drop": frozenset({"destructive"}),
    "crm.export": frozenset({"export"}),
    "email.send": frozenset({"external"}),
    "deploy.run": frozenset({"prod"}),
    "admin.reset_user": frozenset({"admin"}),
    "orders.create": frozenset({"write"}),
}
_NO_TAGS: frozenset[str] = frozenset()
_EU_REGIONS = frozenset({"eu-west-1", "eu-central-1"})
_REFUND_CURRENCIES = frozenset({"USD", "EUR", "GBP"})
_SENSITIVE_TABLES = frozenset({"payments", "credentials"})


def read_tool(request: dict[str, Any]) -> tuple[str, Any] | None:
    """The checks Charter's reader makes: (name, sent tags), or None when malformed."""
    stage = request.get("stage")
    if stage is not None and (type(stage) is not str or stage not in _STAGES):
        return None
    tool = request.get("tool")
    if type(tool) is str:
        return (tool, ()) if tool else None
    if type(tool) is not dict:
        return None
    name = tool.get("name")
    if type(name) is not str or not name:
        return None
    tags = tool.get("tags")
    if tags is None:
        tags = ()
    elif type(tags) is list or type(tags) is tuple:
        for tag in tags:
            if type(tag) is not str:
                return None
    else:
        return None
    server = tool.get("server")
    if server is not None and type(server) is not str:
        return None
    return name, tags


def _one_segment(name: str, prefix: str) -> bool:
    return name.startswith(prefix) and "." not in name[len(prefix):]


def reference_decide(request: dict[str, Any], approved: frozenset[str] = _NO_TAGS) -> str:
    """benchmarks/reference/handwritten.py, reading the tool as Charter does: sent tags
    restrict, declared tags grant; a grant from a group satisfies that group's approval."""
    found = read_tool(request)
    if found is None:
        return "deny"
    name, sent = found
    declared = _TAGS.get(name, _NO_TAGS)
    tags = declared.union(sent) if sent else declared
    agent = request["agent"]
    user = request["user"]
    session = request["session"]
    args = request.get("args", {})
    estimate = request.get("estimate", {}).get("cost_usd", 0)
    if (
        (agent["env"] == "prod" and agent["team"] == "experimental")
        or agent["tenant"] != user["tenant"]
        or session["cost_usd"] + estimate > 2
    ):
        return "deny"
    if name == "refund.create" and (
        args["amount"] > 5000 or args["currency"] not in _REFUND_CURRENCIES
    ):
        return "deny"
    if "destructive" in tags and "sre" not in user["roles"]:
        return "deny"
    if name == "db.drop" and args["table"].startswith("prod_"):
        return "deny"
    if "export" in tags and args["region"] not in _EU_REGIONS:
        return "deny"
    if name == "crm.export" and args["table"] in _SENSITIVE_TABLES:
        return "deny"
    if name == "email.send" and not args["to"].endswith("@example.com"):
        return "deny"
    allowed = (
        _one_segment(name, "kb.")
        or _one_segment(name, "search.")
        or "read" in declared
        or (name == "refund.create" and agent["team"] == "support")
        or "destructive" in declared
        or name in ("crm.export", "email.send", "deploy.run")
        or (_one_segment(name, "admin.") and "admin" in user["roles"])
    )
    if name == "orders.create":
        order = args["order"]
        items = order["items"]
        if len(items) > 20 or items[0]["sku"].startswith("BANNED-"):
            return "deny"
        allowed = order["customer"]["region"] in _EU_REGIONS
    if not allowed:
        return "deny"
    if (
        (name == "refund.create" and args["amount"] > 100 and "finance" not in approved)
        or ("prod" in tags and agent["env"] == "prod" and "release" not in approved)
        or (session["consecutive_tool_calls"] > 5 and "operator" not in approved)
    ):
        return "require_approval"
    return "allow"


def _twin_plain(request: dict[str, Any], state: Any) -> str:
    return reference_decide(request)


def _twin_granted(request: dict[str, Any], state: Any) -> str:
    return reference_decide(request, state.approved_groups)


class _Missing(Exception):
    pass


def _field(request: dict[str, Any], root: str, key: str) -> Any:
    obj = request.get(root)
    if type(obj) is not dict or key not in obj:
        raise _Missing(f"{root}.{key} missing")
    return obj[key]


def _num(request: dict[str, Any], root: str, key: str) -> Any:
    value = _field(request, root, key)
    if type(value) not in (int, Decimal, float) or type(value) is bool:
        raise _Missing(f"{root}.{key}: not a number")
    return value


def _str(request: dict[str, Any], root: str, key: str) -> str:
    value = _field(request, root, key)
    if type(value) is not str:
        raise _Missing(f"{root}.{key}: not a string")
    return value


ID = "policy.agentpolicy"


def checked_refund(request: dict[str, Any], state: Any) -> tuple[str, tuple[str, ...]]:
    """Every rule that can apply to `refund.create`, each guarded as Charter guards it (an
    erring allow does not match, an erring deny or approval does), with Charter's reasons.
    """
    if read_tool(request) is None:
        return "deny", ("malformed request",)
    reasons: list[str] = []
    denied = allowed = approval = False

    def failed(err: _Missing, rule: str) -> None:
        reasons.append(f"request error: {err} (rule {rule})")

    try:  # noqa: SIM105 - allow tool "refund.create" when agent.team == "support"
        allowed = _str(request, "agent", "team") == "support"
    except _Missing:
        pass
    try:  # require approval from "finance" ... when args.amount > 100
        if _num(request, "args", "amount") > 100:
            approval = True
            reasons.append("refunds over $100 need finance sign-off")
    except _Missing as err:
        approval = True
        failed(err, "refund-approval")
    try:  # deny tool "refund.create" when args.amount > 5000
        if _num(request, "args", "amount") > 5000:
            denied = True
            reasons.append("refunds over $5,000 are handled offline")
    except _Missing as err:
        denied = True
        failed(err, f"{ID}:35")
    try:  # deny tool "refund.create" when args.currency not in refund_currencies
        if _str(request, "args", "currency") not in _REFUND_CURRENCIES:
            denied = True
            reasons.append("unsupported refund currency")
    except _Missing as err:
        denied = True
        failed(err, f"{ID}:37")
    try:  # deny when agent.env == "prod" and agent.team == "experimental"
        if _str(request, "agent", "env") == "prod" and (
                _str(request, "agent", "team") == "experimental"):
            denied = True
            reasons.append("experimental agents stay out of prod")
    except _Missing as err:
        denied = True
        failed(err, f"{ID}:58")
    try:  # deny when agent.tenant != user.tenant
        if _str(request, "agent", "tenant") != _str(request, "user", "tenant"):
            denied = True
            reasons.append("cross-tenant call")
    except _Missing as err:
        denied = True
        failed(err, f"{ID}:63")
    try:  # budget cost_usd <= 2.00 per session
        estimate = request.get("estimate")
        extra = estimate.get("cost_usd", 0) if type(estimate) is dict else 0
        if _num(request, "session", "cost_usd") + extra > 2:
            denied = True
            reasons.append("session budget of $2 reached")
    except _Missing as err:
        denied = True
        failed(err, f"{ID}:66")
    try:  # require approval from "operator" when session.consecutive_tool_calls > 5
        if _num(request, "session", "consecutive_tool_calls") > 5:
            approval = True
            reasons.append(f"approval required from operator (rule {ID}:67)")
    except _Missing as err:
        approval = True
        failed(err, f"{ID}:67")
    if denied or not allowed:
        return "deny", tuple(reasons)
    return ("require_approval" if approval else "allow"), tuple(reasons)


def _scanner() -> Any:
    from charter.stdlib import Scanner, resolve

    specs = [*(resolve("secrets.any") or ()), *(resolve("pii.any") or ())]
    return Scanner(list({s.name: s for s in specs}.values()))


_SCANNER: Any = None
_SECRETS: frozenset[str] = frozenset()
_PII: frozenset[str] = frozenset()


def _scan_setup() -> None:
    global _SCANNER, _SECRETS, _PII
    from charter.stdlib import resolve

    _SCANNER = _scanner()
    _SECRETS = frozenset(s.name for s in resolve("secrets.any") or ())
    _PII = frozenset(s.name for s in resolve("pii.any") or ())


def _twin_result(request: dict[str, Any], state: Any) -> str:
    if read_tool(request) is None or "result" not in request:
        return "deny"
    found = _SCANNER.scan(request["result"])
    if not found.isdisjoint(_SECRETS):
        return "deny"
    return "allow"  # a PII hit is a warning on an allow


def _twin_input(request: dict[str, Any], state: Any) -> str:
    stage = request.get("stage")
    if stage != "model_input" or "input" not in request:
        return "deny"
    return "deny" if not _SCANNER.scan(request["input"]).isdisjoint(_SECRETS) else "allow"


# ── the shapes ───────────────────────────────────────────────────────────────


def shapes() -> list[Shape]:
    from charter.engine.snapshot import Snapshot

    base = copy.deepcopy(reference.cases()[0]["request"])  # kb.read, every context field
    assert base["tool"] == "kb.read"

    def with_tool(tool: Any, **parts: Any) -> dict[str, Any]:
        return {**copy.deepcopy(base), "tool": tool, **parts}

    refund = {"amount": Decimal("250"), "currency": "USD", "customer_email": "a@b.co"}
    order = {
        "customer": {"id": "c-1", "region": "eu-west-1", "address": {"city": "Dublin"}},
        "items": [{"sku": f"SKU-{i}", "qty": i + 1, "options": {"gift": i % 2 == 0}}
                  for i in range(5)],
    }
    missing = {k: v for k, v in refund.items() if k != "amount"}
    return [
        Shape("bare name", with_tool("kb.read"), _twin_plain),
        Shape("tool object", with_tool({"name": "kb.read"}), _twin_plain),
        Shape("with tags", with_tool({"name": "kb.read", "tags": ["read"]}), _twin_plain),
        Shape("with tags and server",
              with_tool({"name": "kb.read", "tags": ["read"], "server": "kb.internal"}),
              _twin_plain),
        Shape("nested args (3 levels, list of objects)",
              with_tool("orders.create", args={"order": order}), _twin_plain),
        Shape("tool_result, 2 KB result scanned",
              with_tool("kb.read", stage="tool_result",
                        result={"body": pii_corpus.text("json", 2048, False), "n": 3}),
              _twin_result),
        Shape("model_input, 4 KB prompt scanned",
              {**copy.deepcopy(base), "stage": "model_input",
               "input": pii_corpus.text("prose", 4096, False)}, _twin_input),
        Shape("missing field (args.amount, error path)",
              with_tool("refund.create", args=missing), checked_refund,
              target=TARGET_ERROR, compare_reasons=True),
        Shape("approval grant (Snapshot.approved_groups)",
              with_tool("refund.create", args=refund), _twin_granted,
              state=Snapshot(approved_groups=frozenset({"finance"}))),
    ]


def policy_source() -> str:
    text: str = reference.source("charter")
    return text + EXTRA


# ── measuring ────────────────────────────────────────────────────────────────


def _charter(policy: Any, request: Any) -> Any:
    return policy.decide(request)


def _pair(policy: Any, shape: Shape, settings: Settings) -> tuple[float, float, float]:
    """Charter µs, twin µs and the median per-repeat ratio, timed alternately, GC off."""
    state = shape.state
    twin = shape.twin

    def charter(p: Any, r: Any) -> Any:
        return p.decide(r, state)

    def python(t: Twin, r: Any) -> Any:
        return t(r, state)

    requests = [shape.request]
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        c_loops = calibrate(charter, policy, requests, settings)
        p_loops = calibrate(python, twin, requests, settings)
        c_us, p_us = [], []
        for _ in range(settings.repeats):
            c_us.append(run_loops(charter, policy, requests, c_loops) / c_loops / 1000)
            p_us.append(run_loops(python, twin, requests, p_loops) / p_loops / 1000)
    finally:
        if was:
            gc.enable()
    ratio = statistics.median(c / p for c, p in zip(c_us, p_us, strict=True))
    return statistics.median(c_us), statistics.median(p_us), ratio


def check(policy: Any, shape: Shape) -> None:
    """Raise unless the twin agrees with Charter on the shape's request."""
    decision = policy.decide(shape.request, shape.state)
    got = shape.twin(shape.request, shape.state)
    want = (decision.effect, decision.reasons) if shape.compare_reasons else decision.effect
    if got != want:
        raise AssertionError(f"{shape.name}: charter {want!r}, twin {got!r}")


def run(quick: bool = False) -> list[dict[str, Any]]:
    import charter

    settings = QUICK if quick else Settings()
    _scan_setup()
    policy = charter.compile(policy_source())
    rows = []
    for shape in shapes():
        check(policy, shape)
        for _ in range(3):  # warm: buckets made, decisions cached, as in a running host
            policy.decide(shape.request, shape.state)
        c_us, p_us, ratio = _pair(policy, shape, settings)
        rows.append({"shape": shape.name, "charter_us": c_us, "python_us": p_us,
                     "ratio": ratio, "target": shape.target, "met": ratio <= shape.target})
    return rows


def render(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    if markdown:
        lines = ["| shape | Charter µs | hand-written µs | ratio | target | |",
                 "| --- | ---: | ---: | ---: | ---: | --- |"]
        for r in rows:
            lines.append(f"| {r['shape']} | {r['charter_us']:.2f} | {r['python_us']:.2f} | "
                         f"{r['ratio']:.2f}× | ≤ {r['target']:g}× | "
                         f"{'met' if r['met'] else 'missed'} |")
        return "\n".join(lines) + "\n"
    head = f"{'shape':<44} {'charter µs':>10} {'python µs':>10} {'ratio':>7} {'target':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['shape']:<44} {r['charter_us']:>10.2f} {r['python_us']:>10.2f} "
                     f"{r['ratio']:>6.2f}x {r['target']:>6g}x {'' if r['met'] else 'MISSED'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shapes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few, short repeats")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    sys.stdout.write(render(rows, markdown=args.markdown))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
