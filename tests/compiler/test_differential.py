"""Compiled decisions equal the reference interpreter's on generated policies and requests.

`Policy.decide` (planner, dispatch, generated code, per-mask decision cache, fast path) must
give exactly the same Decision as `Policy.interpret` (every rule's targets tested directly,
plain IR walk): every field, and the same JSON byte for byte.

Seed N makes one policy (`Policies`) and `REQUESTS_PER_POLICY` requests with state snapshots
for it (`Requests`), all from one `random.Random(N)`; the policy is compiled once and every
request goes through the same `Policy`, so the caches see a realistic mix. Plain random
draws are cheap and independent, which is what lets the default run compare 20,000 pairs in
seconds. What is generated: tools as names and as `{"name", "tags", "server"}` objects (tags
that match the declarations or not, undeclared tools, `trust request tags`), nested args with
lists of objects, tool results, model input and output, PII- and secret-looking text, numbers
of every kind (ints, floats, Decimals, NaN, past 10^400), bytes, StrEnums, mappings that are
not dicts, missing and mistyped fields, JSON text; policies with name, glob and tag targets,
scopes, `tool.server` conditions, matchers, redact, approvals, labels, budgets and limits read
from snapshot counters, `previously`, `strict args`. A disagreement is reported small: the
policy without the items it does not need, the request shrunk, the earlier request it takes
(if the caches are involved), the fields that differ, and the seed that reruns it.

`CHARTER_DIFF_PAIRS` sets the number of pairs (default 20,000; the test asserts that many were
compared, and that each kind of outcome was reached often enough); `CHARTER_DIFF_SEED=N`
starts at seed N instead of 0. See docs/testing.md, "The differential test".
"""

from __future__ import annotations

import collections
import enum
import itertools
import os
import random
import re
import types
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec
from hypothesis import strategies as st

import charter
from charter import Snapshot
from charter.runtime.policy import Policy

TARGET_PAIRS = int(os.environ.get("CHARTER_DIFF_PAIRS", "20000"))
SEED = os.environ.get("CHARTER_DIFF_SEED")
REQUESTS_PER_POLICY = 100
EXAMPLES = -(-TARGET_PAIRS // REQUESTS_PER_POLICY)  # policies, one seed each

# ── policies ─────────────────────────────────────────────────────────────────

HEADER = '''policy "gen"{version}
use pii, secrets
{default}
{options}
const regions = {{"eu", "us", "apac"}}
const region_of = {{"eu": "eu-west-1", "us": "us-east-1"}}
const caps = {{"gold": {{"pay": 500}}, "basic": {{"pay": 50}}}}
const steps = [10, 20, 30]
matcher order_ref = r"\\bORD-[0-9]{{8}}\\b"
tool "pay.send" (amount: decimal, region: str, note?: str, count?: int, meta?: map<str, any>, \
items?: list<any>) tags money, write
tool "files.rm" (path: str, force: bool) tags destructive
tool "kb.search" (query: str, limit?: int, filters?: map<str, any>) tags read
tool "mcp.gh.issue" (title: str, body: str, labels?: list<str>) tags external, write
'''
DECLARED = ("pay.send", "files.rm", "kb.search", "mcp.gh.issue")

# Conditions on one declared tool's typed args (`{n}`: a number drawn per condition).
ARGS_CONDS = {
    "pay.send": [
        "args.amount > {n}", "args.amount + 1 <= {n}", "args.amount * 2 >= {n}",
        'args.region in {{"eu", "us"}}', 'args.region == "eu"', "args.region not in regions",
        "has(args.note)", 'args.note like "*urgent*"', "args.count < 3",
        "args.amount / 4 > {n}", 'startswith(args.region, "e")', "len(args.region) == 2",
        "-args.amount < 0", "args.count + 1 == {n}", 'region_of[args.region] == "eu-west-1"',
        "args.region in region_of", "steps[args.count] == 20",
        "args.amount <= caps[agent.labels[\"tier\"]][\"pay\"]", "args.note contains pii.email",
        "args.meta.owner.id > {n}", 'args.meta.owner.email == "bob@example.com"',
        "args.meta contains pii.any", 'args.items[0].sku == "A-1"', "len(args.items) > 1",
        "args.items[1].qty * 2 > {n}", "has(args.meta.level.deep.deeper)",
        'args.meta["level"]["deep"]["deeper"] == {n}', "count(pii.email in args.items) > 0",
        'args.items[0]["tags"][0] == "x"',
    ],
    "files.rm": [
        'args.path like "/tmp/*"', 'args.path matches r"^/etc"', "args.force",
        "not args.force", 'startswith(args.path, "/home")', "len(args.path) > 5",
        '"secret" in args.path', 'endswith(lower(args.path), ".key")', 'args.path like "*"',
        'upper(args.path) like "/TMP/*.TXT"',
    ],
    "kb.search": ['args.query == "x"', "args.limit > {n}", "has(args.limit)",
                  "len(args.query) < {n}", "args.query contains secrets.any",
                  'args.filters.lang == "en"', "args.filters.since.days > {n}",
                  'has(args.filters)'],
    "mcp.gh.issue": ['"bug" in args.labels', "len(args.body) > {n}",
                     "args.body contains secrets.any", "args.title contains order_ref",
                     'args.labels == ["bug", "p1"]', "count(pii.any in args.body) > 1"],
}
# Conditions any rule may hold, at any stage.
CONTEXT_CONDS = [
    'agent.team == "support"', 'agent.env in {{"prod", "staging"}}', '"admin" in user.roles',
    "session.cost_usd + estimate.cost_usd > {n}", '"pii" in session.labels', "approved",
    'approved by "g1"', 'approved by 2 of "g1"', 'tool.name == "kb.search"',
    '"money" in tool.tags', '"deploy" in tool.tags', "len(tool.tags) > 1",
    'tool.server == "github"', 'tool.server in {{"github", "jira"}}',
    'startswith(tool.server, "mcp-")', "has(tool.server)", "not has(tool.tags)",
    "session.consecutive_tool_calls > {n}", 'agent.labels["tier"] == "gold"',
    "hour_of(now) < 12", 'weekday(now) == "sat"', "now - session.started_at > 1h",
    'url_host(agent.id) == "a.example"', "user.id == agent.id", "agent.tenant == user.tenant",
    'domain_of(user.id) == "example.com"', 'cidr_contains("10.0.0.0/8", agent.labels["ip"])',
    "session.tool_calls_since_checkpoint > 5", "session.tokens + estimate.tokens > 1000",
    'session.turn == "2"', "agent.id contains pii.email", "stage == \"tool_call\"",
    'previously call "kb.search"', 'previously call "kb.search" with {{query: "x"}} within 1h',
    'previously call "pay.send" with {{amount: 100}} within 5m',
]
# Reads of `args` without a declared type: only rules that no target types may hold them.
UNTYPED_CONDS = [
    'args.anything == "x"', "args contains pii.email", "args contains order_ref",
    "count(pii.any in args) > 1", "args contains secrets.any",
    # Untyped reads of fields pay.send declares: a bucket mixes typed and untyped reads.
    'args["amount"] + 0.1 > {n}', 'args["count"] * 2 == {n}',
    'args["amount"] in [0.3, 2.5, 100]', 'args["count"] == true',
    'args["amount"] / 3 * 3 == args["amount"]', 'steps[args["count"]] == 20',
    'region_of[args["region"]] == "eu-west-1"', 'args["region"] in regions',
    # Nested args three levels down, lists of objects.
    'args.meta.owner.email == "bob@example.com"', "args.meta.owner.id > {n}",
    'args.items[0].sku == "A-1"', "args.items[1].qty * 2 > {n}", "len(args.items) > 1",
    'args.items[0].tags[0] == "x"', 'args.meta["level"]["deep"]["deeper"] == {n}',
    "has(args.meta.owner.email)", "args.meta contains pii.any", 'url_host(args.url) == "a.example"',
    "args.x in [1, 2.5, \"a\", true]", "-args.x < 0", "args.x / 3 == 1",
]
STAGE_CONDS = {
    "tool_call": [],
    "tool_result": [
        'result.status == "error"', "has(result.status)", "result contains pii.ssn",
        "result contains secrets.any", "len(result) > 2", 'result == "ok"',
        "result.data.rows[0].email contains pii.email", "count(pii.email in result) > 1",
        "result.items[0].id == 3", "result contains pii.any",
    ],
    "model_input": [
        'input.role == "user"', "input contains pii.card", "len(input) > 1",
        "input.messages[0].content contains pii.email", "input contains secrets.any",
    ],
    "model_output": [
        "len(output) < 100", "output contains secrets.any", 'output like "*password*"',
        'output matches r"(?i)ssn"', "output contains pii.email", 'output.text == "hi"',
    ],
}
# (target text, the one declared tool it types `args` by, or None; whether it types at all)
TARGETS: list[tuple[str, str | None, bool]] = [
    *((f'tool "{t}"', t, True) for t in DECLARED),
    ('tool "pay.*"', "pay.send", True), ('tool "**"', None, True),
    ('tool "mcp.**"', "mcp.gh.issue", True), ('tool "x.*", "kb.*"', "kb.search", True),
    ('tool "files.rm", "pay.send"', None, True),
    ("tool tagged destructive", "files.rm", True), ("tool tagged money", "pay.send", True),
    ("tool tagged external", "mcp.gh.issue", True), ("tool tagged write", None, True),
    ("tool tagged read", "kb.search", True), ("tool tagged deploy", None, True),
    ("", None, False), ("", None, False), ("", None, False),
]
ALLOW_ONLY_TARGETS = [('tool "x.y"', None, True), ('tool "mcp.jira.create"', None, True)]
STAGES = ["tool_call"] * 6 + ["tool_result", "tool_result", "model_input", "model_output"]
EFFECTS = ["allow", "allow", "deny", "warn", 'require approval from "g1"',
           'require approval from "g1", "g2"', 'label session "seen"', "redact"]
REDACT_FIELDS = {"tool_call": ["args", "args"], "tool_result": ["result", "result.body", "args"],
                 "model_input": ["input"], "model_output": ["output"]}
REDACT_MATCHERS = ["pii.email", "pii.email, secrets.any", "pii.any", "secrets.any",
                   "order_ref", "pii.phone, pii.card"]
NUMS = ["0", "1", "2.5", "100", "100.01", "3", "0.3", "20", "1000"]
BUDGETS = [
    'budget cost_usd <= 2.00 per session because "over budget"',
    "budget cost_usd <= 5 per 1d per agent.tenant",
    "budget tokens <= 1000 per turn then warn",
    "budget tokens <= 500 per session",
    'limit calls(tool "pay.*") <= 3 per 1h',
    'limit calls(tool tagged money) <= 2 per 1h per agent.id then require approval from "g1"',
    'limit calls(tool "kb.search") <= 5 per session then warn because "slow down"',
    'limit calls(tool tagged deploy) <= 1 per 5m per agent.id',
]


# Field by field: conditions made of a read of one argument (`{x}`; `{y}` a second one of
# the same type) in every way its type allows. A rule typed by one declared tool reads its
# fields typed (`args.count`: int); every other rule reads them untyped (`args["count"]`).
# Each policy draws a few focus fields that most conditions read, so that one bucket often
# reads one field several ways (typed and untyped, hoisted and inline): that is where the
# generated code's shortcuts are.
FIELDS = {
    "pay.send": {"amount": "num", "region": "str", "note": "str", "count": "int",
                 "meta": "map", "items": "list"},
    "files.rm": {"path": "str", "force": "bool"},
    "kb.search": {"query": "str", "limit": "int", "filters": "map"},
    "mcp.gh.issue": {"title": "str", "body": "str", "labels": "liststr"},
}
DECLARED_KIND = {f: k for fields in FIELDS.values() for f, k in fields.items()}
UNTYPED_FIELDS = sorted({f for fields in FIELDS.values() for f in fields} | {"x", "url"})
_NUM = ["{x} > {n}", "{x} + 1 <= {n}", "{x} * 2 >= {n}", "{x} / 3 * 3 == {x}", "-{x} < 0",
        "{x} in [0.3, 2.5, 100]", "{x} != {n}", "{x} - {n} >= 0", "{x} == {n}",
        "{x} == {y}", "{x} + {y} > {n}", "{x} * {y} >= {n}", "{x} < {y}"]
_STR = ['{x} == "eu"', "{x} in regions", '{x} like "e*"', '{x} like "*u*"',
        '{x} matches r"^e"', 'startswith({x}, "e")', "len({x}) == 2",
        'region_of[{x}] == "eu-west-1"', "{x} in region_of", '"e" in {x}',
        "{x} contains pii.email", '{x} + "x" == "eux"', 'lower({x}) == "eu"',
        '{x} in ["eu", "us"]', '{x} < "m"', "{x} == {y}", '{x} + {y} == "eueu"',
        '{x} like "*"', '{x} not in {{"eu", "us"}}']
TEMPLATES = {
    "num": _NUM, "int": [*_NUM, "steps[{x}] == 20", "{x} in {{1, 2}}", "{x} + 1 == {n}"],
    "str": _STR, "bool": ["{x}", "not {x}", "{x} == true", "{x} != false"],
    "map": ["{x} contains pii.any", "len({x}) > 1", '"owner" in {x}', "{x}.owner.id > {n}",
            '{x}["level"]["deep"]["deeper"] == {n}', "count(pii.any in {x}) > 0"],
    "list": ["len({x}) > 1", '{x}[0].sku == "A-1"', "{x}[1].qty * 2 > {n}", '"bug" in {x}',
             "count(pii.email in {x}) > 0", "{x}[0] == {y}"],
    "liststr": ['"bug" in {x}', "len({x}) > 1", '{x} == ["bug", "p1"]', '{x}[0] == "bug"'],
}
TEMPLATES["any"] = sorted({t for ts in TEMPLATES.values() for t in ts} | {
    "{x} == true", "{x} in {{1, 2, \"a\"}}", "len({x}) + 1 == {y}"})


SCOPES: list[tuple[str, str | None, bool]] = [
    ('agent.team == "support"', None, False), ('tool "pay.*"', "pay.send", True),
    ('tool tagged read when agent.env == "prod"', "kb.search", True),
    ("tool tagged write", None, True), ('"admin" in user.roles or approved', None, False),
]
Typing = tuple[str | None, bool]  # the one declared tool `args` is typed by; typed at all
UNTYPED: Typing = (None, False)


class Policies:
    """Policy text from a seeded `random.Random`: plain random draws are independent, where
    Hypothesis would mostly mutate a few examples, and many times cheaper."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tool = DECLARED[0]  # the focus tool and fields of the policy being made
        self.focus: tuple[str, ...] = ()
        self.near = 0.6  # how often a condition reads a focus field
        self.x_kind = "num"  # what this policy's conditions mostly take `args.x` for

    def pick(self, pool: list[Any] | tuple[Any, ...]) -> Any:
        return pool[self.rng.randrange(len(pool))]

    def field_condition(self, typed_by: str | None) -> str:
        fields = FIELDS[typed_by] if typed_by else dict.fromkeys(UNTYPED_FIELDS, "any")
        near = [f for f in self.focus if f in fields]
        name = self.pick(near if near and self.rng.random() < self.near else sorted(fields))
        kind = fields[name]

        def read(field: str) -> str:
            return f"args.{field}" if typed_by or self.rng.random() < 0.5 else f'args["{field}"]'

        same = sorted(fields) if kind in ("list", "any") else [
            f for f, k in fields.items() if k == kind]
        other = self.pick([f for f in self.focus if f in same] or same)
        # An untyped read is mostly used as the field's declaration (or, for `x`, this
        # policy) has it, `steps[args["count"]]` beside a typed read of it in the same
        # bucket: a field read as a bool here and as a map there would send every request
        # of the bucket to the interpreter, and the generated code would never run.
        if kind == "any" and self.rng.random() < 0.9:
            kind = DECLARED_KIND.get(name, "str" if name == "url" else self.x_kind)
        return self.pick(TEMPLATES[kind]).format(x=read(name), y=read(other), n=self.pick(NUMS))

    def condition(self, stage: str, typing: Typing) -> str:
        typed_by, typed = typing
        args: list[str] = []
        by_field = stage in ("tool_call", "tool_result") and (typed_by is not None or not typed)
        if stage in ("tool_call", "tool_result"):
            args = ARGS_CONDS[typed_by] if typed_by else [] if typed else UNTYPED_CONDS
        pools = [p for p in (args, CONTEXT_CONDS, STAGE_CONDS[stage]) if p]
        parts = [self.field_condition(typed_by) if by_field and self.rng.random() < self.near
                 else self.pick(self.pick(pools)).format(n=self.pick(NUMS))
                 for _ in range(self.rng.randint(1, 3))]
        expr = self.pick([" and ", " or "]).join(f"({p})" for p in parts)
        return ("not " if len(parts) == 1 and self.rng.random() < 0.5 else "") + expr

    def rule(self, outer: Typing = UNTYPED) -> str:
        """One rule; `outer` is how the enclosing scopes type `args`."""
        stage = self.pick(STAGES)
        effect = self.pick(EFFECTS)
        # Most rules land in the buckets of the focus tool: untargeted, or targeting it.
        r = self.rng.random()
        pool = (TARGETS + (ALLOW_ONLY_TARGETS if effect == "allow" else []) if r < 0.3
                else [t for t in TARGETS if t[1] == self.tool] if r < 0.65
                else [t for t in TARGETS if not t[0]])
        target, typed_by, typed = self.pick(pool)
        typing = _within(outer, (typed_by, typed))
        if effect.startswith("label") and not target and stage == "tool_call":
            target, typing = 'tool "**"', _within(outer, (None, True))
        if effect == "redact":
            fields = list(REDACT_FIELDS[stage])
            if stage == "tool_call" and typing[0] == "pay.send":
                fields.append("args.note")
            if stage == "tool_call" and not typing[1]:
                fields.append("args.meta")
            effect = f"redact {self.pick(REDACT_MATCHERS)} in {self.pick(fields)}"
        text = f"{effect} {target}".strip()
        if stage != "tool_call" or self.rng.random() < 0.15:
            text = f"on {stage} {text}"
        for _ in range(self.rng.randint(0, 2)):
            text += f" {self.pick(['when', 'when', 'unless'])} {self.condition(stage, typing)}"
        if self.rng.random() < 0.5:
            text += ' because "reason here"'
        if self.rng.random() < 0.1:
            text = "@shadow\n" + text
        if self.rng.random() < 0.2:
            text = '@id("r")\n' + text  # numbered once the policy is whole (ids are unique)
        return text

    def scope(self, outer: Typing = UNTYPED, depth: int = 0) -> str:
        head, typed_by, typed = self.pick(SCOPES)
        typing = _within(outer, (typed_by, typed))
        inner = [self.rule(typing) for _ in range(self.rng.randint(1, 4))]
        if depth == 0 and self.rng.random() < 0.25:
            inner.append(self.scope(typing, 1))
        body = "\n".join(inner).replace("\n", "\n  ")
        return f"scope {head} {{\n  {body}\n}}"

    def policy(self) -> tuple[list[str], list[str]]:
        """(options, items): `render` makes the text; the shrinker drops options and items."""
        self.tool = self.pick(DECLARED)
        fields = sorted(FIELDS[self.tool])
        self.focus = tuple(self.rng.sample(fields, min(len(fields), self.rng.randint(1, 2))))
        if self.rng.random() < 0.3:
            self.focus += (self.pick(UNTYPED_FIELDS),)
        self.x_kind = self.pick(["num", "int", "str", "map", "list"])
        # A third of the policies are dense: nearly every condition reads the focus fields.
        self.near = 0.95 if self.rng.random() < 0.35 else 0.6
        options = [o for o in ("strict args", "trust request tags") if self.rng.random() < 0.25]
        options += [self.pick(["default deny", "default allow"]),
                    self.pick(["", 'version "1.2.0"'])]
        items = [self.scope() if self.rng.random() < 0.25 else self.rule()
                 for _ in range(self.rng.randint(1, 12))]
        items += self.rng.sample(BUDGETS, self.pick([0, 0, 1, 2, 3]))
        return options, items


def _within(outer: Typing, inner: Typing) -> Typing:
    """How `args` is typed for a rule or scope targeting `inner` inside scopes `outer`."""
    if not inner[1]:
        return outer
    if outer[1] and inner[0] != outer[0]:
        return (None, True)  # two targets: no one tool
    return inner


def render(options: list[str], items: list[str]) -> str:
    version = next((o for o in options if o.startswith("version")), "")
    head = HEADER.format(version=f" {version}" if version else "",
                         default=next((o for o in options if o.startswith("default")), ""),
                         options="\n".join(o for o in options if " " in o and not (
                             o.startswith(("version", "default")))))
    ids = itertools.count()
    body = re.sub(r'@id\("r\d*"\)', lambda _: f'@id("r{next(ids)}")', "\n".join(items))
    return head + body + "\n"


def policies() -> st.SearchStrategy[str]:
    """One generated policy, as a Hypothesis strategy (tests/security/test_fuzz_compile.py)."""
    return st.integers(0, 2**32 - 1).map(
        lambda seed: render(*Policies(random.Random(seed)).policy()))


# ── requests (plain `random`, seeded per example) ────────────────────────────

TEXTS = [
    "", "hi", "x", "urgent!", "mail bob@example.com", "call +1 415 555 2671", "ssn 536-22-1234",
    "card 4111 1111 1111 1111", "iban DE89 3704 0044 0532 0130 00", "from 10.1.2.3",
    "key AKIAIOSFODNN7EXAMPLE", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "ref ORD-12345678",
    "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2ln", "my password is x",
    "SSN please", "bob@example.com", "ok", "error", "a" * 120, "ünïcödé ✓", "\x00\n\t",
]
BYTES = [b"eu", b"bob@example.com", b"/tmp/b", b"\xff\xfe", bytearray(b"ghp_" + b"a" * 36), b""]


class Word(enum.StrEnum):
    """Strings a Python host may send as an enum: a str subclass."""

    EU = "eu"
    X = "x"
    EMAIL = "bob@example.com"


DEEP: object = "eu"  # nested past what comparisons and scans key structurally
for _ in range(140):
    DEEP = [DEEP]
NUMBERS: list[object] = [
    0, 1, 2, 3, 20, 100, -1, 1000, 1001, Decimal("2.5"), Decimal("100.01"), Decimal("99.99"),
    Decimal("100.00"), Decimal("100.0100000000000000000000000001"), Decimal("1.0"),
    Decimal("-0"), Decimal("0.3"), 2.5, 0.1, 0.3, 0.30000000000000004, 100.01, -0.0, 1.0,
    1e23, 1e308, 5e-324, 10**30, 2**63, -(2**63) - 1, 2**64, Decimal("1e30"),
    10**399, -(10**399), 10**400, Decimal("9.99e399"), Decimal("1e400"), Decimal("-1e400"),
    Decimal("1." + "0" * 600), Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN"),
    float("nan"), float("inf"), True, False, Fraction(1, 3),
]
SMALL_INTS = [0, 1, 2, 3, 5, 100]
# Whole numbers that are not ints: an int field reads them as ints, an untyped read does not.
WHOLE = [1.0, 2.0, -1.0, Decimal("1"), Decimal("1.0"), Decimal("2E+0"), Decimal("0E-5"),
         Decimal("-0"), 1e2, True]
TIMES: list[object] = [
    "2026-11-21T09:00:00Z", "2026-11-21T15:00:00+00:00", "2026-11-22T10:00:00Z",
    "2026-11-21T09:30:00+05:30", "2026-11-21T09:00:00", 1763700000, 1763700000.5,
    Decimal("1763700000"), "yesterday", -(10**20), True,
]
NOW = 1763715600  # 2026-11-21T09:00:00Z, near TIMES
URLS = ["https://a.example/x", "http://evil.example\\@a.example/", "a.example", "mailto:x@y",
        "http://[::1]/", "http://2130706433/"]
TOOL_NAMES = [*DECLARED, *DECLARED, "x.y", "pay.other", "mcp.jira.create", "deploy.run",
              "kb.article.get", "x"]
TAGS = ["money", "write", "destructive", "read", "external", "deploy", "export", "mcp"]
SESSION_IDS = ["s1", "s2"]
TENANTS = ["t1", "t2"]
AGENT_IDS = ["https://a.example/x", "bot", "bob@example.com"]


STAGE_MIX = ["tool_call"] * 24 + ["tool_result"] * 6 + ["model_input"] * 4 + [
    "model_output"] * 4 + [None, None, "bogus", 3]


class Record(Mapping[str, object]):
    """A read-only mapping that is not a dict."""

    def __init__(self, data: dict[str, object]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> object:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Record({self._data!r})"


def clone(value: Any) -> Any:
    """A deep copy that keeps each mapping's class (`copy.deepcopy` cannot copy a
    mappingproxy)."""
    if isinstance(value, types.MappingProxyType):
        return types.MappingProxyType(clone(dict(value)))
    if isinstance(value, Record):
        return Record(clone(value._data))
    if isinstance(value, collections.defaultdict):
        return collections.defaultdict(value.default_factory, clone(dict(value)))
    if isinstance(value, dict):
        return type(value)({k: clone(v) for k, v in value.items()})
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value  # immutable, or never changed by reading


def shape(value: Any) -> object:
    """`value` as nested tuples of strings, to compare (a Counter's repr sorts its values,
    which raises on a signalling NaN)."""
    if isinstance(value, Mapping):
        return (type(value).__name__, tuple((repr(k), shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(shape(v) for v in value))
    return repr(value)


def show(value: Any) -> str:
    try:
        return repr(value)
    except ArithmeticError:  # a Counter of signalling NaNs
        return repr(shape(value))


MAPPINGS: list[Callable[[dict[str, object]], Mapping[str, object]]] = [
    collections.OrderedDict, lambda d: collections.defaultdict(int, d),
    lambda d: collections.defaultdict(str, d), collections.Counter, types.MappingProxyType,
    Record,
]


class Requests:
    """Requests for one policy: mostly well formed, some with fields dropped or of the wrong
    type, some not even requests."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.noisy = False
        self.exotic = False  # the request holds a mapping that is not a plain dict
        self.encoder = msgspec.json.Encoder(decimal_format="number")

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, pool: list[Any] | tuple[Any, ...]) -> Any:
        return pool[self.rng.randrange(len(pool))]

    def any_value(self, depth: int = 0) -> object:
        r = self.rng.random()
        if r < 0.3:
            return self.pick(NUMBERS)
        if r < 0.5:
            return self.pick(TEXTS)
        if r < 0.6:
            return self.pick(BYTES)
        if r < 0.7:
            return self.pick([None, True, False, (), frozenset({"x"}), {1: "x"}, Word.EU,
                              Word.EMAIL, DEEP, {"a": bytearray(b"x")}, [bytearray(b"eu")]])
        if depth > 2:
            return self.pick(TEXTS)
        if r < 0.85:
            return [self.any_value(depth + 1) for _ in range(self.rng.randrange(3))]
        return {self.pick(["a", "email", "status", "id"]): self.any_value(depth + 1)
                for _ in range(self.rng.randrange(3))}

    def v(self, make: Callable[[], object]) -> object:
        """A value made by `make`, or, in a noisy request, now and then anything at all."""
        return self.any_value() if self.noisy and self.chance(0.25) else make()

    def record(self, fields: dict[str, Callable[[], object]]) -> object:
        if self.noisy and self.chance(0.1):
            return self.pick([None, "x", [], 3])
        keep = 0.7 if self.noisy else 0.96
        out = {k: self.v(make) for k, make in fields.items() if self.chance(keep)}
        if self.chance(0.005):
            # A Python host may hand over other mappings: read as the interpreter reads them
            # (a key is there when `in` says so), never through `__missing__`, never changed.
            self.exotic = True
            return self.pick(MAPPINGS)(out)
        return out

    def text(self) -> object:
        r = self.rng.random()
        return self.pick(BYTES) if r < 0.05 else self.pick(list(Word)) if r < 0.08 else (
            self.pick(TEXTS))

    def number(self) -> object:
        return self.pick(NUMBERS) if self.chance(0.4) else self.pick(
            [self.rng.randint(-5, 200), Decimal(self.rng.randint(-500, 20000)) / 100,
             self.rng.uniform(-5, 200)])

    def cost(self) -> object:
        """Usage: mostly what a budget can read (not negative, finite), near its limits."""
        return self.number() if self.chance(0.2) else self.pick(
            [0, 1, 2, Decimal("1.99"), Decimal("0.01"), 0.5, 1.5, Decimal("4.99"), 5])

    def whole(self) -> object:
        r = self.rng.random()
        return self.pick(SMALL_INTS) if r < 0.5 else self.pick(WHOLE) if r < 0.8 else (
            self.number())

    def meta(self) -> object:
        return self.record({
            "owner": lambda: self.record({"email": self.text, "id": self.number,
                                          "name": self.text}),
            "level": lambda: self.record({"deep": lambda: self.record(
                {"deeper": self.number, "note": self.text})}),
            "tags": lambda: [self.pick(["x", "y"]) for _ in range(self.rng.randrange(3))],
            "lang": lambda: self.pick(["en", "de", b"en"]),
            "since": lambda: self.record({"days": self.number}),
        })

    def items(self) -> object:
        return [self.record({"sku": lambda: self.pick(["A-1", "B-2", b"A-1"]),
                             "qty": self.number, "note": self.text,
                             "tags": lambda: [self.pick(["x", "y"])],
                             "email": self.text})
                if not self.chance(0.1) else self.any_value()
                for _ in range(self.rng.randrange(4))]

    def args(self, tool: object) -> object:
        """Arguments: for a declared tool mostly its own parameters (so that `strict args`
        passes now and then), else any of them."""
        fields = self.arg_fields()
        name = tool.get("name") if isinstance(tool, dict) else tool
        own = FIELDS.get(name) if isinstance(name, str) else None
        if own is not None and self.chance(0.8):
            keep = set(own) | ({self.pick(sorted(fields))} if self.chance(0.2) else set())
            fields = {k: v for k, v in fields.items() if k in keep}
        return self.record(fields)

    def arg_fields(self) -> dict[str, Callable[[], object]]:
        return {
            "amount": self.number,
            "region": lambda: self.pick(["eu", "us", "mars", b"eu", Word.EU]),
            "note": self.text, "count": self.whole, "meta": self.meta, "items": self.items,
            "path": lambda: self.pick(["/tmp/a", "/etc/passwd", "/home/x/secret.KEY", "/",
                                       "/TMP/A.TXT", b"/tmp/b"]),
            "force": lambda: self.pick([True, False]),
            "query": lambda: self.pick(["x", "longer", "AKIAIOSFODNN7EXAMPLE"]),
            "limit": self.whole, "filters": self.meta,
            "title": self.text, "body": self.text,
            "labels": lambda: [self.pick(["bug", "p1", "x"]) for _ in range(self.rng.randrange(3))],
            "anything": lambda: "x", "url": lambda: self.pick(URLS),
            "x": lambda: self.pick([self.number, self.whole, self.text, self.meta])(),
        }

    def tool(self, stage: object) -> object:
        if stage in ("model_input", "model_output") and self.chance(0.8):
            return None
        name = self.pick(TOOL_NAMES)
        r = self.rng.random()
        if r < 0.5:
            return name
        if r < 0.97:
            tool: dict[str, object] = {"name": name}
            if self.chance(0.8):
                tool["tags"] = self.rng.sample(TAGS, self.rng.randrange(4))
            if self.chance(0.6):
                tool["server"] = self.pick(["github", "jira", "mcp-local", "", 5, None])
            return tool
        return self.pick(["", 5, {"name": 3}, {"tags": ["read"]}, {"name": name, "tags": "read"},
                          {"name": name, "tags": [1]}, {"name": name, "tags": None}, [name],
                          {"name": ""}, {"name": name, "tags": ("read",)}])

    def result(self) -> object:
        r = self.rng.random()
        if r < 0.3:
            return self.text()
        if r < 0.8:
            return self.record({
                "status": lambda: self.pick(["ok", "error", 5]), "body": self.text,
                "data": lambda: self.record({"rows": lambda: [
                    self.record({"email": self.text, "id": self.number})
                    for _ in range(self.rng.randrange(3))]}),
                "items": lambda: [self.record({"id": lambda: self.pick([3, 3.0, "3"])})],
            })
        return self.any_value()

    def model_input(self) -> object:
        def message() -> object:
            return self.record({"role": lambda: self.pick(["user", "assistant", 3]),
                                "content": self.text})
        r = self.rng.random()
        if r < 0.4:
            return message()
        if r < 0.6:
            return [message() for _ in range(self.rng.randrange(3))]
        if r < 0.8:
            return {"messages": [message() for _ in range(self.rng.randrange(3))]}
        return self.text()

    def request(self) -> Any:
        self.noisy = self.chance(0.2)
        self.exotic = False
        req: dict[str, object] = {}
        stage = self.pick(STAGE_MIX)
        if stage is not None:
            req["stage"] = stage
        tool = self.tool(stage)
        if tool is not None:
            req["tool"] = tool
        if not self.noisy or self.chance(0.8):
            req["args"] = self.args(tool)
        if stage == "tool_result" or self.chance(0.05):
            req["result"] = self.result()
        if stage == "model_input" or self.chance(0.05):
            req["input"] = self.model_input()
        if stage == "model_output" or self.chance(0.05):
            req["output"] = self.pick([self.text(), {"text": self.pick(["hi", "x"])}, ["hi"]])
        req["agent"] = self.record({
            "id": lambda: self.pick(AGENT_IDS), "team": lambda: self.pick(["support", "eng"]),
            "tenant": lambda: self.pick(TENANTS), "env": lambda: self.pick(["prod", "staging"]),
            "labels": lambda: self.record({"tier": lambda: self.pick(["gold", "basic", "x"]),
                                           "ip": lambda: self.pick(["10.1.2.3", "8.8.8.8",
                                                                    "localhost"])})})
        req["user"] = self.record({
            "id": lambda: self.pick(["bob@example.com", "bot", "u-1"]),
            "roles": lambda: self.rng.sample(["admin", "dev", "ops"], self.rng.randrange(3)),
            "tenant": lambda: self.pick(TENANTS)})
        req["session"] = self.record({
            "id": lambda: self.pick(SESSION_IDS), "cost_usd": self.cost,
            "tokens": lambda: self.pick([0, 400, 999, 1001]),
            "consecutive_tool_calls": lambda: self.pick([0, 3, 5, 100]),
            "tool_calls_since_checkpoint": lambda: self.pick([0, 5, 6]),
            "turn": lambda: self.pick(["1", "2"]),
            "labels": lambda: self.rng.sample(["pii", "x", "seen"], self.rng.randrange(3)),
            "started_at": lambda: self.pick(TIMES)})
        req["estimate"] = self.record({"cost_usd": self.cost,
                                       "tokens": lambda: self.pick([0, 1, 600])})
        if self.chance(0.9):
            req["now"] = self.v(lambda: self.pick(TIMES[:7]))
        for k in [k for k in req if self.noisy and self.chance(0.1)]:
            del req[k]
        return self.wrap(req)

    def wrap(self, req: dict[str, object]) -> Any:
        """The request as a host may hand it over: mostly a dict, else JSON or a Mapping."""
        r = self.rng.random()
        if r < 0.9:
            return req
        if r < 0.96:
            try:
                data = self.encoder.encode(req)
            except (TypeError, ValueError, OverflowError):
                return req
            return data if self.chance(0.5) else data.decode("utf-8", "replace")
        if r < 0.99:
            return types.MappingProxyType(req)
        return self.pick([[req], None, 5, "not json", b"{", "[]"])

    def snapshot(self, counters: list[str]) -> Snapshot | None:
        if self.chance(0.35):
            return None
        keys = [*SESSION_IDS, *TENANTS, *AGENT_IDS, "s1/1", "s1/2", "s2/2"]
        history: dict[str, tuple[tuple[float, dict[str, object]], ...]] = {}
        if self.chance(0.5):
            history["kb.search"] = ((NOW - self.pick([10, 4000]),
                                     {"query": self.pick(["x", "y"])}),)
        if self.chance(0.3):
            history["pay.send"] = ((NOW - self.pick([10, 400]),
                                    {"amount": self.pick([100, Decimal("100.0"), 100.0, "100"])}),)
        return Snapshot(
            counters={(c, self.pick(keys)): self.pick([0, 1, 2, 3, 5, 499, 999, 1000,
                                                      Decimal("1.99"), Decimal("4.999"),
                                                      Decimal("5")])
                      for c in counters if self.chance(0.7)},
            labels=frozenset(self.rng.sample(["pii", "seen"], self.rng.randrange(3))),
            history=history,
            approved_groups=frozenset(self.rng.sample(["g1", "g2"], self.rng.randrange(3))),
            now=self.pick([None, None, NOW, NOW + 0.5]),
            approvers={"g1": frozenset(self.rng.sample(["ann", "bob", "cy"],
                                                       self.rng.randrange(4)))},
        )


def requests() -> st.SearchStrategy[Any]:
    """One generated request, as a Hypothesis strategy (tests/security/test_fuzz_compile.py)."""
    return st.integers(0, 2**32 - 1).map(lambda seed: Requests(random.Random(seed)).request())


SNAPSHOTS: st.SearchStrategy[Snapshot | None] = st.integers(0, 2**32 - 1).map(
    lambda seed: Requests(random.Random(seed)).snapshot(["#0", "#1"]))


def with_counters(snap: Snapshot | None, policy: Policy) -> Snapshot | None:
    """A `SNAPSHOTS` snapshot for `policy`: its placeholder counter ids `#N` become the N-th of
    the policy's counter ids (which are content hashes, known once the policy is compiled)."""
    if snap is None:
        return None
    ids = sorted({c.id for c in policy.counters})
    counters = {(ids[int(c[1:])], key): used for (c, key), used in snap.counters.items()
                if int(c[1:]) < len(ids)}
    return msgspec.structs.replace(snap, counters=counters)


# ── comparison ───────────────────────────────────────────────────────────────

def disagreement(policy: Policy, req: Any, snap: Snapshot | None,
                 exotic: bool = False) -> str | None:
    """None when interpret and decide (twice: the second may come from the cache) agree on
    every field; else the fields that differ. With `exotic` (the request holds mappings
    that are not plain dicts, which reading could change: a `defaultdict` gains the key it
    is asked for), each evaluator gets its own copy, and both must leave it alike."""
    if exotic:
        mine, theirs = clone(req), clone(req)
        reference = policy.interpret(theirs, snap)
        first = policy.decide(mine, snap)
        again = policy.decide(mine, snap)
        if shape(mine) != shape(theirs):
            return (f"  decide left the request as\n  {shape(mine)!r}\n  interpret as\n"
                    f"  {shape(theirs)!r}")
    else:
        reference = policy.interpret(req, snap)
        first = policy.decide(req, snap)
        again = policy.decide(req, snap)
    if first == reference == again and first.to_json() == reference.to_json():
        return None
    ref = msgspec.structs.asdict(reference)
    lines = []
    for label, got in (("decide", first), ("decide again", again)):
        for name, value in msgspec.structs.asdict(got).items():
            if value != ref[name] or repr(value) != repr(ref[name]):
                lines.append(f"  {name}: {label} {value!r}\n  {' ' * len(name)}  interpret "
                             f"{ref[name]!r}")
    return "\n".join(lines) or "  (equal fields, different JSON)"


def _smaller(value: Any) -> list[Any]:
    """Candidates one step simpler than `value`: a key or item dropped, or a part simplified."""
    out: list[Any] = []
    if isinstance(value, dict):
        for k in value:
            out.append({j: v for j, v in value.items() if j != k})
        for k, v in value.items():
            out.extend({**value, k: s} for s in _smaller(v))
    elif isinstance(value, list):
        for i in range(len(value)):
            out.append(value[:i] + value[i + 1:])
        for i, v in enumerate(value):
            out.extend(value[:i] + [s] + value[i + 1:] for s in _smaller(v))
    return out


Pair = tuple[Any, Snapshot | None]


def _fresh(text: str, req: Any, snap: Snapshot | None, prefix: Pair | None,
           exotic: bool) -> str | None:
    """The disagreement `req` shows on a freshly compiled `text`, after deciding `prefix`."""
    try:
        policy = charter.compile(text)
    except charter.CompileError:
        return None
    if prefix is not None:
        policy.decide(clone(prefix[0]), prefix[1])
    return disagreement(policy, clone(req), snap, exotic)


def _shrink_request(text: str, req: Any, snap: Snapshot | None, prefix: Pair | None,
                    exotic: bool) -> Any:
    while isinstance(req, dict):
        for candidate in _smaller(req):
            if _fresh(text, candidate, snap, prefix, exotic) is not None:
                req = candidate
                break
        else:
            break
    return req


def report(seed: int, options: list[str], items: list[str], pair: Pair, before: list[Pair],
           exotic: bool) -> str:
    """The disagreement made small: the policy with every item and option it does not need
    dropped, the request shrunk, and the one earlier request (if any) it takes."""
    text = render(options, items)
    req, snap = pair
    prefix: Pair | None = None
    if _fresh(text, req, snap, None, exotic) is None:
        prefix = next((p for p in reversed(before)
                       if _fresh(text, req, snap, p, exotic) is not None), None)
        if prefix is None:
            return (f"seed {seed}: only after all the requests before it\n--- policy\n{text}"
                    f"--- request\n  {show(req)}\n--- snapshot\n  {snap!r}")
    for part in (options, items):
        i = 0
        while i < len(part):
            if _fresh(render(*(([*part[:i], *part[i + 1:]], items) if part is options else (
                    options, [*part[:i], *part[i + 1:]]))), req, snap, prefix, exotic):
                del part[i]
            else:
                i += 1
    text = render(options, items)
    req = _shrink_request(text, req, snap, prefix, exotic)
    if prefix is not None and isinstance(prefix[0], dict):
        while True:
            smaller = next((c for c in _smaller(prefix[0])
                            if _fresh(text, req, snap, (c, prefix[1]), exotic)), None)
            if smaller is None:
                break
            prefix = (smaller, prefix[1])
    first = "none" if prefix is None else f"{show(prefix[0])}\n  with snapshot {prefix[1]!r}"
    return (f"seed {seed} (rerun it alone: CHARTER_DIFF_SEED={seed} CHARTER_DIFF_PAIRS=1)\n"
            f"--- policy\n{text}--- decided first\n  {first}\n--- request\n  {show(req)}\n"
            f"--- snapshot\n  {snap!r}\n--- differences\n"
            f"{_fresh(text, req, snap, prefix, exotic)}")


def check(seed: int, stats: collections.Counter[str]) -> None:
    """One generated policy, compiled once, against REQUESTS_PER_POLICY generated requests."""
    rng = random.Random(seed)
    options, items = Policies(rng).policy()
    text = render(options, items)
    try:
        policy = charter.compile(text)
    except charter.CompileError as err:  # the generators must only write valid policies
        raise AssertionError(f"seed {seed}: generated policy does not compile:\n{text}\n"
                             f"{err}") from None
    gen = Requests(rng)
    counters = sorted({c.id for c in policy.counters})
    decided: list[Pair] = []
    for _ in range(REQUESTS_PER_POLICY):
        pair = (gen.request(), gen.snapshot(counters))
        if disagreement(policy, *pair, exotic=gen.exotic) is not None:
            raise AssertionError("compiled and interpreted decisions differ: "
                                 + report(seed, options, items, pair, decided, gen.exotic))
        decided.append(pair)
        _tally(stats, policy.interpret(*pair))


def _tally(stats: collections.Counter[str], d: charter.Decision) -> None:
    stats["pairs"] += 1
    stats[d.effect] += 1
    malformed = any(r.startswith("malformed request") for r in d.reasons)
    stats["malformed" if malformed else "request error" if d.errors else "clean"] += 1
    for name, value in (("rules", d.rules), ("redaction", d.redactions), ("warning", d.warnings),
                        ("label", d.labels), ("shadow", d.shadow), ("approvers", d.approvers)):
        stats[name] += bool(value)
    stats["masked"] += any(sum(r.counts.values()) for r in d.redactions)


# Each kind of outcome must be reached often enough that the pairs mean something; the floors
# are about a third of what the default run reaches.
FLOORS = {"clean": 0.2, "allow": 0.1, "deny": 0.2, "require_approval": 0.015,
          "request error": 0.1, "malformed": 0.03, "rules": 0.18, "redaction": 0.03,
          "masked": 0.012, "warning": 0.04, "label": 0.03, "shadow": 0.025, "approvers": 0.05}


def test_compiled_equals_reference() -> None:
    stats: collections.Counter[str] = collections.Counter()
    base = int(SEED or 0)
    for seed in range(base, base + EXAMPLES):
        check(seed, stats)
    print(f"\ndifferential: {stats['pairs']} (policy, request) pairs compared, "
          f"{EXAMPLES} policies; " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    assert stats["pairs"] >= TARGET_PAIRS, stats
    if TARGET_PAIRS >= 10_000:  # a short run (one seed) proves nothing about coverage
        low = {k: stats[k] / stats["pairs"] for k, floor in FLOORS.items()
               if stats[k] < floor * stats["pairs"]}
        assert not low, f"outcomes reached too rarely: {low}"
