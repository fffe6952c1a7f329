"""One policy-file discovery: `load`, `eval`, `check`, `test`, the pytest plugin and the
language server see the same files for the same directory (issue 11, bug 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.compiler.sources import discover, unit_dirs
from charter.compiler.units import units

TOP = 'policy "top"\ndefault allow\ntool "kb.read" ()\n'
DENY = 'policy "sub"\ndefault deny\ntool "kb.read" ()\ndeny tool "kb.read"\n'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "main.agentpolicy").write_text(TOP)
    (tmp_path / "main_test.agentpolicy").write_text(
        'test "reads" {\n  call "kb.read" {}\n  expect allow\n}\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deny.agentpolicy").write_text(DENY)
    return tmp_path


def test_load_and_eval_decide_the_same(tree: Path) -> None:
    request = tree / "r.json"
    request.write_text(json.dumps({"tool": "kb.read"}))
    loaded = charter.load(tree).decide({"tool": "kb.read"}).effect
    out = CliRunner().invoke(cli, ["eval", str(tree), "--request", str(request)])
    assert out.exit_code == 0, out.output
    assert loaded == json.loads(out.output)["effect"] == "allow"


def test_a_directory_is_one_policy(tree: Path) -> None:
    assert discover(tree) == [tree / "main.agentpolicy"]
    assert discover(tree, include_tests=True) == [tree / "main.agentpolicy",
                                                  tree / "main_test.agentpolicy"]
    assert unit_dirs(tree) == [tree, tree / "sub"]
    assert list(units(tree)) == [discover(tree, include_tests=True),
                                 [tree / "sub" / "deny.agentpolicy"]]


def test_load_of_a_parent_names_its_subdirectories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deny.agentpolicy").write_text(DENY)
    with pytest.raises(FileNotFoundError, match="subdirectories are policies of their own"):
        charter.load(tmp_path)
    assert charter.load(tmp_path / "sub").decide({"tool": "kb.read"}).effect == "deny"
