"""Source text, spans and diagnostics: the one error type every stage reports with."""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["error", "warning"]


class Span(msgspec.Struct, frozen=True):
    """A region of one source file. Lines and columns are 1-based; offsets are 0-based.

    A msgspec struct, like the syntax nodes: cheap to define and to build (the parser makes
    one per node)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0
    end: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Span("<builtin>", 0, 0, 0, 0)


class Source(msgspec.Struct, frozen=True):
    """A policy file's text and name."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


class Diagnostic(msgspec.Struct, frozen=True):
    """One problem found in a policy: rendered `file:line:col: error[CODE]: message`."""

    code: str
    severity: Severity
    span: Span
    message: str
    help: str | None = None
    notes: tuple[str, ...] = ()

    def render(self, source: Source | None = None) -> str:
        """Render with the source line and a caret under the span, rustc-style."""
        head = f"{self.span}: {self.severity}[{self.code}]: {self.message}"
        out = [head]
        if source is not None and self.span.line > 0:
            text = source.line_text(self.span.line)
            gutter = str(self.span.line)
            pad = " " * len(gutter)
            width = 1
            if self.span.end_line == self.span.line and self.span.end_col > self.span.col:
                width = self.span.end_col - self.span.col
            out.append(f"{pad} |")
            out.append(f"{gutter} | {text}")
            out.append(f"{pad} | {' ' * (self.span.col - 1)}{'^' * width}")
        if self.help:
            out.append(f"  = help: {self.help}")
        for note in self.notes:
            out.append(f"  = note: {note}")
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "message": self.message,
            "help": self.help,
        }


class CompileError(Exception):
    """Raised by `charter.compile`/`charter.load` when a policy has errors."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, Source]) -> None:
        self.diagnostics = diagnostics
        self.sources = sources
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources.get(d.span.file)) for d in self.diagnostics)
