"""One policy-file discovery (`charter/compiler/sources.py`, docs/language.md "Which files make
a policy"): `charter.load`, `charter eval`, `charter compile`, `charter check`, `charter test`,
the pytest plugin and the language server see the same files for the same directory
(issue 11, bug 1: `charter.load(dir)` merged subdirectories that `charter eval dir` ignored,
so the same directory decided deny through one and allow through the other)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.compiler.sources import (
    Unit,
    all_files,
    discover,
    discover_files,
    nothing_found,
    read_sources,
    unit_dirs,
    unit_of,
    units,
    walked,
)
from charter.lsp.analysis import analyze

pytest_plugins = ["pytester"]

TOP = 'policy "top" version "1"\ndefault allow\ntool "t" ()\nwarn tool "t" because "from a"\n'
SUB = 'policy "sub"\ndefault allow\ntool "t" ()\ndeny tool "t" because "from sub"\n'
#: What every file that must not be compiled holds: whoever reads it fails.
BROKEN = "this is not a policy {{{\n"
TOP_TESTS = "".join(
    f'test "sees {name}" {{\n  call "t" {{}}\n  expect allow because "from {name}"\n}}\n'
    for name in ("a", "b", "shared")
) + 'test "sees nothing else" {\n  call "t" {}\n  expect not deny\n}\n'
SUB_TESTS = 'test "sub denies" {\n  call "t" {}\n  expect deny because "from sub"\n}\n'
WARNINGS = ("from a", "from b", "from shared")


def build(root: Path, outside: Path) -> None:
    """A policy directory with a subdirectory policy, tests, and everything to be skipped."""
    files = {
        "a.agentpolicy": TOP,
        "b.agentpolicy": 'warn tool "t" because "from b"\n',
        "a_test.agentpolicy": TOP_TESTS,
        "sub/c.agentpolicy": SUB,
        "sub/c_test.agentpolicy": SUB_TESTS,
        ".hidden.agentpolicy": BROKEN,  # hidden files: editor lock and backup files
        ".hidden_test.agentpolicy": BROKEN,
        "notes.md": BROKEN,
    }
    for skipped in (".git", ".venv", "__pycache__", "node_modules/pkg", "env/lib", "sub/.cache"):
        files[f"{skipped}/x.agentpolicy"] = BROKEN
        files[f"{skipped}/x_test.agentpolicy"] = BROKEN
    files["env/pyvenv.cfg"] = "home = /usr/bin\n"  # a virtual environment, whatever its name
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "shared.agentpolicy").write_text('warn tool "t" because "from shared"\n')
    (root / "shared.agentpolicy").symlink_to(outside / "shared.agentpolicy")  # a file: read
    (root / "linked").symlink_to(root / "sub", target_is_directory=True)  # a directory: not


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    build(tmp_path / "policies", tmp_path / "elsewhere")
    return tmp_path / "policies"


def top_unit(root: Path) -> list[Path]:
    return [root / n for n in ("a.agentpolicy", "a_test.agentpolicy", "b.agentpolicy",
                               "shared.agentpolicy")]


def sub_unit(root: Path) -> list[Path]:
    return [root / "sub" / "c.agentpolicy", root / "sub" / "c_test.agentpolicy"]


def test_the_discovery(tree: Path) -> None:
    assert discover(tree) == [tree / n for n in ("a.agentpolicy", "b.agentpolicy",
                                                 "shared.agentpolicy")]
    assert discover(tree, include_tests=True) == top_unit(tree)
    assert unit_dirs(tree) == [tree, tree / "sub"]
    assert units([tree]) == [Unit(tuple(top_unit(tree))), Unit(tuple(sub_unit(tree)))]
    assert all_files(tree) == top_unit(tree) + sub_unit(tree)
    # a test file named alone runs with its directory's policy, and only its own tests
    test_file = tree / "a_test.agentpolicy"
    assert units([test_file]) == [Unit(tuple(top_unit(tree)), frozenset({test_file}))]
    # reached twice: listed once, all its tests run
    assert units([tree / "sub", tree / "sub" / "c_test.agentpolicy"]) == [
        Unit(tuple(sub_unit(tree)))]
    assert units([tree / "b.agentpolicy"]) == [Unit((tree / "b.agentpolicy",))]
    # a directory named on purpose is walked even when a walk would skip it
    assert units([tree / ".git"]) == [Unit((tree / ".git" / "x.agentpolicy",
                                            tree / ".git" / "x_test.agentpolicy"))]
    with pytest.raises(FileNotFoundError):
        units([tree / "missing"])


def test_the_hook_reads_the_same_files(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `discover_files` (the hook's cache key, without pathlib) is `discover` as text.
    for given in (tree, tree / "sub", tree / "b.agentpolicy", tree / "missing", tree / ".git"):
        for tests in (False, True):
            found = discover_files(str(given), include_tests=tests)
            assert [Path(f) for f in found] == discover(given, include_tests=tests)
    monkeypatch.chdir(tree)
    assert [Path(f) for f in discover_files("")] == discover("") == discover(".")


def test_load_and_eval_decide_the_same(tree: Path) -> None:
    """Bug 1: `sub/` denies; before, `load` merged it in and `eval` did not."""
    request = tree.parent / "r.json"
    request.write_text(json.dumps({"tool": "t"}))
    loaded = charter.load(tree).decide({"tool": "t"})
    assert loaded.effect == "allow" and loaded.warnings == WARNINGS
    out = CliRunner().invoke(cli, ["eval", str(tree), "--request", str(request)])
    assert out.exit_code == 0, out.output
    evaluated = json.loads(out.output)
    assert (evaluated["effect"], tuple(evaluated["warnings"])) == ("allow", WARNINGS)
    assert charter.load(tree / "sub").decide({"tool": "t"}).effect == "deny"


def test_compile_and_explain_read_the_same(tree: Path) -> None:
    saved = tree.parent / "p.charter"
    out = CliRunner().invoke(cli, ["compile", str(tree), "-o", str(saved)])
    assert out.exit_code == 0, out.output
    assert charter.load_compiled(saved).decide({"tool": "t"}).warnings == WARNINGS
    request = tree.parent / "r.json"
    request.write_text(json.dumps({"tool": "t"}))
    out = CliRunner().invoke(cli, ["explain", str(tree), "--request", str(request)])
    assert out.exit_code == 0, out.output
    rules = ("a.agentpolicy:4", "b.agentpolicy:1", "shared.agentpolicy:1")
    assert all(f"[MATCH] {r}" in out.output for r in rules), out.output
    assert "c.agentpolicy" not in out.output


def test_check_and_test_see_the_same_units(tree: Path) -> None:
    out = CliRunner().invoke(cli, ["check", "--format", "json", str(tree)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["files"], report["errors"]) == (6, 0)
    out = CliRunner().invoke(cli, ["test", "--format", "json", str(tree)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert [u["files"] for u in report["units"]] == [
        [str(f) for f in top_unit(tree)], [str(f) for f in sub_unit(tree)]]
    assert (report["passed"], report["failed"], report["errors"]) == (5, 0, 0)


def test_check_of_a_test_file_compiles_its_directory(tree: Path) -> None:
    """As `charter test` and the editor do: alone, its call names an undeclared tool."""
    out = CliRunner().invoke(cli, ["check", "--format", "json", str(tree / "a_test.agentpolicy")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["files"] == 4


def test_the_language_server_compiles_the_same_unit(tree: Path) -> None:
    for unit in (top_unit(tree), sub_unit(tree)):
        for path in unit:
            result = analyze(str(path), path.read_text(), path, lambda _: None)
            assert list(result.comp.sources) == [str(f) for f in unit]
            assert not result.comp.errors
    # an unsaved (or hidden) document is compiled with its directory's unit
    new = tree / "new.agentpolicy"
    assert unit_of(new) == sorted([*top_unit(tree), new])
    hidden = tree / ".hidden.agentpolicy"
    assert unit_of(hidden) == [hidden, *top_unit(tree)]


def test_the_pytest_plugin_collects_the_same_tests(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    root = pytester.path / "policies"
    build(root, pytester.path / "elsewhere")
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "policies")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*a_test.agentpolicy::test sees a PASSED*",
                                 "*sub/c_test.agentpolicy::test sub denies PASSED*"])
    result.stdout.no_fnmatch_line("*linked*")
    # named on purpose, a skipped directory's tests are collected (and fail here: BROKEN)
    result = pytester.runpytest("-p", "no:cacheprovider", "policies/.git")
    result.assert_outcomes(failed=1)


def test_walked_keeps_to_the_walk(tree: Path) -> None:
    roots = [tree]
    assert all(walked(f, roots) for f in all_files(tree))
    for skipped in (".git", "__pycache__", "node_modules/pkg", "env/lib", "linked", "sub/.cache"):
        assert not walked(tree / skipped / "x_test.agentpolicy", roots), skipped
    assert not walked(tree / ".hidden_test.agentpolicy", roots)
    assert walked(tree / ".git" / "x_test.agentpolicy", [tree, tree / ".git"])
    assert walked(tree / ".hidden_test.agentpolicy", [tree / ".hidden_test.agentpolicy"])
    assert walked(Path("/elsewhere/x_test.agentpolicy"), roots)  # under no root: by name


def test_errors_name_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deny.agentpolicy").write_text(SUB)
    with pytest.raises(FileNotFoundError, match="subdirectories are policies of their own"):
        charter.load(tmp_path)
    assert nothing_found(tmp_path / "sub" / "none") == (
        f"no .agentpolicy files in {tmp_path / 'sub' / 'none'}")
    out = CliRunner().invoke(cli, ["eval", str(tmp_path), "--request", "-"], input="{}")
    assert out.exit_code == 2 and "subdirectories are policies of their own" in out.output


def test_an_unreadable_file_fails_loudly(tmp_path: Path) -> None:
    """A dangling link or a file that is not UTF-8 is an error, never a policy with fewer
    rules."""
    (tmp_path / "a.agentpolicy").write_text(TOP)
    (tmp_path / "gone.agentpolicy").symlink_to(tmp_path / "nowhere.agentpolicy")
    assert discover(tmp_path)[-1].name == "gone.agentpolicy"
    with pytest.raises(FileNotFoundError):
        charter.load(tmp_path)
    for command in (["eval", str(tmp_path), "--request", "-"], ["check", str(tmp_path)],
                    ["compile", str(tmp_path)], ["test", str(tmp_path)]):
        out = CliRunner().invoke(cli, command, input="{}")
        assert out.exit_code == 2, (command, out.output)
        assert "cannot read" in out.output and "gone.agentpolicy" in out.output
    os.unlink(tmp_path / "gone.agentpolicy")
    (tmp_path / "latin1.agentpolicy").write_bytes(b'warn tool "t" because "caf\xe9"\n')
    with pytest.raises(UnicodeDecodeError, match="latin1.agentpolicy"):
        read_sources(discover(tmp_path))
    out = CliRunner().invoke(cli, ["check", str(tmp_path)])
    assert out.exit_code == 2 and "latin1.agentpolicy" in out.output
