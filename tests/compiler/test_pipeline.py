"""The pipeline as a named stage list: every DESIGN §2 type, timings, stopping, dumps."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import charter
from charter.compiler.pipeline import STAGE_NAMES, STAGES, compile_sources
from charter.compiler.sources import discover
from charter.engine import ir
from charter.engine.plan import Plan
from charter.engine.tree import CompiledPolicy, DecisionTree
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.source import CompileError, Source

ROOT = Path(__file__).resolve().parents[2]
FINANCE = ROOT / "examples" / "finance"

POLICY = """policy "p"
default deny
const fee = 0.02
tool "pay" (amount: decimal) tags money
tool "read" (id: str) tags read
allow tool "pay" when args.amount * (1 + fee) <= 100
allow tool tagged read
deny tool "shell.*"
deny when agent.env == "prod" and hour_of(now) < 8
"""


def test_the_stages_in_order_make_every_design_type() -> None:
    assert STAGE_NAMES == ("parse", "check", "lower", "passes", "plan", "emit")
    comp = compile_sources([Source("p.agentpolicy", POLICY)])
    assert not comp.errors
    assert isinstance(next(iter(comp.sources.values())), Source)
    assert all(isinstance(m, ast.Module) for m in comp.modules)
    assert isinstance(comp.checked, CheckedPolicy)
    assert isinstance(comp.lowered, ir.Policy) and isinstance(comp.ir, ir.Policy)
    assert isinstance(comp.tree, DecisionTree)
    assert isinstance(comp.compiled, CompiledPolicy)
    assert comp.compiled.ir is comp.ir and comp.compiled.tree is comp.tree
    assert list(comp.timings) == list(STAGE_NAMES)
    assert all(t >= 0 for t in comp.timings.values())


def test_compiling_stops_after_the_first_stage_with_errors() -> None:
    comp = compile_sources([Source("p.agentpolicy", POLICY + 'deny tool "pay" when x > 1\n')])
    assert comp.errors and list(comp.timings) == ["parse", "check"]
    assert comp.ir is None and comp.compiled is None
    with pytest.raises(CompileError):
        comp.raise_for_errors()


def test_the_parser_recovers_so_syntax_and_type_errors_come_together() -> None:
    text = POLICY + "deny tool \"pay\" when args.amount >\ndeny tool \"pay\" when y > 1\n"
    comp = compile_sources([Source("p.agentpolicy", text)])
    codes = {d.code for d in comp.errors}
    assert len(codes) >= 2, codes  # a syntax error and an unknown name
    assert list(comp.timings) == ["parse", "check"]


def test_until_stops_at_a_stage() -> None:
    comp = compile_sources([Source("p.agentpolicy", POLICY)], until="plan")
    assert comp.tree is not None and comp.compiled is None
    assert list(comp.timings) == ["parse", "check", "lower", "passes", "plan"]
    with pytest.raises(ValueError, match="no stage"):
        compile_sources([Source("p.agentpolicy", POLICY)], until="codegen")


def test_a_stage_that_raises_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import charter.compiler.pipeline as pipeline

    def broken(policy: ir.Policy) -> DecisionTree:
        raise RuntimeError("planner bug")

    monkeypatch.setattr(pipeline, "plan", broken)
    comp = compile_sources([Source("p.agentpolicy", POLICY)])
    assert [d.code for d in comp.errors] == ["CH0500"]
    assert "planner bug" in comp.errors[0].message
    assert "emit" not in comp.timings


def test_the_constant_folding_pass_changes_no_decision() -> None:
    comp = compile_sources([Source("p.agentpolicy", POLICY)])
    assert comp.lowered is not None and comp.ir is not None
    assert comp.passes == [("fold-constants", True)]
    folded = comp.ir.rules[0].cond
    assert isinstance(folded, ir.Cmp) and isinstance(folded.left, ir.Arith)
    assert folded.left.right == ir.Const(Decimal("1.02"))  # was `1 + fee`
    unfolded, passed = charter.Policy(comp.lowered), charter.Policy(comp.ir)
    for amount in (0, 98, "98.04", "98.05", 1000, "x", None):
        req = {"tool": "pay", "args": {"amount": amount}}
        assert passed.decide(req) == unfolded.decide(req) == passed.interpret(req)


def test_folding_leaves_what_run_time_must_report() -> None:
    text = """policy "p"
default allow
deny tool "a" when args.n > 1 / 0
deny tool "b" when args.n > 1 / 3 and -(2) < args.n and not false
"""
    comp = compile_sources([Source("p.agentpolicy", text)])
    assert comp.ir is not None
    by_zero = comp.ir.rules[0].cond
    assert isinstance(by_zero, ir.Cmp) and isinstance(by_zero.right, ir.Arith)  # left as is
    third = comp.ir.rules[1].cond
    assert isinstance(third, ir.BoolOp)
    assert all(not isinstance(n, ir.Arith | ir.Neg | ir.Not) for n in ir.walk(third))
    policy = charter.Policy(comp.raise_for_errors())
    decision = policy.decide({"tool": "a", "args": {"n": 5}})
    assert decision.effect == "deny" and "division by zero" in " ".join(decision.reasons)
    assert policy.decide({"tool": "b", "args": {"n": 1}}).effect == "deny"
    assert policy.decide({"tool": "b", "args": {"n": 0}}).effect == "allow"


def test_the_tree_resolves_each_named_tool_as_the_planner_would() -> None:
    for folder in ("support", "coding", "finance"):
        policy = charter.load(ROOT / "examples" / folder)
        tree = policy.compiled.tree
        bare = Plan(policy.ir, DecisionTree(
            {s: type(t)(t.exact, t.globs, t.tagged, t.untargeted, {})
             for s, t in tree.stages.items()}, tree.matchers))
        assert tree.stages["tool_call"].tools
        for stage, t in tree.stages.items():
            for name, bucket in t.tools.items():
                assert bucket == bare.candidates(stage, name, bare.tags(name, ()))


def test_emit_covers_named_buckets_up_to_its_limit() -> None:
    from charter.compiler.emit import emit, reachable

    comp = compile_sources([Source("p.agentpolicy", POLICY)])
    assert comp.ir is not None and comp.tree is not None and comp.compiled is not None
    everything = list(reachable(comp.tree))
    assert [c.rules for c in comp.compiled.code] == everything
    assert all(c.source.startswith("def bucket(") for c in comp.compiled.code
               if any(comp.ir.rules[i].cond is not None for i in c.rules))
    few = emit(comp.ir, comp.tree, limit=1)
    assert len(few.code) == 1
    full, limited = charter.Policy(comp.compiled), charter.Policy(few)
    for req in ({"tool": "pay", "args": {"amount": 5}}, {"tool": "read"},
                {"tool": "shell.rm"}, {"tool": "other", "agent": {"env": "prod"}}):
        assert limited.decide(req) == full.decide(req)


# ── the command line ─────────────────────────────────────────────────────────

def _charter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "charter.cli.main", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


#: For each stage (and its value's name), text its dump of examples/finance must hold.
DUMPED = {
    "ast": ["Module examples/finance/policy.agentpolicy", "Header(name='finance-backoffice'",
            "ToolDecl(name='payment.create'"],
    "check": ["policy 'finance-backoffice'", "tools (6):", "payment.create(tenant: str",
              "rules (20, scopes flattened):", "pay-cfo-approval: require_approval"],
    "ir": ["rules (24):", "#1 pay: allow tool_call payment.create", "when (agent.team ==",
           "counters (7):"],
    "passes": ["fold-constants: changed the IR", "was (agent.team", "now (agent.team",
               "1.015"],
    "tree": ["stage tool_call:", "untargeted: (#6, #17, #18)", "exact names (4):",
             "tags (2):", "money -> (#7, #8, #9)", "invoice.read -> (#0, #6, #17, #18)"],
    "code": ["def bucket(req, st, name, tags, stage", "reached by tool_call payment.create",
             "# <- pay (examples/finance/policy.agentpolicy:37:3)", "return m"],
}
ALIASES = {"parse": "ast", "lower": "ir", "plan": "tree", "emit": "code"}


@pytest.mark.parametrize("stage", [*DUMPED, *ALIASES])
def test_compile_dumps_each_stage(stage: str) -> None:
    out = _charter("compile", "examples/finance", "--dump", stage)
    assert out.returncode == 0, out.stderr
    for text in DUMPED[ALIASES.get(stage, stage)]:
        assert text in out.stdout, (stage, text)


def test_compile_timings_name_every_stage(tmp_path: Path) -> None:
    out = _charter("compile", "examples/finance", "--timings", "-o", str(tmp_path / "f.charter"))
    assert out.returncode == 0, out.stderr
    for stage in (*STAGE_NAMES, "save", "total"):
        assert f"\n{stage:8} " in "\n" + out.stderr, stage


def test_compile_reports_errors_and_dumps_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.agentpolicy"
    bad.write_text('policy "b"\ndefault deny\ndeny tool "a" when nope > 1\n')
    out = _charter("compile", str(bad), "--dump", "ir")
    assert out.returncode == 1 and "error[" in out.stderr and not out.stdout


def test_dumps_work_on_each_stage_object() -> None:
    comp = compile_sources([Source(str(f), f.read_text()) for f in discover(FINANCE)])
    for stage in STAGES:
        assert stage.dump(comp).strip(), stage.name
