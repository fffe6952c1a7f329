"""The diagnostics registry (`charter/language/diagnostics.py`) and what is generated from it.

Every registry example is a real policy: compiled (and its tests run), it produces exactly
one diagnostic, of its code, with the help the registry records. `docs/errors.md` is what
`scripts/gen_errors_doc.py` prints.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from charter.language import diagnostics as registry
from charter.language.diagnostics import REGISTRY, SECTIONS, Code, section_of

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_errors_doc.py"
DOC = ROOT / "docs" / "errors.md"
CODE = re.compile(r"(CH|W)[0-9]{4}")
#: the numbers compile-time diagnostics use (W05xx and W06xx are static analysis findings,
#: which `charter analyze` numbers in a table of its own)
COMPILE_TIME = re.compile(r"CH0[0-9]{3}|W03[0-9]{2}")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_errors_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def _entries() -> list[object]:
    return [
        pytest.param(
            e,
            id=e.code,
            marks=[]
            if e.example is not None
            else pytest.mark.skip(reason=f"no example policy: {e.no_example}"),
        )
        for e in REGISTRY.values()
    ]


@pytest.mark.parametrize("entry", _entries())
def test_example_produces_exactly_its_code(entry: Code) -> None:
    found = GEN.run_example(entry)
    assert [f.code for f in found] == [entry.code], "\n\n".join(f.rendered for f in found)
    assert found[0].help == entry.help, found[0].rendered


def test_only_internal_errors_lack_an_example() -> None:
    without = {e.code for e in REGISTRY.values() if e.example is None}
    assert without == {"CH0100", "CH0214", "CH0500"}


def test_registry_entries_are_well_formed() -> None:
    assert list(REGISTRY) == sorted(REGISTRY, key=lambda c: (c[0] == "W", c[:4] == "CH05", c))
    for code, e in REGISTRY.items():
        assert CODE.fullmatch(code) and e.code == code
        assert e.severity == ("warning" if code.startswith("W") else "error")
        assert section_of(e) in SECTIONS
        # the style guide: lower case, no final period, one line
        for text in (e.title, e.help or "x"):
            assert "\n" not in text and not text.endswith("."), (code, text)
            assert not text[0].isupper() or text.startswith(("RE2", "Charter")), (code, text)
        assert e.explanation.endswith((".", ".)")), code
        assert (e.example is None) != (e.no_example is None), code


def test_every_section_has_codes() -> None:
    for s in SECTIONS:
        assert any(e.code.startswith(s.prefix) for e in REGISTRY.values()), s.title


def test_errors_md_is_generated_from_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == GEN.generate(), (
        "docs/errors.md is stale: run `python scripts/gen_errors_doc.py`"
    )


def test_errors_md_documents_every_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    for code in REGISTRY:
        assert f"### {code}: " in text, code


# ── every site uses the registry ─────────────────────────────────────────────

PACKAGE = ROOT / "charter"
REGISTRY_MODULE = PACKAGE / "language" / "diagnostics.py"
FIX = "report through an entry of charter/language/diagnostics.py: ENTRY.at(span, message, help)"


@functools.cache
def _sources() -> list[tuple[Path, ast.Module]]:
    return [
        (p, ast.parse(p.read_text(encoding="utf-8"), str(p)))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p != REGISTRY_MODULE
    ]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"


def test_no_code_is_written_as_a_string() -> None:
    """A code spelled out (`"CH0203"`, at a Diagnostic site or in a comparison) bypasses the
    registry: the doc, the examples and the severity would not know about it."""
    found = [
        f"{_where(p, n)}: {n.value!r}"
        for p, tree in _sources()
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and COMPILE_TIME.fullmatch(n.value)
    ]
    assert not found, f"{FIX}\n" + "\n".join(found)


def test_diagnostics_are_built_only_by_registry_entries() -> None:
    found = [
        _where(p, n)
        for p, tree in _sources()
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Diagnostic"
    ]
    assert not found, f"{FIX}\n" + "\n".join(found)


def _imported_entries() -> set[str]:
    names = set()
    for _, tree in _sources():
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module == "charter.language.diagnostics":
                names |= {a.name for a in n.names}
    return names


def test_every_registry_entry_is_used_and_every_used_name_is_an_entry() -> None:
    entries = {name for name, value in vars(registry).items() if isinstance(value, Code)}
    assert {vars(registry)[n].code for n in entries} == set(REGISTRY)  # one name per code
    imported = _imported_entries()
    assert entries - imported == set(), "registry entries no site reports"
    assert {n for n in imported if n.isupper()} - entries - {"REGISTRY", "SECTIONS"} == set()


def test_every_code_mentioned_exists() -> None:
    """Comments, docstrings and docs name only codes the registry has."""
    texts = [p for p in PACKAGE.rglob("*.py") if p != REGISTRY_MODULE]
    texts += [p for p in (ROOT / "docs").glob("*.md")] + [ROOT / "README.md"]
    unknown = {
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in texts
        for m in re.finditer(rf"\b(?:{COMPILE_TIME.pattern})\b", p.read_text(encoding="utf-8"))
        if m.group(0) not in REGISTRY
    }
    assert not unknown, "\n".join(sorted(unknown))


# ── the style guide, where a message is written out ──────────────────────────

#: proper nouns a message or help may start with
PROPER = ("Charter", "RE2", "MCP", "JSON")


def _text(node: ast.expr) -> str | None:
    """A message's literal text, `{}` for each interpolated part (None: not written out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return (_text(node.left) or "{}") + (_text(node.right) or "{}")
    return None


def _messages() -> list[tuple[str, str, str]]:
    """(where, "message" or "help", text) for every report through an entry written out."""
    entries = {name for name, value in vars(registry).items() if isinstance(value, Code)}
    out = []
    for path, tree in _sources():
        for n in ast.walk(tree):
            if not isinstance(n, ast.Call) or not isinstance(n.func, ast.Attribute):
                continue
            if n.func.attr == "at" and isinstance(n.func.value, ast.Name):
                args = n.args[1:] if n.func.value.id in entries else []
            elif n.func.attr in ("error", "warn") and n.args and isinstance(n.args[0], ast.Name):
                args = n.args[2:] if n.args[0].id in entries else []
            else:
                continue
            for kind, arg in zip(("message", "help"), args, strict=False):
                text = _text(arg)
                if text is not None:
                    out.append((_where(path, n), kind, text))
    return out


def test_messages_follow_the_style_guide() -> None:
    """One line, lower case, no final period, no single quotes around policy text."""
    found = _messages()
    assert len(found) > 100  # the scan sees the sites
    bad = [
        f"{where} {kind}: {text!r}"
        for where, kind, text in found
        if "\n" in text
        or text.endswith(".")
        or (text[:1].isupper() and not text.startswith(PROPER))
        or re.search(r"(^|[\s(])'", text)
    ]
    assert not bad, "\n".join(bad)


# ── charter check --explain ──────────────────────────────────────────────────


def test_check_explain_prints_the_registry_entry() -> None:
    from click.testing import CliRunner

    from charter.cli.check import check_cmd

    out = CliRunner().invoke(check_cmd, ["--explain", "ch0203"])
    assert out.exit_code == 0, out.output
    entry = REGISTRY["CH0203"]
    assert out.output.startswith("CH0203: type mismatch (error)\n")
    assert entry.example is not None and entry.example.splitlines()[1] in out.output
    assert f"the help: {entry.help}" in out.output
    internal = CliRunner().invoke(check_cmd, ["--explain", "CH0500"])
    assert internal.exit_code == 0 and "No example policy" in internal.output


def test_check_explain_unknown_code_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from charter.cli.check import check_cmd

    out = CliRunner().invoke(check_cmd, ["--explain", "CH0230"])
    assert out.exit_code == 2
    assert "no diagnostic code `CH0230`; did you mean `CH0223`?" in out.output
    assert CliRunner().invoke(check_cmd, []).exit_code == 2  # no PATH and no --explain
