"""Counter ids come from what a counter counts (or its rule's `@id`), never from where its rule
stands or what its limit is (issue 12, L-C3; `charter.compiler.counter_ids`)."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import charter
from charter.cli.golden import GoldenError, snapshot
from charter.engine import ir
from charter.engine.tree import dumps, loads

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CHARTER_FUZZ_EXAMPLES", "60"))
HEAD = """policy "ids"
default deny
tool "spend" (amount: decimal) tags money
tool "web.fetch" (url: str) tags external
tool "kb.read" (query: str)
"""
# Each item's `because` names it: the reason is no part of a counter's content.
COUNTED = [
    'limit calls(tool "web.fetch") <= 3 per 1h because "c-hourly"',
    'limit calls(tool "web.fetch") <= 5 per 1d per agent.id because "c-daily-agent"',
    'budget cost_usd <= 2.00 per 1d per agent.id because "c-cost"',
    'budget tokens <= 100 per 1h because "c-tokens"',
    'budget cost_usd <= 1.00 per session because "c-session"',
    'limit calls(tool tagged money) <= 2 per turn because "c-turn"',
    'scope tool "spend" when args.amount > 10 {\n'
    '  limit calls(tool "spend") <= 4 per 1h because "c-scoped"\n}',
    '@id("pinned") limit calls(tool "kb.read") <= 9 per 1h because "c-pinned"',
    'scope agent.team in {"a", "b", "c", "d"} {\n'
    '  budget cost_usd <= 3.00 per 1d per agent.id because "c-team"\n}',
]
UNRELATED = [
    'allow tool "kb.read"',
    'allow tool "web.fetch" when args.url like "https://*"',
    'deny tool "spend" when args.amount > 1000 because "too much"',
    'require approval from "finance" tool "spend" when args.amount > 100',
    'on tool_result allow tool "**"',
    'on tool_result label session "seen" when result contains pii.email',
    'warn tool tagged external when agent.team == "ops"',
    'deny tool "kb.read" when "x" in session.labels',
    'scope tool "spend" {\n  allow when agent.team == "finance"\n}',
    'limit calls(tool "kb.read") <= 50 per 1m because "u-other-limit"',
]


def _source(items: list[str]) -> str:
    return HEAD + "use pii\n" + "\n".join(items) + "\n"


def ids_by_reason(policy: charter.Policy) -> dict[str, str]:
    """The counter id of every tool-call counter, by its rule's `because`."""
    out: dict[str, str] = {}
    for spec in policy.ir.counters:
        if spec.stage == "tool_call":
            because = policy.ir.rules[spec.rule].because
            assert because is not None and because not in out
            out[because] = spec.id
    return out


@st.composite
def edits(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A policy, and the same policy after unrelated rules were inserted, removed and every
    rule reordered."""
    kept = draw(st.lists(st.sampled_from(UNRELATED), unique=True, max_size=5))
    before = [*COUNTED, *kept]
    before = draw(st.permutations(before))
    removed = draw(st.lists(st.sampled_from(kept), unique=True)) if kept else []
    after = [item for item in before if item not in removed]
    for extra in draw(st.lists(st.sampled_from(UNRELATED), max_size=4)):
        after.insert(draw(st.integers(0, len(after))), extra)
    return before, draw(st.permutations(after))


@settings(max_examples=EXAMPLES, deadline=None, derandomize="CHARTER_FUZZ_EXAMPLES" not in
          os.environ)
@given(edits())
def test_unrelated_edits_leave_every_counter_id_unchanged(case: tuple[list[str], list[str]]
                                                          ) -> None:
    before, after = case
    old = ids_by_reason(charter.compile(_source(before)))
    new = ids_by_reason(charter.compile(_source(after)))
    theirs = {k: v for k, v in new.items() if k.startswith("u-")}
    assert {k: v for k, v in new.items() if k.startswith("c-")} == {
        k: v for k, v in old.items() if k.startswith("c-")}
    assert len(old) >= len(COUNTED) and len(new) == len(COUNTED) + len(theirs)


def test_ids_name_metric_and_window_and_never_a_position() -> None:
    ids = ids_by_reason(charter.compile(_source(COUNTED)))
    assert ids["c-session"] == "session:cost_usd"
    assert ids["c-pinned"] == "calls:1h:@pinned"
    assert ids["c-hourly"].startswith("calls:1h:") and ids["c-turn"].startswith("calls:turn:")
    assert ids["c-cost"].startswith("cost_usd:1d:") and ids["c-tokens"].startswith("tokens:1h:")
    assert len(set(ids.values())) == len(ids)  # different content, different counters
    hashes = [i.rsplit(":", 1)[1] for k, i in ids.items() if k not in ("c-session", "c-pinned")]
    assert all(len(h) == 12 and int(h, 16) >= 0 for h in hashes)


def _one(item: str) -> str:
    return ids_by_reason(charter.compile(_source([item])))["c"]


def test_changing_the_limit_or_the_effect_keeps_the_id() -> None:
    base = _one('limit calls(tool "web.fetch") <= 3 per 1h because "c"')
    assert _one('limit calls(tool "web.fetch") <= 30 per 1h because "c"') == base
    assert _one('limit calls(tool "web.fetch") <= 3 per 1h then require approval from "ops" '
                'because "c"') == base
    assert _one('limit calls(tool "web.fetch") <= 3 per 1h then warn because "c"') == base
    cost = _one('budget cost_usd <= 2.00 per 1d per agent.id because "c"')
    assert _one('budget cost_usd <= 2.50 per 1d per agent.id because "c"') == cost


def test_changing_what_is_counted_starts_a_new_counter() -> None:
    base = _one('limit calls(tool "web.fetch") <= 3 per 1h because "c"')
    changed = [
        'limit calls(tool "web.fetch") <= 3 per 2h because "c"',
        'limit calls(tool "kb.read") <= 3 per 1h because "c"',
        'limit calls(tool tagged external) <= 3 per 1h because "c"',
        'limit calls(tool "web.fetch") <= 3 per 1h per agent.id because "c"',
        'scope agent.team == "x" {\n  limit calls(tool "web.fetch") <= 3 per 1h because "c"\n}',
    ]
    ids = [_one(item) for item in changed]
    assert base not in ids and len(set(ids)) == len(ids)
    assert _one('scope agent.team == "x" {\n  limit calls(tool "web.fetch") <= 3 per 1h '
                'because "c"\n}') != _one('scope agent.team == "y" {\n  limit calls(tool '
                                          '"web.fetch") <= 3 per 1h because "c"\n}')


def test_an_id_annotation_pins_the_counter_across_changes_of_what_it_counts() -> None:
    pinned = [
        '@id("mail") limit calls(tool "web.fetch") <= 3 per 1h because "c"',
        '@id("mail") limit calls(tool "kb.read", "web.fetch") <= 7 per 1h per agent.id '
        'because "c"',
        'scope agent.team == "x" {\n  @id("mail") limit calls(tool "web.fetch") <= 3 per 1h '
        'because "c"\n}',
    ]
    assert {_one(item) for item in pinned} == {"calls:1h:@mail"}
    # A window of another length is another count: the id says so.
    assert _one('@id("mail") limit calls(tool "web.fetch") <= 3 per 1d because "c"') == (
        "calls:1d:@mail")


def test_target_order_and_file_layout_do_not_matter() -> None:
    one = _one('limit calls(tool "kb.read", "web.fetch") <= 3 per 1h because "c"')
    assert _one('limit calls(tool "web.fetch", "kb.read") <= 3 per 1h because "c"') == one
    split = charter.compile(_source(['allow tool "kb.read"'] * 3 + [
        'limit calls(tool "kb.read", "web.fetch") <= 3 per 1h because "c"']), "other.agentpolicy")
    assert ids_by_reason(split)["c"] == one


def test_rules_with_the_same_content_share_one_counter() -> None:
    """The documented disambiguation: identical content counts identical calls."""
    policy = charter.compile(_source([
        'limit calls(tool "web.fetch") <= 3 per 1h because "c1"',
        'allow tool "web.fetch"',
        'limit calls(tool "web.fetch") <= 5 per 1h then warn because "c2"',
    ]))
    ids = ids_by_reason(policy)
    assert ids["c1"] == ids["c2"]
    guard = charter.Guard(policy, clock=lambda: 1_800_000_600.0)
    request = {"tool": "web.fetch", "args": {"url": "u"}, "session": {"id": "s"}}
    effects = [guard.check(request) for _ in range(5)]
    # Charged once per call (not once per rule): three allowed, then the tighter limit bites.
    assert [d.allowed for d in effects] == [True, True, True, False, False]


def test_session_budgets_have_counter_specs_with_their_scope() -> None:
    policy = charter.compile(_source([
        'allow tool "spend"',
        'scope tool "spend" when args.amount > 10 {\n'
        '  budget cost_usd <= 1.00 per session because "c"\n}',
        'budget tokens <= 500 per session because "t"',
    ]))
    specs = [s for s in policy.ir.counters if s.session_total]
    cost = next(s for s in specs if s.metric == "cost_usd")
    assert (cost.id, cost.window, cost.key, cost.limit) == ("session:cost_usd", None, None,
                                                            Decimal("1.00"))
    assert cost.targets == (ir.Target(("spend",), None),) and cost.stage == "tool_call"
    assert isinstance(cost.scope, ir.Cmp) and cost.scope.op == ">"
    assert policy.ir.rules[cost.rule].because == "c"
    # A budget naming no tool caps model calls too: one spec per stage, one counter.
    tokens = [s for s in specs if s.metric == "tokens"]
    assert sorted(s.stage for s in tokens) == ["model_input", "model_output", "tool_call"]
    assert {s.id for s in tokens} == {"session:tokens"} and all(s.scope is None for s in tokens)
    assert all(policy.ir.rules[s.rule].stage == s.stage for s in tokens)


def test_windowed_counters_carry_their_scope() -> None:
    policy = charter.compile(_source([COUNTED[6], COUNTED[0]]))
    scoped = next(s for s in policy.ir.counters if policy.ir.rules[s.rule].because == "c-scoped")
    plain = next(s for s in policy.ir.counters if policy.ir.rules[s.rule].because == "c-hourly")
    assert plain.scope is None and not plain.session_total
    rule = policy.ir.rules[scoped.rule]
    assert isinstance(rule.cond, ir.BoolOp) and rule.cond.items[:-1] == (scoped.scope,)


def test_counter_specs_survive_the_saved_policy_format() -> None:
    policy = charter.compile(_source(COUNTED))
    assert any(s.scope is not None for s in policy.ir.counters)
    assert any(s.session_total for s in policy.ir.counters)
    back = loads(dumps(policy.compiled))
    assert back.ir.counters == policy.ir.counters
    team = next(s for s in back.ir.counters if back.ir.rules[s.rule].because == "c-team")
    assert isinstance(team.scope, ir.In) and isinstance(team.scope.coll, ir.Const)
    assert type(team.scope.coll.value) is frozenset


def test_ids_are_the_same_in_every_process() -> None:
    """Set constants in a scope hash in sorted order, whatever PYTHONHASHSEED says."""
    code = ("import charter, sys; from compiler.test_counter_ids import COUNTED, _source, "
            "ids_by_reason; print(sorted(ids_by_reason(charter.compile(_source(COUNTED)))"
            ".items()))")
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True, cwd=ROOT)
        outs.add(run.stdout)
    here = sorted(ids_by_reason(charter.compile(_source(COUNTED))).items())
    assert outs == {f"{here}\n"}


def test_golden_state_names_windowed_counters_only() -> None:
    """A per-session budget reads the request's `session.cost_usd`: golden `state.counters`
    cannot fill it (and says so) now that it has a CounterSpec too."""
    policy = charter.compile(_source([
        '@id("daily") budget cost_usd <= 2.00 per 1d per agent.id because "d"',
        '@id("sess") budget cost_usd <= 1.00 per session because "s"']))
    request = {"tool": "spend", "agent": {"id": "bot"}, "session": {"id": "s1"}}
    snap = snapshot(policy, request, {"counters": {"daily": 1}})
    assert snap is not None and dict(snap.counters) == {("cost_usd:1d:@daily", "bot"): Decimal(1)}
    with pytest.raises(GoldenError, match="no windowed budget or limit has the id 'sess'"):
        snapshot(policy, request, {"counters": {"sess": 1}})


def test_the_id_scheme_itself_does_not_drift() -> None:
    """These values are what running deployments have in their stores: a change here makes
    every such counter start from zero on upgrade. If the change is meant, update them and
    say so where the release is described (docs/state.md, "Counter ids")."""
    assert _one('limit calls(tool "web.fetch") <= 3 per 1h because "c"') == (
        "calls:1h:0760acbbfa14")
    assert _one('budget cost_usd <= 2.00 per 1d per agent.id because "c"') == (
        "cost_usd:1d:5b95596c9425")
    assert _one('limit calls(tool tagged money) <= 2 per turn because "c"') == (
        "calls:turn:61f332e953cc")


def test_semantic_diff_lists_the_counters_that_restart() -> None:
    """`charter diff --semantic`'s `counters_reset`: the old ids the new policy lacks — not a
    counter whose limit changed, nor one moved among other rules."""
    from charter.analysis import diff

    old = charter.compile(_source([COUNTED[0], COUNTED[2], COUNTED[7], COUNTED[4]]))
    moved = charter.compile(_source([UNRELATED[0], COUNTED[4], COUNTED[7],
                                     COUNTED[2].replace("2.00", "2.50"), COUNTED[0]]))
    assert diff(old, moved).counters_reset == []
    windows = charter.compile(_source([COUNTED[0].replace("1h", "2h"), COUNTED[2],
                                       COUNTED[7].replace('"kb.read"', '"web.fetch"')]))
    # A new window restarts the hourly count; the pinned one kept its id; the session budget
    # is gone, and its total with it.
    assert diff(old, windows).counters_reset == [ids_by_reason(old)["c-hourly"],
                                                 "session:cost_usd"]
