"""Compile an open document the way `charter check` would, with its sibling files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from charter.compiler.pipeline import SUFFIX, Compilation, compile_sources
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


def siblings(path: Path, open_text: OpenText) -> list[Source]:
    """The other `.agentpolicy` files of the document's directory, so that declarations in
    another file of the same policy resolve. Unreadable files are skipped."""
    out: list[Source] = []
    try:
        candidates = sorted(path.parent.glob(f"*{SUFFIX}"))
    except OSError:
        return out
    for other in candidates:
        if other.resolve() == path.resolve() or not other.is_file():
            continue
        text = open_text(other)
        if text is None:
            try:
                text = other.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        out.append(Source(str(other), text))
    return out


def analyze(name: str, text: str, path: Path | None, open_text: OpenText) -> Analysis:
    """Compile the document `name` (on disk at `path`, if it is a file)."""
    sources = [Source(name, text)]
    if path is not None:
        sources += siblings(path, open_text)
    return Analysis(name, text, compile_sources(sources))
