"""Compiled decisions equal the reference interpreter's on generated policies and requests.

Each Hypothesis example is one generated policy and a batch of generated requests (well
formed, missing fields, wrong types); `Policy.decide` (planner + generated code) must give
exactly the same Decision as `Policy.interpret` (no planner, plain IR walk).
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter import Snapshot

REQUESTS_PER_POLICY = 12
EXAMPLES = 200
PAIRS = {"checked": 0}

TOOLS = """
tool "pay.send" (amount: decimal, region: str, note?: str, count?: int) tags money, write
tool "files.rm" (path: str, force: bool) tags destructive
tool "kb.search" (query: str, limit?: int) tags read
"""

ARGS_CONDS = {
    "pay.send": [
        "args.amount > {n}", "args.amount + 1 <= {n}", "args.amount * 2 >= {n}",
        'args.region in {{"eu", "us"}}', 'args.region == "eu"', 'args.region not in regions',
        "has(args.note)", 'args.note like "*urgent*"', "args.count < 3",
        "args.amount / 4 > {n}", 'startswith(args.region, "e")', "len(args.region) == 2",
        "-args.amount < 0", "args.count + 1 == {n}",
    ],
    "files.rm": [
        'args.path like "/tmp/*"', 'args.path matches r"^/etc"', "args.force",
        'not args.force', 'startswith(args.path, "/home")', "len(args.path) > 5",
        '"secret" in args.path', 'endswith(lower(args.path), ".key")',
    ],
    "kb.search": ['args.query == "x"', "args.limit > {n}", 'has(args.limit)',
                  'len(args.query) < {n}'],
}
CONTEXT_CONDS = [
    'agent.team == "support"', 'agent.env in {{"prod", "staging"}}', '"admin" in user.roles',
    "session.cost_usd + estimate.cost_usd > {n}", '"pii" in session.labels', "approved",
    'approved by "g1"', 'tool.name == "kb.search"', '"money" in tool.tags',
    "session.consecutive_tool_calls > {n}", 'agent.labels["tier"] == "gold"',
    'args.anything == "x"', "hour_of(now) < 12", 'weekday(now) == "sat"',
    'url_host(agent.id) == "a.example"', "args contains pii.email",
    # Untyped reads (untargeted rules) of fields pay.send declares: a bucket mixes typed and
    # untyped reads of one field.
    'args["amount"] + 0.1 > {n}', 'args["count"] * 2 == {n}',
    'args["amount"] in [0.3, 2.5, 100]', 'args["count"] == true',
    'args["amount"] / 3 * 3 == args["amount"]',
]
UNTYPED = ("args.anything", 'args["')  # conditions that only untargeted rules may hold
TARGETS = ['tool "pay.send"', 'tool "files.rm"', 'tool "kb.search"', 'tool "pay.*"',
           'tool "**"', "tool tagged destructive", "tool tagged money", 'tool "x.*", "kb.*"',
           ""]
EFFECTS = ["allow", "allow", "deny", "warn", 'require approval from "g1"',
           'require approval from "g1", "g2"', 'label session "seen"']


@st.composite
def conditions(draw: st.DrawFn, target: str) -> str:
    tool = next((t for t in ARGS_CONDS if f'"{t}"' in target and "," not in target), None)
    # Undeclared fields are compile errors where a target reaches declared tools (by name,
    # glob or tag), fine on untargeted rules.
    pool = [c for c in CONTEXT_CONDS if not (tool and ("args." in c or 'args["' in c))
            and not (target and any(u in c for u in UNTYPED))]
    pool += ARGS_CONDS[tool] if tool else []
    n = draw(st.sampled_from(["0", "1", "2.5", "100", "100.01", "3", "0.3"]))
    parts = [draw(st.sampled_from(pool)).format(n=n)
             for _ in range(draw(st.integers(1, 3)))]
    joiner = draw(st.sampled_from([" and ", " or "]))
    expr = joiner.join(f"({p})" for p in parts)
    return ("not " if draw(st.booleans()) and len(parts) == 1 else "") + expr


@st.composite
def rules(draw: st.DrawFn) -> str:
    target = draw(st.sampled_from(TARGETS))
    effect = draw(st.sampled_from(EFFECTS))
    if effect.startswith("label") and not target:
        target = 'tool "**"'
    text = f"{effect} {target}".strip()
    for _ in range(draw(st.integers(0, 2))):
        kw = draw(st.sampled_from(["when", "when", "unless"]))
        text += f" {kw} {draw(conditions(target))}"
    if draw(st.booleans()):
        text += ' because "reason here"'
    if draw(st.integers(0, 9)) == 0:
        text = "@shadow\n" + text
    return text


@st.composite
def policies(draw: st.DrawFn) -> str:
    lines = ['policy "gen"', "use pii", draw(st.sampled_from(["default deny", "default allow"])),
            'const regions = {"eu", "us", "apac"}', TOOLS]
    body = draw(st.lists(rules(), min_size=1, max_size=8))
    if draw(st.booleans()):
        inner = "\n  ".join(body[: len(body) // 2])
        scopes = ['agent.team == "support"', 'tool "pay.*"',
                  'tool tagged read when agent.env == "prod"']
        if any(u in inner for u in UNTYPED):  # a targeted scope types `args` by its tools
            scopes = scopes[:1]
        cond = draw(st.sampled_from(scopes))
        lines.append(f"scope {cond} {{\n  {inner}\n}}")
        body = body[len(body) // 2 :]
    lines.extend(body)
    if draw(st.booleans()):
        lines.append('budget cost_usd <= 2.00 per session because "over budget"')
    return "\n".join(lines)


BOUNDARIES = st.sampled_from([0, 1, 3, 100, Decimal("2.5"), Decimal("100.01"), Decimal("99.99"),
                              Decimal("100.00"), 2.5, -1, 0.1, 0.3, 0.30000000000000004, 1e23,
                              10**30, Decimal("1e30"), Decimal("100.0100000000000000000000000001"),
                              True])
NUMBERS = st.one_of(BOUNDARIES, BOUNDARIES, st.integers(-5, 200),
                    st.decimals(-5, 200, places=2, allow_nan=False),
                    st.floats(-5, 200, allow_nan=False))
ANY_VALUE = st.one_of(NUMBERS, st.text(max_size=6), st.booleans(), st.none(),
                      st.lists(st.text(max_size=3), max_size=2))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, object]:
    # Most requests are well formed, so the generated code (not the fallback) decides them;
    # the rest drop fields and swap types to exercise the error paths.
    noisy = draw(st.integers(0, 3)) == 0

    def value(strategy: st.SearchStrategy[object]) -> object:
        return draw(ANY_VALUE) if noisy and draw(st.integers(0, 3)) == 0 else draw(strategy)

    def present() -> bool:
        return not noisy or draw(st.integers(0, 3)) > 0

    req: dict[str, object] = {}
    tool = draw(st.sampled_from(["pay.send", "files.rm", "kb.search", "x.y", "pay.other"]))
    if draw(st.integers(0, 4)) == 0:
        req["tool"] = {"name": tool, "tags": draw(st.lists(st.sampled_from(
            ["destructive", "money", "read"]), max_size=2))}
    else:
        req["tool"] = tool
    if draw(st.integers(0, 9)) == 0:
        req["stage"] = draw(st.sampled_from(["tool_result", "model_output", "bogus"]))
    fields = {
        "amount": NUMBERS, "region": st.sampled_from(["eu", "us", "mars"]),
        "note": st.sampled_from(["urgent!", "hi", "mail bob@example.com"]),
        "count": st.one_of(st.integers(0, 5), NUMBERS), "path": st.sampled_from(
            ["/tmp/a", "/etc/passwd", "/home/x/secret.KEY", "/"]),
        "force": st.booleans(), "query": st.sampled_from(["x", "longer"]),
        "limit": st.one_of(BOUNDARIES.filter(lambda v: isinstance(v, int)), st.integers(0, 200)),
        "anything": st.just("x"),
    }
    if present():
        optional = ("note", "count", "limit")
        req["args"] = {k: value(v) for k, v in fields.items()
                       if present() and (k not in optional or draw(st.booleans()))}
    if present():
        req["agent"] = {"team": value(st.sampled_from(["support", "eng"])),
                        "env": value(st.sampled_from(["prod", "dev", "staging"])),
                        "id": value(st.sampled_from(["https://a.example/x", "bot"])),
                        "labels": value(st.sampled_from([{"tier": "gold"}, {"tier": "x"}]))}
    if present():
        req["session"] = {"cost_usd": value(NUMBERS),
                          "consecutive_tool_calls": value(st.sampled_from([0, 3, 5, 100])),
                          "labels": value(st.lists(st.sampled_from(["pii", "x"]), max_size=2))}
    if present():
        req["estimate"] = {"cost_usd": value(NUMBERS)}
    if present():
        req["user"] = {"roles": value(st.lists(st.sampled_from(["admin", "dev"]), max_size=2))}
    req["now"] = value(st.sampled_from(["2026-11-21T09:00:00Z", "2026-11-21T15:00:00+00:00",
                                        "2026-11-22T10:00:00Z", 1763700000]))
    return req


SNAPSHOTS = st.one_of(st.none(), st.builds(
    Snapshot, approved_groups=st.sampled_from([frozenset(), frozenset({"g1"}),
                                               frozenset({"g2"})]),
    labels=st.sampled_from([frozenset(), frozenset({"pii"})])))

_CACHE: dict[str, charter.Policy] = {}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(policies(), st.lists(st.tuples(requests(), SNAPSHOTS), min_size=REQUESTS_PER_POLICY,
                            max_size=REQUESTS_PER_POLICY))
def test_compiled_equals_reference(text: str, batch: list[tuple[dict[str, object],
                                                                Snapshot | None]]) -> None:
    policy = _CACHE.get(text) or _CACHE.setdefault(text, charter.compile(text))
    for req, snap in batch:
        # Twice: the second decision may come from the per-mask decision cache.
        for _ in range(2):
            compiled = policy.decide(req, snap)
            reference = policy.interpret(req, snap)
            assert compiled == reference, f"\n{text}\n{req}\n{snap}"
        PAIRS["checked"] += 1


def test_zz_enough_pairs_were_compared() -> None:
    assert PAIRS["checked"] >= 2000
