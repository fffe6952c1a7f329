"""The saved-policy format: versioned msgpack, no pickle, loaded without the compiler, its
generated code checked before it runs and used only from the same emitter."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec
import pytest

import charter
from charter.engine import emit, ir
from charter.engine.tree import (
    FORMAT,
    HEADER,
    BucketCode,
    CompiledPolicy,
    CompiledPolicyError,
    Value,
    dumps,
    loads,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _example_requests(folder: str) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted((EXAMPLES / folder / "requests").glob(
        "*.json"))]


@pytest.mark.parametrize("folder", ["support", "coding", "finance"])
def test_a_saved_policy_decides_as_the_compiled_one(folder: str) -> None:
    policy = charter.load(EXAMPLES / folder)
    data = policy.dumps()
    assert data.startswith(HEADER) and HEADER == b"CHARTER-POLICY/%d\n" % FORMAT
    loaded = charter.Policy.loads(data)
    assert loaded.compiled == policy.compiled  # every node, constant and bucket equal
    assert loaded.dumps() == data  # and written back byte for byte
    for req in _example_requests(folder):
        assert loaded.decide(req) == policy.decide(req) == loaded.interpret(req)


def test_every_kind_of_constant_keeps_its_type() -> None:
    values: list[object] = [
        "s", 0, -(2**70), True, None, Decimal("1.50"), Decimal("-0"), Fraction(1, 3),
        timedelta(days=2, seconds=5, microseconds=7), ("a", 1, ("b",)),
        frozenset({"x", 2, Decimal("2.5")}), {"k": {"n": (1, frozenset({"z"}))}, "e": ()},
    ]
    rules = tuple(ir.Rule(i, f"r{i}", "deny", "tool_call", (), ir.Cmp(
        "==", ir.Path("args", ("x",), "any", "args.x"), ir.Const(v)), None, "p", 1, 1)
        for i, v in enumerate(values))
    policy = ir.Policy("p", None, "allow", rules)
    compiled = CompiledPolicy(policy, charter.Policy(policy).compiled.tree)
    back = loads(dumps(compiled))
    for rule, value in zip(back.ir.rules, values, strict=True):
        assert isinstance(rule.cond, ir.Cmp) and isinstance(rule.cond.right, ir.Const)
        got = rule.cond.right.value
        assert got == value and type(got) is type(value)
    assert str(back.ir.rules[6].cond.right.value) == "-0"  # type: ignore[union-attr]


def test_a_constant_the_format_cannot_hold_is_refused_when_saving() -> None:
    rule = ir.Rule(0, "r", "deny", "tool_call", (), ir.Const(object()), None, "p", 1, 1)
    policy = charter.Policy(ir.Policy("p", None, "allow", (rule,)))
    with pytest.raises(TypeError, match="cannot save a constant"):
        policy.dumps()


@pytest.mark.parametrize(("data", "message"), [
    (b"not a policy", "not a compiled Charter policy"),
    (b"CHARTER-POLICY-1\n\x80\x05pickle", "format 1 is not supported"),
    (b"CHARTER-POLICY/2\n\x80", "format 2 is not supported"),  # positional counter ids
    (b"CHARTER-POLICY/9\n\x80", "format 9 is not supported"),
    (b"CHARTER-POLICY", r"format \? is not supported"),
    (HEADER + b"\x93garbage", "corrupt compiled policy"),
    (HEADER, "corrupt compiled policy"),
])
def test_other_files_are_refused_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(CompiledPolicyError, match=message):
        charter.Policy.loads(data)


def test_load_compiled_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "old.charter"
    path.write_bytes(b"CHARTER-POLICY-1\n...")
    with pytest.raises(CompiledPolicyError, match=f"{path}: compiled policy format 1"):
        charter.load_compiled(path)


def _decoded(policy: charter.Policy) -> Any:
    """The body of a saved policy as plain msgpack data, to tamper with."""
    return msgspec.msgpack.decode(policy.dumps()[len(HEADER):])


def _encoded(body: Any) -> bytes:
    return HEADER + msgspec.msgpack.encode(body)


def test_a_wrong_literal_or_field_in_the_file_is_refused() -> None:
    body = _decoded(charter.compile(POLICY_A))
    body["ir"]["rules"][0]["cond"]["op"] = "=="
    charter.Policy.loads(_encoded(body))  # untouched: fine
    body["ir"]["rules"][0]["cond"]["op"] = "is"
    with pytest.raises(CompiledPolicyError, match="corrupt"):
        charter.Policy.loads(_encoded(body))
    body["ir"]["rules"][0]["cond"]["op"] = "=="
    body["tree"]["stages"]["tool_call"]["exact"]["a"] = [7]
    with pytest.raises(CompiledPolicyError, match="no rule 7"):
        charter.Policy.loads(_encoded(body))


def test_no_pickle_anywhere_in_charter() -> None:
    hits = [str(p.relative_to(ROOT)) for p in (ROOT / "charter").rglob("*.py")
            if "pickle" in p.read_text(encoding="utf-8").lower()]
    assert not hits


def test_a_saved_policy_loads_and_decides_without_the_compiler(tmp_path: Path) -> None:
    target = tmp_path / "finance.charter"
    charter.load(EXAMPLES / "finance").save(target)
    request = _example_requests("finance")[0]
    script = (
        "import json, sys\n"
        "from charter import load_compiled\n"
        f"p = load_compiled({str(target)!r})\n"
        f"d = p.decide(json.loads({json.dumps(request)!r}))\n"
        "bad = sorted(m for m in sys.modules if m == 'lark' or m.startswith(('lark.',\n"
        "    'charter.compiler', 'charter.language')))\n"
        "print(json.dumps({'effect': d.effect, 'loaded': bad}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["loaded"] == []
    assert result["effect"] == charter.load(EXAMPLES / "finance").decide(request).effect


def test_the_saved_code_is_what_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    data = charter.load(EXAMPLES / "finance").dumps()
    loaded = charter.Policy.loads(data)

    def no_codegen(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated again")

    monkeypatch.setattr(emit, "_emit", no_codegen)
    for req in _example_requests("finance"):
        if isinstance(req, dict) and req.get("tool") in loaded.ir.tools:
            bucket = loaded.bucket_for(req)
            assert bucket is not None
            assert any(c.source == bucket.source for c in loaded.compiled.code)


def _with_code(policy: charter.Policy, **changes: Any) -> charter.Policy:
    compiled = policy.compiled
    code = tuple(msgspec.structs.replace(c, **changes) if c.source else c for c in compiled.code)
    return charter.Policy.loads(dumps(msgspec.structs.replace(compiled, code=code)))


REQ = {"tool": "a", "args": {"x": 1}}
POLICY_A = 'policy "a"\ndefault allow\ndeny tool "a" when args.x == 1\n'


def test_tampered_saved_code_never_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    policy = charter.compile(POLICY_A)
    (code,) = [c for c in policy.compiled.code if c.source]
    evil = code.source.replace(
        "    return m", f"    m = __import__('os').system('touch {marker}')\n    return m")
    tampered = _with_code(policy, source=evil)
    with caplog.at_level(logging.WARNING, logger="charter"):
        decision = tampered.decide(REQ)
    assert decision == policy.decide(REQ) and decision.effect == "deny"
    assert not marker.exists()
    assert "fails its check" in caplog.text
    assert tampered.bucket_for(REQ).source == code.source  # type: ignore[union-attr]


@pytest.mark.parametrize("changes", [
    {"bound": ("__builtins__",)},
    {"locals": ("os",)},
    {"consts": {"__import__": Value(1)}},
    {"source": ""},
    {"rules": (0, 0)},
])
def test_saved_code_that_does_not_fit_its_rules_is_generated_again(
        changes: dict[str, Any]) -> None:
    policy = charter.compile(POLICY_A)
    tampered = _with_code(policy, **changes)  # (other rules: the code is never looked up)
    assert tampered.decide(REQ) == policy.decide(REQ)
    assert tampered.decide({"tool": "a", "args": {"x": 2}}).effect == "allow"


def test_code_from_another_emitter_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = charter.compile(POLICY_A)
    other = charter.Policy.loads(dumps(msgspec.structs.replace(policy.compiled, emitter="x")))
    loaded: list[BucketCode] = []
    original = emit.load

    def spy(code: BucketCode, *args: Any, **kwargs: Any) -> emit.Bucket:
        loaded.append(code)
        return original(code, *args, **kwargs)

    monkeypatch.setattr("charter.runtime.policy.load", spy)
    assert other.decide(REQ).effect == "deny"
    assert loaded == []  # generated from the IR instead
    assert charter.Policy.loads(policy.dumps()).decide(REQ).effect == "deny"
    assert len(loaded) == 1


def test_a_bare_ir_policy_is_planned_and_saved_without_code() -> None:
    compiled = charter.compile(POLICY_A)
    bare = charter.Policy(compiled.ir)
    assert bare.compiled.code == () and bare.compiled.tree == compiled.compiled.tree
    again = charter.Policy.loads(bare.dumps())
    assert again.decide(REQ) == compiled.decide(REQ)


def test_a_bucket_of_more_than_64_rules_round_trips() -> None:
    rules = "\n".join(f'deny when args.n == {i} because "r{i}"' for i in range(70))
    policy = charter.compile(f'policy "big"\ndefault allow\n{rules}\n')
    loaded = charter.Policy.loads(policy.dumps())
    for n in (0, 63, 64, 69, 70):
        req = {"tool": "t", "args": {"n": n}}
        assert loaded.decide(req) == policy.decide(req) == policy.interpret(req)


def test_annotations_resolved_in_one_eval_are_those_msgspec_finds() -> None:
    # `tree._decoder` evaluates the IR's and the tree's string annotations in one `eval`
    # (one compile, not one per annotation) before msgspec reads them; what msgspec then
    # resolves must be what it resolves from the strings. A fresh process: this one's
    # decoder may already be built.
    script = (
        "import msgspec\n"
        "from msgspec._utils import get_class_annotations\n"
        "from charter.engine import ir, tree\n"
        "classes = [c for m in (ir, tree) for c in vars(m).values() if isinstance(c, type)\n"
        "           and issubclass(c, msgspec.Struct) and c.__module__ == m.__name__]\n"
        "assert all(isinstance(t, str) for c in classes for t in c.__annotations__.values())\n"
        "before = {c: get_class_annotations(c) for c in classes}\n"
        "tree._decoder()\n"
        "assert not any(isinstance(t, str) for c in classes for t in c.__annotations__.values())\n"
        "after = {c: get_class_annotations(c) for c in classes}\n"
        "assert before == after\n"
        "print(len(classes), sum(map(len, before.values())))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    classes, fields = map(int, out.stdout.split())
    assert classes > 30 and fields > 100
