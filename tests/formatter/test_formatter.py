"""The canonical layout, comments, refusal on syntax errors, and the `charter fmt` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.compiler.pipeline import compile_sources
from charter.compiler.sources import read_sources
from charter.language.formatter import format_source, format_text
from charter.language.source import Source
from tests.formatter.scramble import scramble

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/*.agentpolicy"))


def test_layout() -> None:
    messy = (
        'policy   "p"  version "1"\nuse pii,secrets\ndefault deny\nconst d = 2.00\n'
        'const s = {"a",\n  "b"}\ntool "t" (a:int,b?:map<str,int>) tags x,y\n'
        'scope agent.team=="s" {\nallow tool "t" when args.a>1 and(args.a<5 or args.a==9)'
        '\n}\ndeny tool "t" when args.a > 100 unless approved by "ops" because '
        '"a long reason that will not fit on the first line of the rule at all"\n'
    )
    assert format_text(messy) == (
        'policy "p" version "1"\nuse pii, secrets\ndefault deny\n\n'
        'const d = 2.00\nconst s = {"a", "b"}\n\n'
        'tool "t" (a: int, b?: map<str, int>) tags x, y\n\n'
        'scope agent.team == "s" {\n'
        '  allow tool "t" when args.a > 1 and (args.a < 5 or args.a == 9)\n}\n\n'
        'deny tool "t" when args.a > 100 unless approved by "ops"\n'
        '  because "a long reason that will not fit on the first line of the rule at all"\n'
    )


def test_parentheses_kept_only_where_needed() -> None:
    text = "const a = ((1 + 2)) * 3 - (4 - 5) - -(6)\nconst b = not (1 in [1]) or (true)\n"
    assert format_text(text) == (
        "const a = (1 + 2) * 3 - (4 - 5) - -6\nconst b = not (1 in [1]) or true\n"
    )


def test_strings_reescaped_and_regexes_verbatim() -> None:
    text = 'const s = "a\\/b\\u0041\\"\\\\\\t"\nmatcher m = r"\\d+\\"#"\n'
    assert format_text(text) == 'const s = "a/bA\\"\\\\\\t"\nmatcher m = r"\\d+\\"#"\n'


def test_comments_stay_in_place() -> None:
    text = (
        "# top\n\npolicy \"p\"   # name\n\n# about k\nconst k = 1\n"
        "scope agent.id == \"a\" {  # open\n  # inside\n  allow   # why\n  # end\n}  # closed\n"
        "deny when k > 1   # trailing when\n  because \"x\"\n# last\n"
    )
    assert format_text(text) == (
        "# top\n\npolicy \"p\"  # name\n\n# about k\nconst k = 1\n\n"
        "scope agent.id == \"a\" {  # open\n  # inside\n  allow  # why\n  # end\n}  # closed\n\n"
        "deny when k > 1 because \"x\"  # trailing when\n# last\n"
    )


def test_blank_lines_collapsed_and_groups_separated() -> None:
    text = 'allow tool "a"\n\n\n\nallow tool "b"\nallow tool "c"\ntest "t" {\n\n  expect allow\n}\n'
    assert format_text(text) == (
        'allow tool "a"\n\nallow tool "b"\nallow tool "c"\n\ntest "t" {\n  expect allow\n}\n'
    )


def test_tests_and_properties() -> None:
    text = (
        'test "t" { expect deny because "x"\n call "k" {a: 1, b: [1, 2]}\n'
        'given agent {id: "a"} approved by "g" labels ["l"] }\n'
        'property "p" { for all calls to tool tagged d where args.n > 1 expect not allow }\n'
    )
    assert format_text(text) == (
        'test "t" {\n  given agent {id: "a"} approved by "g" labels ["l"]\n'
        '  call "k" {a: 1, b: [1, 2]}\n  expect deny because "x"\n}\n\n'
        'property "p" {\n  for all calls to tool tagged d where args.n > 1\n'
        '  expect not allow\n}\n'
    )


def test_syntax_errors_are_reported_not_formatted() -> None:
    result = format_source(Source("bad.agentpolicy", "allow tool\ndeny when (\n"))
    assert result.text is None and not result.changed
    assert result.diagnostics and all(d.code.startswith("CH01") for d in result.diagnostics)
    with pytest.raises(ValueError):
        format_text("deny when (\n")


def test_empty_file() -> None:
    assert format_text("") == ""
    assert format_text("\n\n# only a comment\n\n") == "# only a comment\n"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_idempotent_and_scrambles_restored(path: Path) -> None:
    canonical = format_text(path.read_text(encoding="utf-8"), str(path))
    assert format_text(canonical) == canonical
    for seed in range(5):
        assert format_text(scramble(canonical, seed)) == canonical


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_are_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_text(text, str(path)) == text, f"run `charter fmt {path}`"


def test_scrambled_example_put_back_exactly() -> None:
    path = next(p for p in EXAMPLES if p.name == "policy.agentpolicy")
    text = path.read_text(encoding="utf-8")
    if format_text(text) != text:
        pytest.skip("example not canonical yet (test_examples_are_canonical says so)")
    messy = scramble(text, 7)
    assert messy != text
    assert format_text(messy) == text


# ── the command ─────────────────────────────────────────────────────────────


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_check_and_rewrite(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.agentpolicy", "default deny\n")
    messy = _write(tmp_path, "messy.agentpolicy", "default   deny\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["fmt", "--check", str(tmp_path)])
    assert result.exit_code == 1
    assert str(messy) in result.output and str(good) not in result.output
    assert messy.read_text() == "default   deny\n"
    result = runner.invoke(cli, ["fmt", str(tmp_path)])
    assert result.exit_code == 0
    assert messy.read_text() == "default deny\n"
    assert runner.invoke(cli, ["fmt", "--check", str(good), str(messy)]).exit_code == 0


def test_cli_leaves_files_with_syntax_errors_alone(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.agentpolicy", "deny   when (\n")
    result = CliRunner().invoke(cli, ["fmt", str(bad)])
    assert result.exit_code == 1
    assert "CH01" in result.output
    assert bad.read_text() == "deny   when (\n"


def test_cli_missing_path(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["fmt", str(tmp_path / "nope")]).exit_code == 2


def test_cli_stdin() -> None:
    result = CliRunner().invoke(cli, ["fmt", "-"], input="default   allow")
    assert result.exit_code == 0 and result.output == "default allow\n"


def test_cli_check_examples_and_they_still_compile() -> None:
    examples = EXAMPLES[0].parents[1]
    result = CliRunner().invoke(cli, ["fmt", "--check", str(examples)])
    assert result.exit_code == 0, result.output
    for folder in sorted({p.parent for p in EXAMPLES}):
        files = [p for p in EXAMPLES if p.parent == folder]
        assert not compile_sources(read_sources(files)).errors
