"""The language server end to end over stdio (pytest-lsp drives `python -m charter.lsp`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from charter.compiler.pipeline import compile_sources
from charter.language.formatter import format_text
from charter.language.source import Source
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.matchers import MODULES

pytestmark = pytest.mark.asyncio

POLICY = """\
policy "p"
use pii

const limit_usd = 100
matcher order_ref = r"ORD-[0-9]+"

tool "refund.create" (amount: decimal, currency: str) tags money
tool "mail.send" (to: str, body: str) tags external

allow tool "refund.create" when args.amount <= limit_usd
deny tool "mail.send" when args.body contains pii.email or args.body contains order_ref
allow tool "mail.send" when len(args.to) > 3
"""


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "charter.lsp"])
)
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities())
    )
    yield
    await lsp_client.shutdown_session()


def _uri(path: Path) -> str:
    return path.resolve().as_uri()


async def _open(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = _uri(path)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "agentpolicy", 1, text or path.read_text())
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


async def _edit(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [types.TextDocumentContentChangeWholeDocument(text)],
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)


def _end(text: str) -> types.Position:
    """The position just after the last character of `text`."""
    return types.Position(text.count("\n"), len(text) - (text.rfind("\n") + 1))


def _pos(text: str, needle: str, delta: int = 0) -> types.Position:
    """The position of the first `needle` in `text` (plus `delta` characters)."""
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    return types.Position(line, offset - (text.rfind("\n", 0, offset) + 1))


async def test_diagnostics_match_charter_check(client: LanguageClient, tmp_path: Path) -> None:
    text = POLICY + 'deny tool "refund.create" when args.amout > 1\nallow tool "x" when 1 = 1\n'
    path = tmp_path / "p.agentpolicy"
    path.write_text(text)
    uri = await _open(client, path)
    got = client.diagnostics[uri]
    expected = compile_sources([Source(str(path.resolve()), text)]).diagnostics
    assert expected, "the policy was meant to have errors"
    assert [(d.code, d.message.split("\n")[0]) for d in got] == [
        (d.code, d.message) for d in expected
    ]
    first = got[0]
    assert first.range.start == _pos(text, "amout")
    assert first.severity == types.DiagnosticSeverity.Error


async def test_syntax_errors_then_fixed_on_change(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "p.agentpolicy"
    path.write_text(POLICY + "deny tool when\n")
    uri = await _open(client, path)
    assert any(d.code and str(d.code).startswith("CH01") for d in client.diagnostics[uri])
    await _edit(client, uri, POLICY, 2)
    assert list(client.diagnostics[uri]) == []


async def test_sibling_declarations_resolve(client: LanguageClient, tmp_path: Path) -> None:
    (tmp_path / "tools.agentpolicy").write_text(
        'tool "refund.create" (amount: decimal) tags money\nconst cap = 5\n'
        'allow tool "broken" when nope > 1\n'
    )
    rules = tmp_path / "rules.agentpolicy"
    rules.write_text('allow tool "refund.create" when args.amount < cap\n')
    uri = await _open(client, rules)
    # `nope` is an error of tools.agentpolicy: reported there, not here.
    assert list(client.diagnostics[uri]) == []
    typo = 'allow tool "refund.create" when args.amont < cap\n'
    await _edit(client, uri, typo, 2)
    messages = [d.message for d in client.diagnostics[uri]]
    assert len(messages) == 1 and "amont" in messages[0] and "amount" in messages[0]


async def test_same_diagnostics_as_charter_check_of_the_directory(
    client: LanguageClient, tmp_path: Path
) -> None:
    """Two files declaring the same names: `charter check DIR` reports each duplicate at its
    later declaration; the editor showing that file reports the same, not nothing."""
    from charter.compiler.sources import discover
    from charter.compiler.units import compile_unit

    decls = 'tool "refund.create" (amount: decimal)\nconst cap = 5\nmatcher ref = r"R-[0-9]+"\n'
    (tmp_path / "a.agentpolicy").write_text(decls + "allow tool \"refund.create\"\n")
    later = tmp_path / "b.agentpolicy"
    later.write_text(decls + 'deny tool "refund.create" when args.amount > cap because "x"\n')
    expected = [(d.code, d.span.line, d.span.col)
                for d in compile_unit(discover(tmp_path, include_tests=True)).diagnostics
                if d.span.file == str(later)]
    assert [code for code, _, _ in expected] == ["CH0211"] * 3
    for path in (later.resolve(), (tmp_path / "a.agentpolicy").resolve()):
        uri = await _open(client, path)
        got = [(d.code, d.range.start.line + 1, d.range.start.character + 1)
               for d in client.diagnostics[uri]]
        assert got == (expected if path.name == "b.agentpolicy" else [])


async def _hover(client: LanguageClient, uri: str, pos: types.Position) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), pos)
    )
    assert result is not None
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


async def test_hover(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "p.agentpolicy"
    path.write_text(POLICY)
    uri = await _open(client, path)
    assert "args.amount: decimal" in await _hover(client, uri, _pos(POLICY, "amount <=", 2))
    tool = await _hover(client, uri, _pos(POLICY, 'allow tool "refund', 13))
    assert 'tool "refund.create" (amount: decimal, currency: str) tags money' in tool
    assert FUNCTIONS["len"].doc in await _hover(client, uri, _pos(POLICY, "len(", 1))
    email = await _hover(client, uri, _pos(POLICY, "pii.email", 5))
    assert MODULES["pii"]["email"].doc in email
    assert "const limit_usd = 100" in await _hover(client, uri, _pos(POLICY, "= limit_usd", 4))
    nothing = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), _pos(POLICY, "policy"))
    )
    assert nothing is None


async def _definition(
    client: LanguageClient, uri: str, pos: types.Position
) -> list[types.Location]:
    result = await client.text_document_definition_async(
        types.DefinitionParams(types.TextDocumentIdentifier(uri), pos)
    )
    assert isinstance(result, list)
    return [loc for loc in result if isinstance(loc, types.Location)]


async def test_definition(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "p.agentpolicy"
    path.write_text(POLICY)
    uri = await _open(client, path)
    const = await _definition(client, uri, _pos(POLICY, "= limit_usd", 3))
    assert [(d.uri, d.range.start) for d in const] == [(uri, _pos(POLICY, "limit_usd"))]
    matcher = await _definition(client, uri, _pos(POLICY, "contains order_ref", 10))
    assert [d.range.start for d in matcher] == [_pos(POLICY, "order_ref")]
    tool = await _definition(client, uri, _pos(POLICY, 'deny tool "mail', 12))
    assert [d.range.start for d in tool] == [_pos(POLICY, '"mail.send" (')]


async def test_definition_in_sibling_file(client: LanguageClient, tmp_path: Path) -> None:
    decls = tmp_path / "decls.agentpolicy"
    decls.write_text("const cap = 5\n")
    rules = tmp_path / "rules.agentpolicy"
    text = 'allow tool "t" when 1 < cap\n'
    rules.write_text(text)
    uri = await _open(client, rules)
    found = await _definition(client, uri, _pos(text, "cap"))
    assert [(d.uri, d.range.start) for d in found] == [(_uri(decls), types.Position(0, 6))]


async def _labels(client: LanguageClient, uri: str, pos: types.Position) -> list[str]:
    result = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), pos)
    )
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    return [i.label for i in items]


async def test_completion(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "p.agentpolicy"
    path.write_text(POLICY)
    uri = await _open(client, path)

    text = POLICY + 'deny tool "refund.create" when args.'
    await _edit(client, uri, text, 2)
    assert await _labels(client, uri, _end(text)) == ["amount", "currency"]

    text = POLICY + 'scope tool "mail.send" {\n  deny when args.\n}\n'
    await _edit(client, uri, text, 3)
    assert await _labels(client, uri, _pos(text, "deny when args.", 15)) == ["to", "body"]

    text = POLICY + "deny when agent."
    await _edit(client, uri, text, 4)
    labels = await _labels(client, uri, _end(text))
    assert {"id", "team", "tenant", "env", "labels"} == set(labels)

    text = POLICY + 'deny tool "re'
    await _edit(client, uri, text, 5)
    assert await _labels(client, uri, _end(text)) == ["mail.send", "refund.create"]


async def test_formatting(client: LanguageClient, tmp_path: Path) -> None:
    messy = 'policy  "p"\ntool "t" (a:int)\nallow tool "t"   when args.a>1   # ok\n'
    path = tmp_path / "p.agentpolicy"
    path.write_text(messy)
    uri = await _open(client, path)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            types.TextDocumentIdentifier(uri), types.FormattingOptions(2, True)
        )
    )
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == format_text(messy)
    assert edits[0].range.start == types.Position(0, 0)
    assert edits[0].range.end == types.Position(3, 0)


async def test_findings_carry_the_other_rule(client: LanguageClient, tmp_path: Path) -> None:
    text = POLICY + ('deny tool "refund.create" when args.amount > 10 because "cap"\n'
                     'deny tool "refund.create" when args.amount > 50 because "cap"\n')
    path = tmp_path / "p.agentpolicy"
    path.write_text(text)
    uri = await _open(client, path)
    (found,) = [d for d in client.diagnostics[uri] if d.code == "W0505"]
    assert found.source == "charter analyze" and "example:" in found.message
    assert found.range.start == _pos(text, 'deny tool "refund.create" when args.amount > 50')
    (rel,) = found.related_information or []
    assert rel.location.uri == uri
    assert rel.location.range.start == _pos(text, 'deny tool "refund.create" when args.amount > 10')


async def test_references_and_rename(client: LanguageClient, tmp_path: Path) -> None:
    text = POLICY + 'deny tool "refund.create" when args.amount > limit_usd * 10 because "x"\n'
    path = tmp_path / "p.agentpolicy"
    path.write_text(text)
    uri = await _open(client, path)
    refs = await client.text_document_references_async(types.ReferenceParams(
        context=types.ReferenceContext(include_declaration=True),
        text_document=types.TextDocumentIdentifier(uri), position=_pos(text, "limit_usd", 2)))
    assert refs is not None and len(refs) == 3  # the declaration and two uses
    edit = await client.text_document_rename_async(types.RenameParams(
        text_document=types.TextDocumentIdentifier(uri),
        position=_pos(text, 'tool "refund.create" (', 7), new_name="refund.issue"))
    assert edit is not None and edit.changes is not None
    edits = edit.changes[uri]
    renamed = text
    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                    reverse=True):
        lines = renamed.split("\n")
        line = lines[e.range.start.line]
        lines[e.range.start.line] = (line[: e.range.start.character] + e.new_text
                                     + line[e.range.end.character:])
        renamed = "\n".join(lines)
    assert renamed.count('"refund.issue"') == 3 and "refund.create" not in renamed
    bad = await client.text_document_rename_async(types.RenameParams(
        text_document=types.TextDocumentIdentifier(uri), position=_pos(text, "limit_usd", 2),
        new_name="not a name"))
    assert bad is None
