"""Compiling one unit (a directory's policy files with its tests, as
`charter.compiler.sources` finds them): one definition for `charter check` and the language
server, so that the two report the same diagnostics for the same file.

Order matters: a name declared twice is reported at its later declaration, so an editor that
compiled the open file first would put the error in a file nobody is looking at, and show
none where `charter check` shows it. Files are compiled in sorted path order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from charter.compiler.pipeline import Compilation, compile_sources
from charter.compiler.sources import unit_of
from charter.language.source import Source

#: The text of a file of the unit (e.g. an editor's unsaved buffer), or None to leave it out.
TextOf = Callable[[Path], str | None]


def disk_text(path: Path) -> str:
    """The file's text as `charter check` reads it (errors propagate)."""
    return path.read_text(encoding="utf-8")


def compile_unit(files: Sequence[Path], text_of: TextOf = disk_text) -> Compilation:
    """Compile the files of one unit together, in unit order."""
    sources = []
    for f in sorted(files):
        text = text_of(f)
        if text is not None:
            sources.append(Source(str(f), text))
    return compile_sources(sources)


def compile_with_siblings(path: Path, text: str, text_of: TextOf) -> Compilation:
    """Compile a file (with the text given) as part of its directory's unit, the way
    `charter check DIRECTORY` compiles it."""
    return compile_unit(unit_of(path), lambda p: text if p == path else text_of(p))
