"""The generated parser tables: current with the grammar, enough to parse without Lark, and
reached through Lark's public API only.

`charter/grammar/_tables.py` is written by `scripts/gen_parser_tables.py` from
`charter/grammar/agentpolicy.lark`. Change the grammar, and these tests fail until the script
is run again.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from charter.grammar import _tables as tables
from charter.language import lexicon

ROOT = Path(__file__).resolve().parents[2]
GRAMMAR = ROOT / "charter" / "grammar" / "agentpolicy.lark"
TABLES = ROOT / "charter" / "grammar" / "_tables.py"
SCRIPT = ROOT / "scripts" / "gen_parser_tables.py"
REGENERATE = f"regenerate the parser tables: python {SCRIPT.relative_to(ROOT)}"

#: Lark internals the parser once read (`LALR_Parser._parse_table`, `Scanner._mres`, the
#: private `lalr_parser._Parser`, `ParsingFrontend._make_lexer_thread`...). None may come back.
PRIVATE_LARK = (
    "_parse_table",
    "_mres",
    "_Parser",
    "_make_lexer_thread",
    "_load_from_dict",
    "_expected",
    "_callbacks",
    "_terminals_dict",
    "_build_mres",
    "_create_unless",
    "_Token",
    "_plugins",
    "_width",
)
#: Lark modules whose contents are implementation, not interface.
PRIVATE_LARK_MODULES = ("lark.parsers", "lark.parser_frontends", "lark.load_grammar")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_parser_tables", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tables_are_for_this_grammar() -> None:
    digest = hashlib.sha256(GRAMMAR.read_bytes()).hexdigest()
    assert digest == tables.GRAMMAR_SHA256, f"agentpolicy.lark changed: {REGENERATE}"


def test_tables_are_what_the_generator_writes() -> None:
    """Regenerated in memory from the grammar, byte for byte (hash seed or not)."""
    assert _generator().generate() == TABLES.read_text(encoding="utf-8"), REGENERATE


def test_generator_check_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_every_state_has_a_lexer() -> None:
    assert len(tables.STATE_LEXER) == len(tables.ACTIONS)
    assert set(tables.STATE_LEXER) == set(range(len(tables.LEXERS)))
    for pattern in (tables.ROOT_LEXER, *tables.LEXERS):
        re.compile(pattern)


def test_the_words_read_as_keywords_are_grammar_keywords() -> None:
    """`lexicon.keeps_keyword` turns a NAME into its keyword's terminal: there must be one."""
    literals = set(tables.LITERALS.values())
    assert not (lexicon.ITEM_KEYWORDS | lexicon.CLAUSE_WORDS) - literals


def _fresh(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return result.stdout.strip()


def test_valid_files_parse_without_lark() -> None:
    policy = ROOT / "examples" / "coding" / "policy.agentpolicy"
    out = _fresh(
        "import sys\n"
        "from charter.language.parser import parse, parse_expr\n"
        "from charter.language.source import Source\n"
        f"text = open({str(policy)!r}, encoding='utf-8').read()\n"
        "module, diagnostics = parse(Source('policy.agentpolicy', text))\n"
        "assert diagnostics == [] and len(module.items) > 20, diagnostics\n"
        "expr, diagnostics = parse_expr('args.amount <= 100 and tool.name like \"fs.*\"')\n"
        "assert expr is not None and diagnostics == [], diagnostics\n"
        "print(sorted(m for m in sys.modules if m == 'lark' or m.startswith('lark.')))\n"
    )
    assert out == "[]", f"parsing a valid file imported {out}"


def test_a_syntax_error_brings_lark_in_to_describe_it() -> None:
    out = _fresh(
        "import sys\n"
        "from charter.language.parser import parse\n"
        "from charter.language.source import Source\n"
        "_, diagnostics = parse(Source('p', 'alow tool \"x\"\\n'))\n"
        "print(diagnostics[0].code, diagnostics[0].help, 'lark' in sys.modules)\n"
    )
    assert out == "CH0101 did you mean `allow`? True"


def _python_files() -> list[Path]:
    return sorted((ROOT / "charter").rglob("*.py")) + [SCRIPT]


def test_no_private_lark_names() -> None:
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, PRIVATE_LARK)) + r")\b")
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _python_files()
        if path != TABLES
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "private Lark names:\n" + "\n".join(hits)


def test_lark_is_used_through_its_public_api() -> None:
    """In a module that imports Lark: no `._private` attribute anywhere, no private name or
    module imported from Lark."""
    hits = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lark_imports = [
            node
            for node in ast.walk(tree)
            if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lark")
            or (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "lark"
                                                     for a in node.names))
        ]
        if not lark_imports:
            continue
        where = path.relative_to(ROOT)
        for node in lark_imports:
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                a.name for a in node.names
            ]
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            if any(m.startswith(PRIVATE_LARK_MODULES) for m in modules):
                hits.append(f"{where}:{node.lineno}: imports {modules}")
            if any(n.startswith("_") for n in names):
                hits.append(f"{where}:{node.lineno}: imports {names}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.endswith("__")
            ):
                hits.append(f"{where}:{node.lineno}: .{node.attr}")
    assert not hits, "Lark used beyond its public API:\n" + "\n".join(hits)
