"""Compile an open document the way `charter check` does, with its sibling files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from charter.compiler.pipeline import Compilation, compile_sources
from charter.compiler.units import TextOf, compile_with_siblings, disk_text
from charter.language import ast
from charter.language.checked import CheckedPolicy
from charter.language.source import Diagnostic, Source

#: Text of a sibling file that is open in the editor (unsaved changes win over the disk).
OpenText = Callable[[Path], str | None]


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
