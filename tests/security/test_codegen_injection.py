"""Policy text and file names never become code in the host (issue 18, D1).

The attacks: a rule id, a policy file name or a tampered saved policy carrying Python source
that the code generator once pasted into the bucket function (into a comment, or as a
check/function name). Each test plants a payload that would create a marker file and checks
that nothing ran, that the policy still decides as written, and where the text is policy text,
that `charter.compile` rejects it with a diagnostic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

import charter
from charter import Policy
from charter.compiler.pipeline import compile_sources
from charter.engine import emit as codegen
from charter.engine import ir
from charter.language.source import Source

REQ = {"tool": "a", "args": {"x": 1}}


def _emit_error() -> type[Exception]:
    from charter.engine.emitcheck import EmitError  # imported late: main had no such module

    return EmitError


def _payload(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def _codes(text: str, name: str = "p.agentpolicy") -> list[str]:
    return [d.code for d in compile_sources([Source(name, text)]).errors]


def test_rule_id_with_code_is_a_diagnostic_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'@id("x\\n    {_payload(marker)} #")\ndeny tool "a" when args.x == 1\n'
    with pytest.raises(charter.CompileError) as err:
        charter.compile(text).decide(REQ)
    assert [d.code for d in err.value.diagnostics] == ["CH0113"]
    assert (err.value.diagnostics[0].span.line, err.value.diagnostics[0].span.col) == (1, 5)
    assert not marker.exists()


def test_rule_id_cannot_disable_its_bucket() -> None:
    # `return 0` in the function body would have made every deny rule of the bucket silent.
    assert _codes('@id("x\\n    return 0 #")\ndeny tool "a" when args.x == 1\n') == ["CH0113"]


@pytest.mark.parametrize("note", ["id", "owner", "doc", "severity"])
@pytest.mark.parametrize("char", ["\\n", "\\r", "\\t", "\\u0000", "\\u001b", "\\u2028", "\\u0085"])
def test_control_characters_in_annotations_are_diagnostics(note: str, char: str) -> None:
    assert _codes(f'@{note}("a{char}b")\ndeny tool "a"\n') == ["CH0113"]


def test_printable_annotations_are_fine() -> None:
    policy = charter.compile('@id("refund-limit (EU) #1 \\"quoted\\" ü")\ndeny tool "a"\n')
    assert policy.decide(REQ).rules == ('refund-limit (EU) #1 "quoted" ü',)


def test_file_name_with_code_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    name = f"p\n    {_payload(marker)} #"
    policy = charter.compile('deny tool "a" when args.x == 1\n', name)
    decision = policy.decide(REQ)
    assert decision.effect == "deny" and len(decision.rules) == 1  # the rule matched
    assert policy.decide({"tool": "a", "args": {"x": 2}}).rules == ()
    assert not marker.exists()


def _tampered(text: str, **changes: Any) -> Policy:
    """The policy of `text` with its first rule changed, as a tampered saved policy would be."""
    policy = charter.compile(text).ir
    first = msgspec.structs.replace(policy.rules[0], **changes)
    return Policy(msgspec.structs.replace(policy, rules=(first, *policy.rules[1:])))


def test_ids_and_file_names_reach_generated_code_only_through_repr(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"x\n    {_payload(marker)} #"
    policy = _tampered('deny tool "a" when args.x == 1\n', id=evil, file=evil)
    assert policy.decide(REQ).rules == (evil,)
    assert not marker.exists()
    source = policy.bucket_for(REQ).source  # type: ignore[union-attr]
    assert repr(evil) in source and evil not in source


def _rule_with_check(check: str) -> ir.Rule:
    cond = ir.Cmp("==", ir.Path("args", ("x",), check, "args.x"), ir.Const(1))
    return ir.Rule(0, "r", "deny", "tool_call", (), cond, None, "p", 1, 1)


@pytest.mark.parametrize("field, value", [
    ("check", "int(0) or __import__('os').system('true') or C_int"),
    ("op", "== 1 or __import__('os').system('true') or 1 =="),
])
def test_tampered_names_in_the_ir_fail_closed(tmp_path: Path, field: str, value: str) -> None:
    rule = _rule_with_check("int")
    cond = rule.cond
    assert isinstance(cond, ir.Cmp)
    if field == "check":
        cond = msgspec.structs.replace(cond, left=msgspec.structs.replace(cond.left, check=value))
    else:
        cond = msgspec.structs.replace(cond, op=value)  # type: ignore[arg-type]
    with pytest.raises(_emit_error()):
        codegen.generate([msgspec.structs.replace(rule, cond=cond)], None)


def test_tampered_saved_policy_denies_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    policy = charter.compile('allow tool "a" when args.x == 1\n')
    rule = policy.ir.rules[0]
    assert isinstance(rule.cond, ir.Cmp) and isinstance(rule.cond.left, ir.Path)
    left = msgspec.structs.replace(rule.cond.left, check=f"int(0) or {_payload(marker)} or C_int")
    bad = msgspec.structs.replace(rule, cond=msgspec.structs.replace(rule.cond, left=left))
    Policy(msgspec.structs.replace(policy.ir, rules=(bad,))).save(tmp_path / "p.charter")
    loaded = charter.load_compiled(tmp_path / "p.charter")
    decision = loaded.decide(REQ)
    assert decision.effect == "deny" and not decision.allowed
    assert not marker.exists()


def test_an_emitter_bug_is_caught_by_the_source_check(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    """If the emitter ever let text out of a literal, the parsed-back source would not have
    the planned shape: compiling the policy fails with CH0500 and deciding denies."""
    marker = tmp_path / "pwned"
    expr = codegen.Emitter.expr

    def leaky(self: codegen.Emitter, e: ir.Expr) -> str:
        if isinstance(e, ir.Const) and e.value == "leak":
            return f"'leak':\n        {_payload(marker)}\n    if 1"
        return expr(self, e)

    monkeypatch.setattr(codegen.Emitter, "expr", leaky)
    text = 'deny tool "a" when args.s == "leak"\n'
    assert _codes(text) == ["CH0500"]
    rules = compile_sources([Source("p", 'deny tool "a" when args.s == "other"\n')]).ir
    assert rules is not None
    leak = msgspec.structs.replace(rules.rules[0], cond=ir.Cmp(
        "==", ir.Path("args", ("s",), "str", "args.s"), ir.Const("leak")))
    with pytest.raises(_emit_error()):
        codegen.generate([leak], None)
    decision = Policy(msgspec.structs.replace(rules, rules=(leak,))).decide(
        {"tool": "a", "args": {"s": "leak"}})
    assert decision.effect == "deny" and "internal error" in decision.reasons[0]
    assert not marker.exists()


@pytest.mark.parametrize("extra", [
    "    __import__('os')",  # an unknown name
    "    m = m.__class__.__subclasses__",  # an attribute the emitter never writes
    "    m = [x for x in req]",  # a node type the emitter never writes
    "    return 0",  # one statement more than planned
])
def test_source_check_rejects_what_the_emitter_does_not_write(extra: str) -> None:
    from charter.engine import emitcheck

    good = "def bucket(req, st, name, tags, stage):\n    m = 0\n    if req:\n        m |= 1\n"
    emitcheck.verify(good + "    return m\n", "bucket", [], [], 1)
    lines = good.splitlines()
    bad = "\n".join([*lines[:2], extra, *lines[2:], "    return m", ""])
    with pytest.raises(_emit_error()):
        emitcheck.verify(bad, "bucket", [], [], 1)


_NAMES = [
    "", "K", "K0", "K1", "K123456", "K1234567", "k1", "KK1", "K1a", "K 1", "K1\n", "K-1", "K+1",
    "K\u00b2", "K\u0661", "K\uff11", "v", "v0", "v_now", "v_now1", "v_nowx", "vnow", "r_", "r_1",
    "r1", "te", "te12", "t1", "e1", "v1234567", "r_000000", "te\u0663", "V1", " v1", "v1 ",
]


@pytest.mark.parametrize("name", _NAMES)
def test_saved_code_names_are_checked_as_the_patterns_say(name: str) -> None:
    """`load` checks a saved policy's constant and local names without compiling a regex;
    it accepts exactly what the patterns it replaced did."""
    import re

    assert codegen._numbered(name, codegen._CONST_PREFIXES) == bool(
        re.fullmatch(r"K[0-9]{1,6}", name))
    local_ok = name == "v_now" or codegen._numbered(name, codegen._LOCAL_PREFIXES)
    assert local_ok == bool(re.fullmatch(r"(?:v|r_|te)[0-9]{1,6}|v_now", name))
