"""The language server: pygls features wired to the analysis, hover, definition,
completion and formatter modules."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from charter.language.formatter import FormatError, format_source
from charter.language.source import Source, Span
from charter.lsp.analysis import Analysis, analyze
from charter.lsp.completion import complete
from charter.lsp.convert import diagnostic, finding, offset_range, span_range, whole_range
from charter.lsp.definition import definitions
from charter.lsp.hover import hover
from charter.lsp.references import references, target_at, valid_name

_KINDS = {
    "field": types.CompletionItemKind.Field,
    "tool": types.CompletionItemKind.Module,
    "matcher": types.CompletionItemKind.Constant,
    "function": types.CompletionItemKind.Function,
    "constant": types.CompletionItemKind.Constant,
    "keyword": types.CompletionItemKind.Keyword,
    "variable": types.CompletionItemKind.Variable,
}


class CharterServer(LanguageServer):
    """A pygls server that keeps the latest analysis of each open document."""

    def __init__(self) -> None:
        super().__init__("charter-lsp", "0.1.0")
        self._cache: dict[str, Analysis] = {}

    def path_of(self, uri: str) -> Path | None:
        """The file behind a `file:` URI, if any."""
        if not uri.startswith("file:"):
            return None
        fs = to_fs_path(uri)
        return Path(fs) if fs else None

    def analysis(self, uri: str) -> tuple[TextDocument, Analysis]:
        """The document and its analysis, recompiled if the text changed."""
        doc = self.workspace.get_text_document(uri)
        cached = self._cache.get(uri)
        if cached is not None and cached.text == doc.source:
            return doc, cached
        path = self.path_of(uri)
        name = str(path) if path is not None else uri
        result = analyze(name, doc.source, path, self._open_text)
        self._cache[uri] = result
        return doc, result

    def _open_text(self, path: Path) -> str | None:
        uri = from_fs_path(str(path))
        if uri is None or uri not in self.workspace.text_documents:
            return None
        return self.workspace.get_text_document(uri).source

    def publish(self, uri: str) -> None:
        """Send the document's diagnostics and the analysis's findings (each with its
        related spans)."""
        doc, result = self.analysis(uri)
        found = [diagnostic(doc, d) for d in result.diagnostics]
        for f in result.findings:
            related = [types.DiagnosticRelatedInformation(self.location(uri, doc, r.span),
                                                          r.message) for r in f.related]
            found.append(finding(doc, f, related))
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=doc.version)
        )

    def location(self, uri: str, doc: TextDocument, span: Span) -> types.Location:
        """The LSP location of a span of `doc` (at `uri`) or of another policy file."""
        if span.file == self.analysis_name(uri):
            return types.Location(uri=uri, range=span_range(doc, span))
        other = from_fs_path(span.file) or span.file
        return types.Location(uri=other,
                              range=span_range(self.workspace.get_text_document(other), span))

    def analysis_name(self, uri: str) -> str:
        path = self.path_of(uri)
        return str(path) if path is not None else uri

    def occurrences(self, uri: str, offset: int) -> dict[str, list[types.Range]]:
        """uri -> ranges of every reference to what is at `offset` in `uri`."""
        doc, result = self.analysis(uri)
        out: dict[str, list[types.Range]] = {}
        for file, start, end in references(result, offset):
            target_uri = uri if file == result.name else (from_fs_path(file) or file)
            target = doc if target_uri == uri else self.workspace.get_text_document(target_uri)
            out.setdefault(target_uri, []).append(offset_range(target, start, end))
        return out

    def publish_directory(self, uri: str) -> None:
        """Diagnostics for a document and the other open documents of its directory, whose
        declarations may depend on it."""
        self.publish(uri)
        path = self.path_of(uri)
        if path is None:
            return
        for other in list(self.workspace.text_documents):
            other_path = self.path_of(other)
            if other != uri and other_path is not None and other_path.parent == path.parent:
                self.publish(other)

    def forget(self, uri: str) -> None:
        self._cache.pop(uri, None)


def build() -> CharterServer:
    """A server with every feature registered."""
    server = CharterServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        server.publish_directory(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        server.publish_directory(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        server.publish_directory(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.forget(params.text_document.uri)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(params: types.HoverParams) -> types.Hover | None:
        doc, result = server.analysis(params.text_document.uri)
        found = hover(result, doc.offset_at_position(params.position))
        if found is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(types.MarkupKind.Markdown, found.markdown),
            range=span_range(doc, found.span),
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(params: types.DefinitionParams) -> list[types.Location]:
        doc, result = server.analysis(params.text_document.uri)
        out: list[types.Location] = []
        for span in definitions(result, doc.offset_at_position(params.position)):
            if span.file == result.name:
                uri, target = params.text_document.uri, doc
            else:
                uri = from_fs_path(span.file) or span.file
                target = server.workspace.get_text_document(uri)
            out.append(types.Location(uri=uri, range=span_range(target, span)))
        return out

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def on_references(params: types.ReferenceParams) -> list[types.Location]:
        doc = server.workspace.get_text_document(params.text_document.uri)
        found = server.occurrences(params.text_document.uri,
                                   doc.offset_at_position(params.position))
        return [types.Location(uri=u, range=r) for u, ranges in found.items() for r in ranges]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    def on_prepare_rename(params: types.PrepareRenameParams) -> types.Range | None:
        doc, result = server.analysis(params.text_document.uri)
        offset = doc.offset_at_position(params.position)
        found = server.occurrences(params.text_document.uri, offset)
        for r in found.get(params.text_document.uri, []):
            if doc.offset_at_position(r.start) <= offset <= doc.offset_at_position(r.end):
                return r
        return None

    @server.feature(types.TEXT_DOCUMENT_RENAME)
    def on_rename(params: types.RenameParams) -> types.WorkspaceEdit | None:
        doc, result = server.analysis(params.text_document.uri)
        offset = doc.offset_at_position(params.position)
        target = target_at(result, offset)
        if target is None or not valid_name(target[0], params.new_name):
            return None
        found = server.occurrences(params.text_document.uri, offset)
        return types.WorkspaceEdit(changes={
            u: [types.TextEdit(range=r, new_text=params.new_name) for r in ranges]
            for u, ranges in found.items()})

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", '"']),
    )
    def on_completion(params: types.CompletionParams) -> types.CompletionList:
        doc, result = server.analysis(params.text_document.uri)
        offset = doc.offset_at_position(params.position)
        items = [
            types.CompletionItem(
                label=s.label,
                kind=_KINDS.get(s.kind),
                detail=s.detail or None,
                text_edit=types.TextEdit(
                    range=offset_range(doc, offset - s.replace, offset), new_text=s.label
                ),
            )
            for s in complete(doc.source, offset, result.checked)
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def on_formatting(params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        doc = server.workspace.get_text_document(params.text_document.uri)
        try:
            formatted = format_source(Source(doc.uri, doc.source))
        except FormatError as err:
            server.window_show_message(
                types.ShowMessageParams(types.MessageType.Error, f"charter fmt: {err}")
            )
            return None
        if formatted.text is None or not formatted.changed:
            return None if formatted.text is None else []
        return [types.TextEdit(range=whole_range(doc), new_text=formatted.text)]

    return server


def main() -> None:
    """Serve on stdin/stdout until the client says exit."""
    build().start_io()
