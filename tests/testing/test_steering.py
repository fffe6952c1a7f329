"""`where` steers generation: literal values, bounds, globs and regexes reach the rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.engine import ir
from charter.testing.session import run
from charter.testing.steering import simple_regex, steer

# The planted bug: `rm -rf /` is only denied when a working directory is given. No rule
# compares a field with the text "rm -rf /", so only the `where` clause can produce it.
SHELL = """\
policy "shell"
default deny
tool "shell.run" (command: str, cwd?: str)
tool "fs.write" (path: str, text: str)
tool "pay" (amount: decimal, n: int)
allow tool "shell.run", "fs.write", "pay"
deny tool "shell.run" when args.command matches r"rm +-rf +/" and has(args.cwd)
  because "no recursive deletes"
deny tool "fs.write" when args.path like "/etc/*" because "system files"
deny tool "pay" when args.amount > 10 and args.amount <= 20 and args.n in {3, 4}
"""


def _run(tmp_path: Path, prop: str, examples: int = 100) -> object:
    (tmp_path / "policy.agentpolicy").write_text(SHELL)
    (tmp_path / "policy_test.agentpolicy").write_text(prop)
    [result] = run([tmp_path], seed=1, examples=examples).results
    return result


def test_where_reaches_a_literal_string(tmp_path: Path) -> None:
    result = _run(tmp_path, 'property "rm" {\n'
                  '  for all calls to tool "shell.run" where args.command == "rm -rf /"\n'
                  "  expect deny\n}\n")
    assert result.status == "fail"  # type: ignore[attr-defined]
    block = result.counterexample  # type: ignore[attr-defined]
    assert block is not None and 'command: "rm -rf /"' in block and "cwd" not in block


@pytest.mark.parametrize("where", [
    'args.path like "/etc/*"',
    'args.path matches r"^/etc/[a-z]{2,8}$"',
    'args.path matches r"^/etc/(passwd|shadow)"',
])
def test_patterns_reach_the_path_rule(tmp_path: Path, where: str) -> None:
    result = _run(tmp_path, f'property "etc" {{\n  for all calls to tool "fs.write" where {where}\n'
                  "  expect deny\n}\n")
    assert result.status == "pass"  # type: ignore[attr-defined]
    assert result.meaningful == 100 and result.vacuous == (0, 0)  # type: ignore[attr-defined]


def test_ranges_and_membership_become_bounds_and_values(tmp_path: Path) -> None:
    where = "args.amount > 10 and args.amount <= 20 and args.n in {3, 4}"
    result = _run(tmp_path, f'property "pay" {{\n  for all calls to tool "pay" where {where}\n'
                  "  expect deny\n}\n")
    assert result.status == "pass"  # type: ignore[attr-defined]
    assert result.vacuous == (0, 0)  # type: ignore[attr-defined]


def _path(text: str) -> ir.Path:
    root, *keys = text.split(".")
    return ir.Path(root, tuple(keys), "str", text)


def test_substring_membership_steers_text() -> None:
    s = steer(ir.In(ir.Const("tmp"), _path("args.cwd"), negate=False))
    strategy = s.fields["args.cwd"].strategy("str", lambda v: True)
    assert strategy is not None

    @settings(max_examples=30, database=None)
    @given(strategy)
    def check(text: str) -> None:
        assert "tmp" in text

    check()


@pytest.mark.parametrize(("pattern", "simple"), [
    (r"^/etc/[a-z]+$", True),
    (r"rm\s+-rf", True),
    (r"[[:alpha:]]+", False),     # POSIX class: Python reads it as a character set
    (r"\pL+", False),              # Unicode class
    (r"(?P<x>a)", False),          # named group
    (r"a\z", False),               # RE2's end of text
    (r"(a", False),                # RE2 rejects it
])
def test_simple_regex(pattern: str, simple: bool) -> None:
    assert simple_regex(pattern) is simple


def test_unsafe_regex_falls_back_to_filtering() -> None:
    s = steer(ir.Matches(_path("args.p"), r"[[:digit:]]+"))
    assert s.fields["args.p"].strategy("str", lambda v: True) is None
    assert s.requires("args.p")


@given(st.integers(-50, 50), st.integers(-50, 50), st.data())
@settings(max_examples=40, database=None)
def test_bounds_stay_inside(lo: int, hi: int, data: st.DataObject) -> None:
    cond = ir.BoolOp("and", (ir.Cmp(">", _path("args.n"), ir.Const(lo)),
                             ir.Cmp("<=", _path("args.n"), ir.Const(hi))))
    strategy = steer(cond).fields["args.n"].strategy("int", lambda v: True)
    assert strategy is not None
    if lo >= hi:
        assert strategy.is_empty
        return
    value = data.draw(strategy)
    assert lo < value <= hi
