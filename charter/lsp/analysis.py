"""Compile an open document the way `charter check` does, with its sibling files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from charter.compiler.pipeline import Compilation, compile_sources
from charter.compiler.units import TextOf, compile_with_siblings, disk_text
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.source import Diagnostic, Source

#: Text of a sibling file that is open in the editor (unsaved changes win over the disk).
OpenText = Callable[[Path], str | None]
#: Larger policies are analyzed by `charter analyze`, not on every keystroke.
MAX_ANALYZED_RULES = 300


@dataclass(frozen=True)
class Analysis:
    """One document compiled together with the other policy files of its directory."""

    name: str
    text: str
    comp: Compilation

    @property
    def checked(self) -> CheckedPolicy | None:
        return self.comp.checked

    @property
    def module(self) -> ast.Module | None:
        """The document's own syntax tree."""
        return next((m for m in self.comp.modules if m.file == self.name), None)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """The diagnostics located in the document (not in its siblings)."""
        return [d for d in self.comp.diagnostics if d.span.file == self.name]

    @cached_property
    def findings(self) -> list[Any]:
        """The static analysis's findings in the document (`charter analyze`; witnesses
        decided by the reference interpreter), none while the policy has errors."""
        from charter.compiler.analysis import analyze
        from charter.compiler.analysis.lint import apply, suppressions
        from charter.compiler.analysis.locate import locator

        comp = self.comp
        if comp.errors or comp.ir is None or comp.tree is None or (
                len(comp.ir.rules) > MAX_ANALYZED_RULES):
            return []
        try:
            found = analyze(comp.ir, comp.tree, locator=locator(comp.checked))
        except Exception:  # noqa: BLE001 - an analysis bug must not take the editor down
            return []
        found = apply(found, suppressions(comp.checked))
        # Inconclusive notes (I0599) stay in `charter analyze`: an editor shows what is known.
        return [f for f in found if f.span.file == self.name and f.status != "inconclusive"]


def _reader(open_text: OpenText) -> TextOf:
    """Open buffers first, then the disk; an unreadable sibling is left out."""

    def text_of(path: Path) -> str | None:
        text = open_text(path)
        if text is not None:
            return text
        try:
            return disk_text(path)
        except (OSError, UnicodeDecodeError):
            return None

    return text_of


def analyze(name: str, text: str, path: Path | None, open_text: OpenText) -> Analysis:
    """Compile the document `name` (on disk at `path`, if it is a file) exactly as
    `charter check` compiles its directory, so both report the same diagnostics."""
    if path is None:
        return Analysis(name, text, compile_sources([Source(name, text)]))
    return Analysis(name, text, compile_with_siblings(path, text, _reader(open_text)))
