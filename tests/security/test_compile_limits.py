"""Deep or long policies: a diagnostic or working code, never a traceback (issue 18, D9/D10).

Before, a flat chain of 400 `and`s, 500 `not`s or `-`s, 500-deep lists or hundreds of nested
scopes raised RecursionError out of `charter.compile`, and 200 unary `-` checked clean but
generated code Python could not parse, so that every call was denied as an internal error.
Now the parser bounds nesting (`limits.MAX_DEPTH`, CH0112 at the first node past it), the
emitter hands conditions too deep to inline to the interpreter, and the compiler compiles
every rule's generated code once, so a policy that checks clean also runs.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import charter
from charter.engine import emit as codegen
from charter.engine import ir
from charter.engine.interpreter import Ctx, evaluate

MAX = 100  # charter.language.limits.MAX_DEPTH, spelled out: main had no such module
CALL = {"tool": "a", "args": {"x": 1, "l": [1]}}


def _chain(op: str, n: int) -> str:
    return f' {op} '.join(["args.x == 1"] * n)


# Each builder gives a rule whose deepest node is at (about) `n` levels.
DEEP: dict[str, Callable[[int], str]] = {
    "and": lambda n: f'deny tool "a" when {_chain("and", n)}\n',
    "or": lambda n: f'deny tool "a" when {_chain("or", n)}\n',
    "not": lambda n: f'deny tool "a" when {"not " * n}args.x == 1\n',
    "neg": lambda n: f'deny tool "a" when {"-" * n}args.x == 1\n',
    "plus": lambda n: f'deny tool "a" when args.x{" + 1" * n} > 0\n',
    "list": lambda n: f'deny tool "a" when args.l in {"[" * n}1{"]" * n}\n',
    "parens": lambda n: f'deny tool "a" when {"(" * n}args.x == 1{")" * n}\n',
    "calls": lambda n: f'deny tool "a" when len({"lower(" * n}"x"{")" * n}) == 1\n',
    "scopes": lambda n: "scope args.x == 1 {\n" * n
    + 'deny tool "a"\n' + "}\n" * n,
}
# The reproductions of the attack run.
REPRODUCTIONS = [("and", 400), ("not", 500), ("neg", 500), ("list", 500), ("scopes", 250),
                 ("neg", 200), ("or", 1000), ("plus", 500), ("calls", 300), ("scopes", 2000)]


@pytest.mark.parametrize("kind, n", REPRODUCTIONS)
def test_too_deep_is_a_diagnostic(kind: str, n: int) -> None:
    with pytest.raises(charter.CompileError) as err:
        charter.compile(DEEP[kind](n))
    (diag,) = err.value.diagnostics
    assert diag.code == "CH0112" and f"more than {MAX} levels" in diag.message
    assert diag.span.line >= 1 and diag.span.col >= 1
    rendered = str(err.value)
    assert "^" in rendered and "CH0112" in rendered


def test_parentheses_alone_do_not_count() -> None:
    policy = charter.compile(DEEP["parens"](1000))
    assert policy.decide(CALL).rules == ("policy.agentpolicy:1",)


def _decide_all(policy: charter.Policy) -> None:
    """Decisions of generated code and interpreter agree, without an internal error."""
    for x in (1, 2, -1):
        call = {"tool": "a", "args": {"x": x, "l": [1]}}
        decision = policy.decide(call)
        assert decision == policy.interpret(call)
        assert not any("internal error" in r or "cannot evaluate" in r for r in decision.reasons)


def _at_stack_depth(frames: int, fn: Callable[[], object]) -> object:
    """Run `fn` with `frames` frames already on the stack, as inside a deep host."""
    if frames <= 0:
        return fn()
    return _at_stack_depth(frames - 1, fn)


@pytest.mark.parametrize("kind", sorted(DEEP))
def test_at_the_limit_compiles_and_runs_inside_a_deep_host(kind: str) -> None:
    # Back off until the rule just fits, then compile it with 300 frames in use already.
    n = MAX
    while n > 0:
        try:
            charter.compile(DEEP[kind](n))
            break
        except charter.CompileError as err:
            assert all(d.code == "CH0112" for d in err.diagnostics)
            n -= 1
    assert n >= MAX - 3, f"{kind}: only {n} levels fit"
    policy = _at_stack_depth(300, lambda: charter.compile(DEEP[kind](n)))
    assert isinstance(policy, charter.Policy)
    _at_stack_depth(300, lambda: _decide_all(policy))


def test_charter_check_reports_the_limit(tmp_path: Path) -> None:
    from charter.cli.main import cli

    (tmp_path / "deep.agentpolicy").write_text(DEEP["and"](400))
    result = CliRunner().invoke(cli, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "CH0112" in result.output and "RecursionError" not in result.output


def test_two_hundred_unary_minus_no_longer_deny_everything() -> None:
    """At 200 nested `-`, the old code checked clean and then denied every call."""
    with pytest.raises(charter.CompileError):
        charter.compile(DEEP["neg"](200))


def _neg_chain(n: int) -> ir.Expr:
    e: ir.Expr = ir.Path("args", ("x",), "num", "args.x")
    for _ in range(n):
        e = ir.Neg(e)
    return e


def test_emitter_hands_deep_conditions_to_the_interpreter() -> None:
    """An IR too deep to inline (300 levels: Python's parser takes 200 brackets) still runs,
    the same as the interpreter, instead of failing to compile."""
    cond = ir.Cmp(">", _neg_chain(300), ir.Const(0))
    rule = ir.Rule(0, "r", "deny", "tool_call", (), cond, None, "p", 1, 1)
    bucket = codegen.generate([rule], None)
    assert "_holds(" in bucket.source
    for x, expected in ((1, 1), (-1, 0), (Decimal("2.5"), 1)):
        req = {"tool": "a", "args": {"x": x}}
        assert bucket.fn(req, None, "a", (), "tool_call") == expected
        assert evaluate(cond, Ctx(req, None, "tool_call", "a", (), None)) == bool(expected)


def test_big_masks_are_hoisted_not_written_as_literals() -> None:
    """Python refuses int literals over 4300 digits: bit 15000 of a mask is one."""
    rules = [ir.Rule(i, f"r{i}", "deny", "tool_call", (), None, None, "p", 1, 1)
             for i in range(15000)]
    cond = ir.Cmp("==", ir.Path("args", ("x",), "int", "args.x"), ir.Const(1))
    rules.append(ir.Rule(15000, "last", "deny", "tool_call", (), cond, None, "p", 2, 1))
    bucket = codegen.generate(rules, None)
    assert bucket.fn({"args": {"x": 1}}, None, "a", (), "tool_call") >> 15000 == 1
    assert bucket.fn({"args": {"x": 2}}, None, "a", (), "tool_call") >> 15000 == 0
