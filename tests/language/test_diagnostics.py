"""The diagnostics registry (`charter/language/diagnostics.py`) and what is generated from it.

Every registry example is a real policy: compiled (and its tests run), it produces exactly
one diagnostic, of its code, with the help the registry records. `docs/errors.md` is what
`scripts/gen_errors_doc.py` prints.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

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
