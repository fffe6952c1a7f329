"""The Vim runtime files under editors/vim, driven through a real Vim (and Neovim if present).

Each test writes a small Vim script that loads a file with `editors/vim` first on the
runtimepath, collects what it needs (syntax group names via synID, options, re-indented text)
into a JSON file, and quits. Vim is required when the CI environment variable is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from charter.language import keywords as K

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "editors" / "vim"
SAMPLE = Path(__file__).parent / "samples" / "support.agentpolicy"


def _editor_command(editor: str) -> list[str]:
    exe = shutil.which(editor)
    if exe is None:
        if editor == "vim" and os.environ.get("CI"):
            pytest.fail("vim is required in CI (apt-get install -y vim)")
        pytest.skip(f"{editor} is not installed")
    # No user config, no viminfo/shada, no swap file: only our runtime files count.
    common = ["-u", "NONE", "-i", "NONE", "-n"]
    if editor == "nvim":
        return [exe, "--headless", *common]
    return [exe, "-N", "-es", *common]


@pytest.fixture(params=["vim", "nvim"])
def editor(request: pytest.FixtureRequest) -> list[str]:
    return _editor_command(request.param)


def run_vim(editor: list[str], tmp_path: Path, body: str) -> object:
    """Run `body` (Vim script that fills the list `out`) and return `out`, decoded from JSON."""
    result_file = tmp_path / "result.json"
    script = tmp_path / "drive.vim"
    script.write_text(
        "let &runtimepath = " + _vim_string(str(RUNTIME)) + " . ',' . &runtimepath\n"
        "filetype plugin indent on\n"
        "syntax on\n"
        "let out = []\n"
        f"{body}\n"
        f"call writefile([json_encode(out)], {_vim_string(str(result_file))})\n"
        "qall!\n"
    )
    proc = subprocess.run(
        [*editor, "-S", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result_file.exists(), f"{editor[0]} failed: {proc.returncode} {proc.stderr}"
    return json.loads(result_file.read_text())


def _vim_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def syntax_groups(
    editor: list[str], tmp_path: Path, path: Path, positions: list[tuple[int, int]]
) -> list[str]:
    """Syntax group name at each 1-based (line, column) of `path`."""
    body = (
        f"execute 'edit' fnameescape({_vim_string(str(path))})\n"
        f"for [l, c] in {json.dumps([list(p) for p in positions])}\n"
        "  call add(out, synIDattr(synID(l, c, 1), 'name'))\n"
        "endfor"
    )
    names = run_vim(editor, tmp_path, body)
    assert isinstance(names, list)
    return [str(n) for n in names]


def locate(lines: list[str], line_part: str, token: str, nth: int = 1) -> tuple[int, int]:
    """1-based position of the nth whole-word occurrence of `token` on the line containing
    `line_part`."""
    for number, line in enumerate(lines, start=1):
        if line_part in line:
            # Words must stand alone (`in` is not inside `input`); symbols need not.
            pattern = (
                rf"(?<!\w){re.escape(token)}(?!\w)" if token[0].isalnum() else re.escape(token)
            )
            hits = [m.start() for m in re.finditer(pattern, line)]
            return number, hits[nth - 1] + 1
    raise AssertionError(f"no line contains {line_part!r}")


# (line containing, token, occurrence, expected group) over tests/editors/samples.
SAMPLE_EXPECTATIONS = [
    ("# The example", "#", 1, "agentpolicyComment"),
    ('policy "support-bot"', "policy", 1, "agentpolicyKeyword"),
    ('policy "support-bot"', "support", 1, "agentpolicyString"),
    ('policy "support-bot"', "version", 1, "agentpolicyKeyword"),
    ("use pii, secrets", "use", 1, "agentpolicyImport"),
    ("use pii, secrets", "pii", 1, "agentpolicyUseName"),
    ("use pii, secrets", "secrets", 1, "agentpolicyUseName"),
    ("default deny", "default", 1, "agentpolicyKeyword"),
    ("default deny", "deny", 1, "agentpolicyEffect"),
    ("const eu_regions", "const", 1, "agentpolicyDefine"),
    ("const eu_regions", "eu_regions", 1, "agentpolicyConstName"),
    ("matcher employee_id", "employee_id", 1, "agentpolicyMatcherName"),
    ("matcher employee_id", "r", 1, "agentpolicyRegexDelimiter"),
    ("matcher employee_id", "6", 1, "agentpolicyRegex"),
    ("matcher employee_id", "0", 1, "agentpolicyRegexClass"),
    ('tool "refund.create" (amount', "decimal", 1, "agentpolicyType"),
    ('tool "refund.create" (amount', "str", 1, "agentpolicyType"),
    ('tool "refund.create" (amount', "tags", 1, "agentpolicyKeyword"),
    ('tool "refund.create" (amount', "write", 1, "agentpolicyTagName"),
    ('tool "refund.create" (amount', "money", 1, "agentpolicyTagName"),
    ('tool "kb.read"', "?", 1, "agentpolicyOperator"),
    ('tool "kb.read"', "int", 1, "agentpolicyType"),
    ('allow tool "kb.*"', "allow", 1, "agentpolicyEffect"),
    ('allow tool "kb.*"', "tool", 1, "agentpolicyKeyword"),
    ("scope agent.team", "scope", 1, "agentpolicyKeyword"),
    ("scope agent.team", "agent", 1, "agentpolicyContext"),
    ("scope agent.team", "team", 1, "agentpolicyProperty"),
    ("scope agent.team", "==", 1, "agentpolicyOperator"),
    ('@id("refund-approval")', "@id", 1, "agentpolicyAnnotation"),
    ('@id("refund-approval")', "@owner", 1, "agentpolicyAnnotation"),
    ('require approval from "finance" tool', "require", 1, "agentpolicyEffect"),
    ('require approval from "finance" tool', "approval", 1, "agentpolicyEffect"),
    ('require approval from "finance" tool', "from", 1, "agentpolicyKeyword"),
    ('require approval from "finance" tool', "when", 1, "agentpolicyKeyword"),
    ('require approval from "finance" tool', "args", 1, "agentpolicyContext"),
    ('require approval from "finance" tool', "amount", 1, "agentpolicyProperty"),
    ('require approval from "finance" tool', "100", 1, "agentpolicyNumber"),
    ('because "refunds over', "because", 1, "agentpolicyKeyword"),
    ("deny tool tagged export", "tagged", 1, "agentpolicyKeyword"),
    ("deny tool tagged export", "export", 1, "agentpolicyTagName"),
    ("deny tool tagged export", "not", 1, "agentpolicyOperatorWord"),
    ("deny tool tagged export", "in", 1, "agentpolicyOperatorWord"),
    ("unless approved", "unless", 1, "agentpolicyKeyword"),
    ("unless approved", "approved", 1, "agentpolicyKeyword"),
    ("args contains pii.card", "contains", 1, "agentpolicyOperatorWord"),
    ("args contains pii.card", "pii", 1, "agentpolicyModule"),
    ("args contains pii.card", "card", 1, "agentpolicyProperty"),
    ("args contains pii.card", "or", 1, "agentpolicyOperatorWord"),
    # `any` is a type, but as a member name it is a property.
    ("args contains pii.card", "any", 1, "agentpolicyProperty"),
    ("budget cost_usd", "budget", 1, "agentpolicyKeyword"),
    ("budget cost_usd", "cost_usd", 1, "agentpolicyMetric"),
    ("budget cost_usd", "<=", 1, "agentpolicyOperator"),
    ("budget cost_usd", "2.00", 1, "agentpolicyDecimal"),
    ("budget cost_usd", "per", 1, "agentpolicyKeyword"),
    ("budget cost_usd", "session", 1, "agentpolicyKeyword"),
    ("limit calls", "limit", 1, "agentpolicyKeyword"),
    ("limit calls", "calls", 1, "agentpolicyKeyword"),
    ("limit calls", "1h", 1, "agentpolicyDuration"),
    ("session.consecutive_tool_calls", "session", 1, "agentpolicyContext"),
    ("session.consecutive_tool_calls", "consecutive_tool_calls", 1, "agentpolicyProperty"),
    ("on tool_result redact", "on", 1, "agentpolicyKeyword"),
    ("on tool_result redact", "tool_result", 1, "agentpolicyStage"),
    ("on tool_result redact", "redact", 1, "agentpolicyEffect"),
    ("on tool_result redact", "result", 1, "agentpolicyKeyword"),
    ("on tool_result label", "label", 1, "agentpolicyEffect"),
    ("in session.labels", "session", 1, "agentpolicyContext"),
    ("in session.labels", "labels", 1, "agentpolicyProperty"),
    ("@shadow", "@shadow", 1, "agentpolicyAnnotation"),
    ("url_host(args.url)", "url_host", 1, "agentpolicyFunction"),
    ('test "big refunds', "test", 1, "agentpolicyKeyword"),
    ("given agent", "given", 1, "agentpolicyKeyword"),
    ("given agent", "0.10", 1, "agentpolicyDecimal"),
    ('call "refund.create" {amount', "call", 1, "agentpolicyKeyword"),
    ('expect require approval from "finance"', "expect", 1, "agentpolicyKeyword"),
    ('property "destructive', "property", 1, "agentpolicyKeyword"),
    ("for all calls to", "for", 1, "agentpolicyKeyword"),
    ("for all calls to", "all", 1, "agentpolicyKeyword"),
    ("for all calls to", "to", 1, "agentpolicyKeyword"),
]


def test_highlight_groups_over_the_design_example(editor: list[str], tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines()
    positions = [locate(lines, part, token, nth) for part, token, nth, _ in SAMPLE_EXPECTATIONS]
    got = syntax_groups(editor, tmp_path, SAMPLE, positions)
    expected = [group for *_, group in SAMPLE_EXPECTATIONS]
    mismatches = [
        (part, token, want, have)
        for (part, token, _, want), have in zip(SAMPLE_EXPECTATIONS, got, strict=True)
        if want != have
    ]
    assert not mismatches, mismatches
    assert len(got) == len(expected)


VIM_GROUP_FOR = {
    "KEYWORDS": "agentpolicyKeyword",
    "OPERATORS": "agentpolicyOperatorWord",
    "EFFECTS": "agentpolicyEffect",
    "STAGES": "agentpolicyStage",
    "TYPES": "agentpolicyType",
    "FUNCTIONS": "agentpolicyFunction",
    "CONSTANTS": "agentpolicyBoolean",
    "METRICS": "agentpolicyMetric",
    "MODULES": "agentpolicyModule",
}
SPECIAL = {"use": "agentpolicyImport", "const": "agentpolicyDefine", "matcher": "agentpolicyDefine"}


def test_every_keyword_is_highlighted(editor: list[str], tmp_path: Path) -> None:
    cases = []
    for group, words in K.GROUPS.items():
        for word in words:
            # A module name only reads as a module before a member access.
            text = f"{word}.x" if group == "MODULES" else word
            cases.append((text, SPECIAL.get(word, VIM_GROUP_FOR[group])))
    path = tmp_path / "words.agentpolicy"
    path.write_text("".join(f"{text}\n" for text, _ in cases))
    got = syntax_groups(editor, tmp_path, path, [(n, 1) for n in range(1, len(cases) + 1)])
    wrong = [
        (text, want, have) for (text, want), have in zip(cases, got, strict=True) if want != have
    ]
    assert not wrong, wrong


def test_filetype_detection_and_options(editor: list[str], tmp_path: Path) -> None:
    body = (
        f"execute 'edit' fnameescape({_vim_string(str(SAMPLE))})\n"
        "call add(out, &filetype)\n"
        "call add(out, &commentstring)\n"
        "call add(out, &comments)\n"
        "call add(out, [&expandtab, &shiftwidth, &softtabstop])\n"
        "call add(out, &indentexpr)\n"
        "call add(out, exists('b:current_syntax') ? b:current_syntax : '')"
    )
    assert run_vim(editor, tmp_path, body) == [
        "agentpolicy",
        "# %s",
        ":#",
        [1, 2, 2],
        "GetAgentPolicyIndent(v:lnum)",
        "agentpolicy",
    ]


def test_other_files_are_not_claimed(editor: list[str], tmp_path: Path) -> None:
    other = tmp_path / "policy.txt"
    other.write_text('deny tool "x"\n')
    body = f"execute 'edit' fnameescape({_vim_string(str(other))})\ncall add(out, &filetype)"
    assert run_vim(editor, tmp_path, body) != ["agentpolicy"]


def reindent(editor: list[str], tmp_path: Path, text: str) -> str:
    flat = tmp_path / "flat.agentpolicy"
    flat.write_text(text)
    body = (
        f"execute 'edit' fnameescape({_vim_string(str(flat))})\n"
        "normal! gg=G\n"
        "let out = getline(1, '$')"
    )
    lines = run_vim(editor, tmp_path, body)
    assert isinstance(lines, list)
    return "\n".join(str(line) for line in lines) + "\n"


def test_indent_reproduces_the_sample(editor: list[str], tmp_path: Path) -> None:
    # Blocks indent by two; `because` continuation lines hang one level under their rule.
    expected = SAMPLE.read_text()
    flat = "".join(line.lstrip() + "\n" for line in expected.splitlines())
    assert flat != expected
    assert reindent(editor, tmp_path, flat) == expected


def test_indent_ignores_braces_in_strings_and_comments(editor: list[str], tmp_path: Path) -> None:
    text = (
        'scope agent.team == "{" {\n'
        'deny when args.x == "}"  # {\n'
        'test "t" {\n'
        'given agent {id: "a"}\n'
        "expect deny\n"
        "}\n"
        "}\n"
        "deny\n"
        "when true\n"
        'because "x"\n'
        "allow\n"
    )
    assert reindent(editor, tmp_path, text) == (
        'scope agent.team == "{" {\n'
        '  deny when args.x == "}"  # {\n'
        '  test "t" {\n'
        '    given agent {id: "a"}\n'
        "    expect deny\n"
        "  }\n"
        "}\n"
        "deny\n"
        "  when true\n"
        '  because "x"\n'
        "allow\n"
    )
