"""The VS Code extension: its TextMate grammars, checked by vscode-tmgrammar-test.

The sample files under editors/vscode/tests carry `# ^^^ scope` assertions; this runs the real
tokenizer (vscode-textmate + Oniguruma) over them. The tool comes from
`npm install` in editors/vscode; without it the tests skip, or fail when CI is set.
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

EXTENSION = Path(__file__).resolve().parents[2] / "editors" / "vscode"
TOOL = EXTENSION / "node_modules" / ".bin" / "vscode-tmgrammar-test"

TEXTMATE_SCOPE_FOR = {
    "KEYWORDS": "keyword.control.agentpolicy",
    "OPERATORS": "keyword.operator.word.agentpolicy",
    "EFFECTS": "keyword.other.effect.agentpolicy",
    "STAGES": "support.constant.stage.agentpolicy",
    "TYPES": "support.type.primitive.agentpolicy",
    "FUNCTIONS": "support.function.builtin.agentpolicy",
    "CONSTANTS": "constant.language.boolean.agentpolicy",
    "METRICS": "support.constant.metric.agentpolicy",
    "MODULES": "entity.name.namespace.agentpolicy",
}
SPECIAL_SCOPES = {
    "use": "keyword.control.import.agentpolicy",
    "const": "storage.type.const.agentpolicy",
    "matcher": "storage.type.matcher.agentpolicy",
}


def tmgrammar_test(*args: str) -> subprocess.CompletedProcess[str]:
    if not TOOL.exists() or shutil.which("node") is None:
        message = "vscode-tmgrammar-test missing: run `npm ci` in editors/vscode (needs node)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [str(TOOL), *args],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sample_files_have_assertions() -> None:
    samples = sorted((EXTENSION / "tests").glob("*.agentpolicy"))
    assert len(samples) >= 4
    for sample in samples:
        lines = sample.read_text().splitlines()
        assert lines[0].startswith('# SYNTAX TEST "source.agentpolicy"')
        assert sum(1 for line in lines if re.match(r"#\s*(\^|<-)", line)) > 20, sample.name


def test_agentpolicy_samples() -> None:
    proc = tmgrammar_test("tests/*.agentpolicy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("run successfuly") == len(
        list((EXTENSION / "tests").glob("*.agentpolicy"))
    )


def test_markdown_fence_injection() -> None:
    # The stub stands in for VS Code's Markdown grammar, which is not on npm.
    proc = tmgrammar_test("-g", "tests/markdown.tmLanguage.json", "tests/*.test.md")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_failing_assertion_is_reported(tmp_path: Path) -> None:
    # Guards against a runner that passes vacuously (wrong glob, wrong grammar).
    bad = tmp_path / "bad.agentpolicy"
    bad.write_text(
        '# SYNTAX TEST "source.agentpolicy" "bad"\ndeny\n#<---- keyword.control.agentpolicy\n'
    )
    proc = tmgrammar_test(str(bad))
    assert proc.returncode != 0
    assert "keyword.control.agentpolicy" in proc.stdout + proc.stderr


def test_every_keyword_gets_its_scope(tmp_path: Path) -> None:
    lines = ['# SYNTAX TEST "source.agentpolicy" "every keyword"']
    for group, words in K.GROUPS.items():
        for word in words:
            scope = SPECIAL_SCOPES.get(word, TEXTMATE_SCOPE_FOR[group])
            # A module name only reads as a module before a member access.
            lines.append(f"{word}.x" if group == "MODULES" else word)
            lines.append("#<" + "-" * len(word) + " " + scope)
    words_file = tmp_path / "words.agentpolicy"
    words_file.write_text("\n".join(lines) + "\n")
    proc = tmgrammar_test(str(words_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_manifest() -> None:
    manifest = json.loads((EXTENSION / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    assert language["id"] == "agentpolicy"
    assert language["extensions"] == [".agentpolicy"]
    grammars = {g["scopeName"]: g for g in manifest["contributes"]["grammars"]}
    assert grammars["source.agentpolicy"]["language"] == "agentpolicy"
    assert grammars["markdown.agentpolicy.codeblock"]["injectTo"] == ["text.html.markdown"]
    for grammar in grammars.values():
        path = EXTENSION / grammar["path"]
        assert json.loads(path.read_text())["scopeName"] == grammar["scopeName"]
    assert "vscode-tmgrammar-test" in manifest["devDependencies"]


def test_language_configuration() -> None:
    config = json.loads((EXTENSION / "language-configuration.json").read_text())
    assert config["comments"] == {"lineComment": "#"}
    assert ["{", "}"] in config["brackets"]
    assert {"open": "{", "close": "}"} in config["autoClosingPairs"]
    # The indentation patterns are plain enough to mean the same in JavaScript and Python.
    increase = re.compile(config["indentationRules"]["increaseIndentPattern"])
    decrease = re.compile(config["indentationRules"]["decreaseIndentPattern"])
    assert increase.search('scope agent.team == "support" {')
    assert increase.search('test "a {" {  # note')
    assert increase.search("const xs = [")
    assert not increase.search('deny when args.x == "{"')
    assert not increase.search("# {")
    assert not increase.search('allow tool "kb.*"')
    assert decrease.search("  }")
    assert not decrease.search('  deny because "}"')
