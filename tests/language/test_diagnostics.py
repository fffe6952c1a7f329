"""The diagnostics registry (`charter/language/diagnostics.py`) and what is generated from it.

Every registry example is a real policy: compiled (and its tests run), it produces exactly
one diagnostic, of its code, with the help the registry records. `docs/errors.md` is what
`scripts/gen_errors_doc.py` prints.
"""

from __future__ import annotations

import ast
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
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and CODE.fullmatch(n.value)
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
        for m in re.finditer(r"\b(?:CH|W)[0-9]{4}\b", p.read_text(encoding="utf-8"))
        if m.group(0) not in REGISTRY
    }
    assert not unknown, "\n".join(sorted(unknown))
