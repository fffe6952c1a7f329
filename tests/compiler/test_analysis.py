"""Static analysis (charter.compiler.analysis, docs/analysis.md).

tests/corpus/analysis/*.agentpolicy — each file starts with
    # expect: CODE LINE[, CODE LINE...]     (or `# expect: none`)
    # options: conflicts | style             (optional)
and must produce exactly those findings (code and primary line), each with a related span and
either `status: proved` or a witness that `Policy.decide` and `Policy.interpret` decide as
the finding says.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

import charter
from charter import analysis
from charter.compiler.analysis import Finding, Options, render
from charter.compiler.analysis.smt import available as smt_available
from charter.engine.snapshot import Snapshot
from charter.language.source import Source

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "analysis"
EXPECT = re.compile(r"#\s*expect:\s*(.*)")
OPTIONS = re.compile(r"#\s*options:\s*(.*)")


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.agentpolicy"))


def _analyze(text: str, name: str = "policy.agentpolicy", conflicts: bool = False,
             style: bool = False) -> analysis.Analyzed:
    return analysis.analyze_sources([Source(name, text)], Options(conflicts=conflicts),
                                    style=style)


def _replay(policy: charter.Policy, f: Finding) -> None:
    """The witness decided again, by both evaluators: the effect and rules it recorded."""
    assert f.witness is not None
    state = Snapshot(labels=frozenset(f.witness.labels),
                     approved_groups=frozenset(f.witness.approved))
    for decision in (policy.decide(f.witness.request, state),
                     policy.interpret(f.witness.request, state)):
        assert decision.effect == f.witness.effect, (f.code, f.witness)
        assert decision.rules == f.witness.rules, (f.code, f.witness)


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_corpus_file_gives_exactly_its_findings(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    m = EXPECT.search(text)
    assert m, f"{path.name}: no `# expect:` line"
    expected = set() if m.group(1).strip() == "none" else {
        (code, int(line)) for code, line in
        (item.split() for item in m.group(1).split(","))}
    opts = OPTIONS.search(text)
    flags = opts.group(1).split() if opts else []
    result = _analyze(text, path.name, "conflicts" in flags, "style" in flags)
    assert not result.compilation.errors
    got = {(f.code, f.span.line) for f in result.findings}
    assert got == expected, "\n\n".join(render.text(result.findings, result.sources).split("\n\n"))
    policy = charter.Policy(result.compilation.raise_for_errors())
    for f in result.findings:
        assert f.related, f.code  # A-AC5: a primary and a related span
        assert f.status in ("proved", "witnessed")
        if f.witness is not None:
            _replay(policy, f)


def test_every_code_has_a_corpus_file() -> None:
    from charter.compiler.analysis.codes import TITLES

    names = " ".join(p.stem for p in _corpus())
    missing = [c for c in TITLES if c.lower() not in names and c not in (
        "W0602", "W0603", "W0604", "I0599")]
    assert not missing


def test_a_corpus_witness_is_a_real_request() -> None:
    result = _analyze((CORPUS / "w0503_allow_overridden.agentpolicy").read_text())
    (f,) = result.findings
    assert f.witness is not None
    assert f.witness.request["args"]["region"] == "us-east-1"
    assert f.witness.effect == "deny" and set(f.witness.rules) >= {"export-us", "eu-only"}
    assert f.related[0].span.line == 10 and "denied here" in f.related[0].message


def test_text_json_and_sarif_carry_the_same_findings() -> None:
    paths = [p for p in _corpus() if "negative" not in p.name]
    findings: list[Finding] = []
    for p in paths:
        findings.extend(_analyze(p.read_text(), p.name, conflicts=True).findings)
    as_json = render.to_json(findings)
    sarif = render.sarif(findings)
    results = sarif["runs"][0]["results"]
    text = render.text(findings, {})
    assert len(as_json) == len(results) == len(findings) == text.count("]")  - text.count("[]")
    for f, j, s in zip(findings, as_json, results, strict=True):
        assert j["code"] == s["ruleId"] == f.code
        assert j["span"]["line"] == s["locations"][0]["physicalLocation"]["region"]["startLine"]
        assert len(j["related"]) == len(s["relatedLocations"]) == len(f.related) >= 1
        assert f"{f.span}: {f.severity}[{f.code}]" in text
    json.dumps(sarif)  # serialisable as it stands
    assert sarif["version"] == "2.1.0"


def test_inexact_atoms_are_inconclusive_never_warnings() -> None:
    text = """policy "p"
default deny
tool "a" (s: str)
allow tool "a" when startswith(args.s, "x") and endswith(args.s, "y") and len(args.s) == 1
"""
    found = _analyze(text).findings
    assert [f.code for f in found] == ["I0599"]
    assert found[0].severity == "info" and "startswith" in found[0].message


def test_suppress_needs_a_reason() -> None:
    text = """policy "p"
default deny
tool "a" (n: int)
allow tool "a" when args.n < 5
@suppress("W0505")
deny tool "a" when args.n > 10 because "x"
deny tool "a" when args.n > 20 because "x"
"""
    codes = sorted(f.code for f in _analyze(text, style=True).findings)
    assert codes == ["W0505", "W0604"]


# ── semantic diff (A-AC6) ────────────────────────────────────────────────────


@pytest.mark.parametrize("example", ["support", "finance", "coding"])
def test_diff_of_a_policy_with_itself_is_all_equivalent(example: str) -> None:
    result = analysis.diff(ROOT / "examples" / example, ROOT / "examples" / example)
    assert result.cells and all(c.verdict == "equivalent" for c in result.cells)
    assert not result.loosens
    assert not (result.rules_added or result.rules_removed or result.rules_changed)


@pytest.mark.parametrize("example", ["support", "finance", "coding"])
def test_adding_one_allow_loosens_exactly_one_cell(example: str, tmp_path: Path) -> None:
    old = ROOT / "examples" / example / "policy.agentpolicy"
    new = tmp_path / "policy.agentpolicy"
    new.write_text(old.read_text() + '\n@id("added")\nallow tool "brand.new.tool"\n')
    result = analysis.diff(old, new)
    changed = [c for c in result.cells if c.verdict != "equivalent"]
    assert [(c.stage, c.tool, c.verdict) for c in changed] == [
        ("tool_call", "brand.new.tool", "loosens")]
    w = changed[0].loosen
    assert w is not None and (w.old, w.new) == ("deny", "allow")
    assert charter.load(new).decide(w.request).effect == "allow"
    assert charter.load(old).decide(w.request).effect == "deny"
    assert result.rules_added == ["added"]


def test_diff_tightening_and_changes() -> None:
    base = 'policy "p"\ndefault deny\ntool "pay" (amount: int)\n'
    old = charter.compile(base + 'allow tool "pay" when args.amount < 100\n')
    tighter = charter.compile(base + 'allow tool "pay" when args.amount < 50\n')
    shifted = charter.compile(base + 'allow tool "pay" when args.amount < 100 and '
                              'args.amount > 10\nallow tool "pay" when args.amount == 200\n')
    (cell,) = [c for c in analysis.diff(old, tighter).cells if c.verdict != "equivalent"]
    assert cell.verdict == "tightens" and cell.tighten is not None
    assert cell.tighten.request["args"]["amount"] in range(50, 100)
    (cell,) = [c for c in analysis.diff(old, shifted).cells if c.verdict != "equivalent"]
    assert cell.verdict == "changes" and cell.loosen and cell.tighten


# ── generated policies: every witness reproduces (A-AC1) ─────────────────────

_FIELDS = [("amount", "int"), ("currency", "str"), ("region", "str")]
_STRS = ["USD", "EUR", "JPY", "eu-west-1", "us-east-1"]


def _cond(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 2)):
        name, kind = rng.choice(_FIELDS)
        if kind == "int":
            parts.append(f"args.{name} {rng.choice(['<', '<=', '>', '>=', '==', '!='])} "
                         f"{rng.choice([0, 10, 50, 100, 500])}")
        elif rng.random() < 0.5:
            parts.append(f'args.{name} {rng.choice(["==", "!="])} "{rng.choice(_STRS)}"')
        else:
            picked = ", ".join(f'"{s}"' for s in rng.sample(_STRS, 2))
            parts.append(f"args.{name} {rng.choice(['in', 'not in'])} {{{picked}}}")
    return " and ".join(parts)


def generated_policy(seed: int) -> str:
    """A small policy with overlapping conditions on a few tools (seeded)."""
    rng = random.Random(seed)
    lines = [f'policy "gen-{seed}"', f"default {rng.choice(['deny', 'deny', 'allow'])}"]
    tools = ["pay", "refund", "export"]
    for t in tools:
        lines.append(f'tool "{t}" (amount: int, currency: str, region: str, note?: str)'
                     + (" tags money" if t != "export" else ""))
    for i in range(rng.randint(2, 7)):
        kind = rng.choice(["allow", "allow", "deny", "require approval from \"f\""])
        target = rng.choice([f'tool "{rng.choice(tools)}"', "tool tagged money", 'tool "*"'])
        cond = f" when {_cond(rng)}" if rng.random() < 0.8 else ""
        because = ' because "r"' if kind == "deny" else ""
        lines.append(f'@id("r{i}")\n{kind} {target}{cond}{because}')
    return "\n".join(lines) + "\n"


def test_every_witness_of_generated_policies_reproduces() -> None:
    count = int(os.environ.get("CHARTER_ANALYSIS_POLICIES", "150"))
    witnessed = 0
    for seed in range(count):
        result = _analyze(generated_policy(seed), conflicts=True)
        assert not result.compilation.errors, generated_policy(seed)
        policy = charter.Policy(result.compilation.raise_for_errors())
        for f in result.findings:
            if f.witness is not None:
                _replay(policy, f)
                witnessed += 1
    assert witnessed >= count  # the generator does make anomalies


def test_proved_inclusions_hold_on_sampled_requests() -> None:
    """A proved W0503/W0504/W0505/W0506: 200 requests inside the smaller rule's region
    (biased to its constants), and the larger rule matches each."""
    rng = random.Random(7)
    checked = 0
    for seed in range(60):
        result = _analyze(generated_policy(seed))
        policy = charter.Policy(result.compilation.raise_for_errors())
        by_id = {r.id: r for r in policy.rules}
        for f in result.findings:
            if f.code not in ("W0503", "W0504", "W0505", "W0506") or f.status != "proved":
                continue
            small = by_id[f.rule or ""]
            big = _related_rule(f, policy) if "no rule allows" not in f.message else None
            for _ in range(200):
                req = _sample(rng, f)
                d = policy.interpret(req)
                if small.id not in d.rules:
                    continue
                if big is not None:
                    assert big.id in d.rules, (f.message, req, d)
                if f.code in ("W0503", "W0506"):
                    assert d.effect == "deny", (f.message, req, d)
            checked += 1
    assert checked


def _related_rule(f: Finding, policy: charter.Policy) -> Any:
    line = f.related[0].span.line
    return next(r for r in policy.rules if r.line == line or r.line + 1 == line)


def _sample(rng: random.Random, f: Finding) -> dict[str, Any]:
    assert f.witness is not None
    req = json.loads(json.dumps(f.witness.request, default=str))
    args = req.setdefault("args", {})
    if isinstance(args, dict):
        args["amount"] = rng.choice([-1, 0, 1, 9, 10, 11, 49, 50, 51, 99, 100, 101, 499, 500,
                                     501, 10**6])
        args["currency"] = rng.choice([*_STRS, "GBP"])
        args["region"] = rng.choice([*_STRS, "ap-south-1"])
    return req


# ── seeded recall on the examples (A-AC2, exact fragment) ────────────────────

SEEDS = {
    "W0501": '@id("seed")\nallow tool "{tool}" when args.seeded > 10 and args.seeded < 5\n',
    "W0503": '@id("seed")\nallow tool "{tool}" when args.seeded == "x"\n'
             '@id("seed-deny")\ndeny tool "{tool}" when args.seeded != "y" because "no"\n',
    "W0504": '@id("seed-wide")\nallow tool "{tool}" when args.seeded > 0\n'
             '@id("seed")\nallow tool "{tool}" when args.seeded > 100\n',
    "W0505": '@id("seed-wide")\ndeny tool "{tool}" when args.seeded > 0 because "s"\n'
             '@id("seed")\ndeny tool "{tool}" when args.seeded > 100 because "s"\n',
    "W0506": '@id("seed-cap")\ndeny tool "{tool}" when args.seeded > 10 because "s"\n'
             '@id("seed")\nrequire approval from "g" tool "{tool}" when args.seeded > 20\n',
}


@pytest.mark.parametrize("example", ["support", "finance", "coding"])
@pytest.mark.parametrize("code", sorted(SEEDS))
def test_seeded_anomalies_are_found(example: str, code: str) -> None:
    src = (ROOT / "examples" / example / "policy.agentpolicy").read_text()
    tool = "zz.seeded.tool"
    kind = "str" if '"x"' in SEEDS[code] else "int"
    text = f'{src}\ntool "{tool}" (seeded: {kind})\n' + SEEDS[code].format(tool=tool)
    result = _analyze(text)
    assert not result.compilation.errors
    found = [f for f in result.findings if f.rule == "seed" and f.code != "W0509"]
    assert [f.code for f in found] == [code], [f.message for f in found]
    assert found[0].status in ("proved", "witnessed")


# ── the commands ─────────────────────────────────────────────────────────────


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from charter.cli.main import cli

    return CliRunner().invoke(cli, list(args))


def test_analyze_command_text_json_sarif_and_strict() -> None:
    path = str(CORPUS / "w0503_allow_overridden.agentpolicy")
    out = _cli("analyze", path)
    assert out.exit_code == 0, out.output
    assert "warning[W0503]" in out.output and "note: denied here" in out.output
    assert 'call "export" {region: "us-east-1", table: "a"}' in out.output  # the test block
    assert _cli("analyze", "--strict", path).exit_code == 1
    data = json.loads(_cli("analyze", "--format", "json", path).output)
    (f,) = data["findings"]
    assert f["code"] == "W0503" and f["related"] and f["witness"]["decision"]["effect"] == "deny"
    sarif = json.loads(_cli("analyze", "--format", "sarif", path).output)
    assert sarif["runs"][0]["results"][0]["relatedLocations"]
    assert _cli("analyze", "--ignore", "W0503", "--strict", path).exit_code == 0


def test_pasted_test_block_passes(tmp_path: Path) -> None:
    src = (CORPUS / "w0503_allow_overridden.agentpolicy").read_text()
    result = _analyze(src)
    from charter.cli.analyze import test_block

    block = test_block(result.findings[0])
    assert block is not None
    (tmp_path / "policy.agentpolicy").write_text(src)
    (tmp_path / "policy_test.agentpolicy").write_text(block + "\n")
    out = _cli("test", str(tmp_path))
    assert out.exit_code == 0, out.output


def test_lint_adds_style_rules() -> None:
    path = str(CORPUS / "w0601_deny_without_because.agentpolicy")
    assert "W0601" not in _cli("analyze", path).output
    assert "warning[W0601]" in _cli("lint", path).output


def test_diff_command_exits_1_on_loosening(tmp_path: Path) -> None:
    old = tmp_path / "old.agentpolicy"
    new = tmp_path / "new.agentpolicy"
    old.write_text('policy "p"\ndefault deny\ntool "a" (n: int)\nallow tool "a" when args.n < 5\n')
    new.write_text(old.read_text() + 'allow tool "a" when args.n == 7\n')
    out = _cli("diff", "--semantic", str(old), str(new))
    assert out.exit_code == 1, out.output
    assert 'tool_call "a": loosens' in out.output and "deny -> allow" in out.output
    assert _cli("diff", "--semantic", "--allow-loosen", str(old), str(new)).exit_code == 0
    assert _cli("diff", "--semantic", str(new), str(old)).exit_code == 0  # tightens
    same = _cli("diff", "--semantic", "--format", "json", str(old), str(old))
    assert not json.loads(same.output)["loosens"]


# ── the solver back end (A-AC2, A-AC4) ───────────────────────────────────────

needs_z3 = pytest.mark.skipif(not smt_available(),
                              reason="z3-solver is not installed (pip install -e '.[test]')")


def _pair_cond(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        return "has(args.note)" if rng.random() < 0.5 else f'args.note == "{rng.choice(_STRS)}"'
    if roll < 0.3:
        return f'args.region like "{rng.choice(["eu-*", "*-1", "us-*"])}"'
    return _cond(rng)


@needs_z3
def test_exact_fragment_and_z3_agree_on_generated_pairs() -> None:
    """Both engines give the same emptiness for a∧b, a∧¬b and ¬a∧b on every exact pair, and
    every z3 model, decided by the interpreter, lands in the part it claims."""
    from charter.compiler.analysis.regions import Regions
    from charter.compiler.analysis.smt import Solver

    rng = random.Random(17)
    kinds = ["allow", "deny", 'require approval from "f"']
    wanted = int(os.environ.get("CHARTER_SMT_PAIRS", "300"))  # 2,000 for A-AC2
    pairs = 0
    while pairs < wanted:
        rules = [f'{rng.choice(kinds)} tool "pay" when {_pair_cond(rng)}'
                 f'{" and " + _pair_cond(rng) if rng.random() < 0.4 else ""}' for _ in range(2)]
        text = ('policy "p"\ndefault deny\n'
                'tool "pay" (amount: int, currency: str, region: str, note?: str)\n'
                + "\n".join(rules) + "\n")
        policy = charter.compile(text)
        regions = Regions(policy.compiled.ir, policy.compiled.tree)
        cell = regions.cells_of[0][0]
        rel = regions.relate(0, 1, cell, full=True)
        if not rel.exact:
            continue
        pairs += 1
        solver = Solver(policy.compiled.ir)
        for (answer, point), part, want in (
                (solver.both(0, 1), rel.both, (True, True)),
                (solver.a_not_b(0, 1), rel.a_only, (True, False)),
                (solver.a_not_b(1, 0), rel.b_only, (False, True))):
            assert (answer == "unsat") == (part is None), (text, answer, part)
            if point is not None:
                oa, ob = regions.outcomes((0, 1), point, cell)
                got = (regions.matched(0, oa, point), regions.matched(1, ob, point))
                assert got == want, (text, point)
    assert pairs == wanted


@needs_z3
def test_the_solver_proves_and_refutes_what_samples_cannot() -> None:
    base = 'policy "p"\ndefault deny\ntool "a" (s: str)\n'
    never = base + ('allow tool "a" when startswith(args.s, "x") and endswith(args.s, "y") '
                    "and len(args.s) == 1\n")
    z3_opts = Options(solver="z3")
    found = analysis.analyze_sources([Source("p.agentpolicy", never)], z3_opts).findings
    assert [(f.code, f.status) for f in found] == [("W0501", "proved")]
    over = base + ('@id("ab")\nallow tool "a" when startswith(args.s, "ab")\n'
                   '@id("a")\ndeny tool "a" when startswith(args.s, "a") because "no"\n')
    found = analysis.analyze_sources([Source("p.agentpolicy", over)], z3_opts).findings
    assert [(f.code, f.rule, f.status) for f in found] == [("W0503", "ab", "proved")]
    # no sample starts with "zz", ends with "q" and is longer than 3; the solver finds one
    fires = base + ('allow tool "a" when startswith(args.s, "zz") and endswith(args.s, "q") '
                    "and len(args.s) > 3\n")
    assert [f.code for f in _analyze(fires).findings] == ["I0599"]
    assert analysis.analyze_sources([Source("p.agentpolicy", fires)], z3_opts).findings == []


@needs_z3
def test_solver_timeouts_and_unsupported_atoms_are_inconclusive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from charter.compiler.analysis import smt

    text = ('policy "p"\ndefault deny\ntool "a" (s: str)\nallow tool "a" when '
            'startswith(args.s, "zz") and endswith(args.s, "q") and len(args.s) > 3\n')
    monkeypatch.setattr(smt.Solver, "check", lambda self, *t, enc: ("unknown", None))
    (f,) = analysis.analyze_sources([Source("p.agentpolicy", text)], Options(solver="z3",
                                    timeout_ms=5)).findings
    assert f.code == "I0599" and "gave up within 5 ms" in f.message
    monkeypatch.undo()
    lower = ('policy "p"\ndefault deny\ntool "a" (s: str)\n'
             'allow tool "a" when lower(args.s) == "Q"\n')
    (f,) = analysis.analyze_sources([Source("p.agentpolicy", lower)],
                                    Options(solver="z3")).findings
    assert f.code == "I0599" and "lower(...)" in f.message


@needs_z3
def test_solver_findings_reproduce() -> None:
    """Policies only the solver decides (string functions, sums): every witness replays, and
    no suspected finding is a warning without a proof."""
    from benchmarks.analysis import string_policy

    proved = 0
    for seed in range(25):
        result = analysis.analyze_sources([Source("s.agentpolicy", string_policy(seed))],
                                          Options(solver="z3"))
        policy = charter.Policy(result.compilation.raise_for_errors())
        for f in result.findings:
            assert f.status in ("proved", "witnessed") or f.severity == "info"
            proved += f.status == "proved"
            if f.witness is not None:
                _replay(policy, f)
    assert proved


def test_witnesses_of_the_differential_generator_reproduce() -> None:
    """The differential test's policies (tagged tools, servers, nested args, tool.name in
    conditions, strict args, model stages): every witness replays exactly. The seeds are
    ones that once recorded a cell's tool under another tool's name; CHARTER_ANALYSIS_RICH=N
    runs the first N seeds instead."""
    from tests.compiler.test_differential import Policies, render

    extra = int(os.environ.get("CHARTER_ANALYSIS_RICH", "0"))
    seeds = range(extra) if extra else (98, 282)
    for seed in seeds:
        text = render(*Policies(random.Random(seed)).policy())
        result = _analyze(text, conflicts=True)
        assert not result.compilation.errors, text
        policy = charter.Policy(result.compilation.raise_for_errors())
        for f in result.findings:
            if f.witness is not None:
                _replay(policy, f)
