"""The Pygments lexer, token by token."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
    _TokenType,
)

from charter.language.pygments_lexer import AgentPolicyLexer, Duration

SAMPLES = Path(__file__).parent / "samples"
VSCODE_SAMPLES = Path(__file__).resolve().parents[2] / "editors" / "vscode" / "tests"

Tokens = list[tuple[_TokenType, str]]


def lex(text: str) -> Tokens:
    """Tokens without whitespace, which only adds noise to the expectations."""
    return [(t, v) for t, v in AgentPolicyLexer().get_tokens(text) if t is not Whitespace]


def test_lexer_metadata() -> None:
    assert AgentPolicyLexer.name == "AgentPolicy"
    assert AgentPolicyLexer.aliases == ["agentpolicy"]
    assert AgentPolicyLexer.filenames == ["*.agentpolicy"]


def test_header_and_use() -> None:
    assert lex('policy "bot" version "1.0"\nuse pii, secrets\n') == [
        (Keyword, "policy"),
        (String.Double, '"'),
        (String.Double, "bot"),
        (String.Double, '"'),
        (Keyword, "version"),
        (String.Double, '"'),
        (String.Double, "1.0"),
        (String.Double, '"'),
        (Keyword.Namespace, "use"),
        (Name.Namespace, "pii"),
        (Punctuation, ","),
        (Name.Namespace, "secrets"),
    ]


def test_const_and_matcher() -> None:
    assert lex('const eu = {"a", "b"}\nmatcher emp = r"\\bEMP-[0-9]{6}\\"x"\n') == [
        (Keyword.Declaration, "const"),
        (Name.Constant, "eu"),
        (Operator, "="),
        (Punctuation, "{"),
        (String.Double, '"'),
        (String.Double, "a"),
        (String.Double, '"'),
        (Punctuation, ","),
        (String.Double, '"'),
        (String.Double, "b"),
        (String.Double, '"'),
        (Punctuation, "}"),
        (Keyword.Declaration, "matcher"),
        (Name.Function, "emp"),
        (Operator, "="),
        (String.Affix, "r"),
        (String.Regex, '"'),
        (String.Escape, "\\b"),
        (String.Regex, "EMP-[0-9]{6}"),
        # An escaped quote does not end the pattern.
        (String.Escape, '\\"'),
        (String.Regex, "x"),
        (String.Regex, '"'),
    ]


def test_tool_declaration_with_types_and_tags() -> None:
    text = 'tool "kb.read" (q: str, limit?: int, m: map<str, list<decimal>>) tags read, ext\n'
    assert lex(text) == [
        (Keyword, "tool"),
        (String.Double, '"kb.read"'),
        (Punctuation, "("),
        (Name.Variable, "q"),
        (Punctuation, ":"),
        (Keyword.Type, "str"),
        (Punctuation, ","),
        # `limit` is a keyword elsewhere but a parameter name here.
        (Name.Variable, "limit"),
        (Operator, "?"),
        (Punctuation, ":"),
        (Keyword.Type, "int"),
        (Punctuation, ","),
        (Name.Variable, "m"),
        (Punctuation, ":"),
        (Keyword.Type, "map"),
        (Punctuation, "<"),
        (Keyword.Type, "str"),
        (Punctuation, ","),
        (Keyword.Type, "list"),
        (Punctuation, "<"),
        (Keyword.Type, "decimal"),
        (Punctuation, ">"),
        (Punctuation, ">"),
        (Punctuation, ")"),
        (Keyword, "tags"),
        (Name.Tag, "read"),
        (Punctuation, ","),
        (Name.Tag, "ext"),
    ]


def test_rule_with_annotation_scope_paths_and_because() -> None:
    text = (
        '@id("r1") @shadow\n'
        'require approval from "finance" tool "refund.create" when args.amount > 100.50\n'
        '  because "over \\"$100\\""\n'
    )
    assert lex(text) == [
        (Name.Decorator, "@id"),
        (Punctuation, "("),
        (String.Double, '"'),
        (String.Double, "r1"),
        (String.Double, '"'),
        (Punctuation, ")"),
        (Name.Decorator, "@shadow"),
        (Keyword.Reserved, "require"),
        (Keyword.Reserved, "approval"),
        (Keyword, "from"),
        (String.Double, '"'),
        (String.Double, "finance"),
        (String.Double, '"'),
        # `tool "x"` without a parenthesis is a target, not a declaration.
        (Keyword, "tool"),
        (String.Double, '"'),
        (String.Double, "refund.create"),
        (String.Double, '"'),
        (Keyword, "when"),
        (Name.Builtin.Pseudo, "args"),
        (Punctuation, "."),
        (Name.Property, "amount"),
        (Operator, ">"),
        (Number.Float, "100.50"),
        (Keyword, "because"),
        (String.Double, '"'),
        (String.Double, "over "),
        (String.Escape, '\\"'),
        (String.Double, "$100"),
        (String.Escape, '\\"'),
        (String.Double, '"'),
    ]


def test_stages_effects_targets_and_member_names() -> None:
    text = "on tool_result redact pii.email, secrets.any in result\n"
    assert lex(text) == [
        (Keyword, "on"),
        (Name.Constant, "tool_result"),
        (Keyword.Reserved, "redact"),
        (Name.Namespace, "pii"),
        (Punctuation, "."),
        (Name.Property, "email"),
        (Punctuation, ","),
        (Name.Namespace, "secrets"),
        (Punctuation, "."),
        # A member name is never a type or keyword, even when spelled like one.
        (Name.Property, "any"),
        (Operator.Word, "in"),
        (Keyword, "result"),
    ]


def test_keyword_roots_become_data_before_a_path() -> None:
    assert lex('deny when "x" in session.labels or tool.name like "a*"\n') == [
        (Keyword.Reserved, "deny"),
        (Keyword, "when"),
        (String.Double, '"'),
        (String.Double, "x"),
        (String.Double, '"'),
        (Operator.Word, "in"),
        (Name.Builtin.Pseudo, "session"),
        (Punctuation, "."),
        (Name.Property, "labels"),
        (Operator.Word, "or"),
        (Name.Builtin.Pseudo, "tool"),
        (Punctuation, "."),
        (Name.Property, "name"),
        (Operator.Word, "like"),
        (String.Double, '"'),
        (String.Double, "a*"),
        (String.Double, '"'),
    ]


def test_budget_and_limit_windows() -> None:
    text = (
        "budget cost_usd <= 2.00 per session then warn\n"
        "limit calls(tool tagged write) <= 10 per 1h per agent.id # note\n"
    )
    assert lex(text) == [
        (Keyword, "budget"),
        (Keyword.Pseudo, "cost_usd"),
        (Operator, "<="),
        (Number.Float, "2.00"),
        (Keyword, "per"),
        (Keyword, "session"),
        (Keyword, "then"),
        (Keyword.Reserved, "warn"),
        (Keyword, "limit"),
        (Keyword, "calls"),
        (Punctuation, "("),
        (Keyword, "tool"),
        (Keyword, "tagged"),
        (Name.Tag, "write"),
        (Punctuation, ")"),
        (Operator, "<="),
        (Number.Integer, "10"),
        (Keyword, "per"),
        (Duration, "1h"),
        (Keyword, "per"),
        (Name.Builtin.Pseudo, "agent"),
        (Punctuation, "."),
        (Name.Property, "id"),
        (Comment.Single, "# note"),
    ]
    assert Duration in Number


def test_functions_constants_and_history() -> None:
    text = (
        "deny when url_host(args.url) != lower(x) and true != false\n"
        'deny when previously call "f" with {path: args.p} within 30m and weekday(time.now) > 5\n'
    )
    assert lex(text) == [
        (Keyword.Reserved, "deny"),
        (Keyword, "when"),
        (Name.Builtin, "url_host"),
        (Punctuation, "("),
        (Name.Builtin.Pseudo, "args"),
        (Punctuation, "."),
        (Name.Property, "url"),
        (Punctuation, ")"),
        (Operator, "!="),
        (Name.Builtin, "lower"),
        (Punctuation, "("),
        (Name, "x"),
        (Punctuation, ")"),
        (Operator.Word, "and"),
        (Keyword.Constant, "true"),
        (Operator, "!="),
        (Keyword.Constant, "false"),
        (Keyword.Reserved, "deny"),
        (Keyword, "when"),
        (Keyword, "previously"),
        (Keyword, "call"),
        (String.Double, '"'),
        (String.Double, "f"),
        (String.Double, '"'),
        (Keyword, "with"),
        (Punctuation, "{"),
        (Name.Property, "path"),
        (Punctuation, ":"),
        (Name.Builtin.Pseudo, "args"),
        (Punctuation, "."),
        (Name.Property, "p"),
        (Punctuation, "}"),
        (Keyword, "within"),
        (Duration, "30m"),
        (Operator.Word, "and"),
        (Name.Builtin, "weekday"),
        (Punctuation, "("),
        # `time` is the module here, the type elsewhere.
        (Name.Namespace, "time"),
        (Punctuation, "."),
        (Name.Property, "now"),
        (Punctuation, ")"),
        (Operator, ">"),
        (Number.Integer, "5"),
    ]


def test_test_and_property_blocks() -> None:
    text = (
        'test "t" {\n'
        '  given agent {id: "b"} approved by "g"\n'
        '  on tool_result call "kb.read" {query: "x"} with result "ok"\n'
        '  expect not allow because "why"\n'
        "}\n"
        'property "p" { for all calls to tool tagged d where args.n != 0 expect deny }\n'
    )
    words = [(t, v) for t, v in lex(text) if t not in String]
    assert words == [
        (Keyword, "test"),
        (Punctuation, "{"),
        (Keyword, "given"),
        (Name.Builtin.Pseudo, "agent"),
        (Punctuation, "{"),
        (Name.Property, "id"),
        (Punctuation, ":"),
        (Punctuation, "}"),
        (Keyword, "approved"),
        (Keyword, "by"),
        (Keyword, "on"),
        (Name.Constant, "tool_result"),
        (Keyword, "call"),
        (Punctuation, "{"),
        (Name.Property, "query"),
        (Punctuation, ":"),
        (Punctuation, "}"),
        (Keyword, "with"),
        (Keyword, "result"),
        (Keyword, "expect"),
        (Operator.Word, "not"),
        (Keyword.Reserved, "allow"),
        (Keyword, "because"),
        (Punctuation, "}"),
        (Keyword, "property"),
        (Punctuation, "{"),
        (Keyword, "for"),
        (Keyword, "all"),
        (Keyword, "calls"),
        (Keyword, "to"),
        (Keyword, "tool"),
        (Keyword, "tagged"),
        (Name.Tag, "d"),
        (Keyword, "where"),
        (Name.Builtin.Pseudo, "args"),
        (Punctuation, "."),
        (Name.Property, "n"),
        (Operator, "!="),
        (Number.Integer, "0"),
        (Keyword, "expect"),
        (Keyword.Reserved, "deny"),
        (Punctuation, "}"),
    ]


def test_unterminated_string_stops_at_line_end() -> None:
    assert lex('deny because "oops\nallow\n') == [
        (Keyword.Reserved, "deny"),
        (Keyword, "because"),
        (String.Double, '"'),
        (String.Double, "oops"),
        (Keyword.Reserved, "allow"),
    ]


def test_stray_characters_are_errors() -> None:
    assert (Error, "$") in lex("deny when $x\n")


@pytest.mark.parametrize(
    "path",
    [SAMPLES / "support.agentpolicy", *sorted(VSCODE_SAMPLES.glob("*.agentpolicy"))],
    ids=lambda p: p.name,
)
def test_no_error_tokens_over_samples(path: Path) -> None:
    text = path.read_text()
    tokens = list(AgentPolicyLexer(stripnl=False).get_tokens(text))
    assert [v for t, v in tokens if t is Error] == []
    # The lexer is lossless: concatenated tokens give back the source.
    assert "".join(v for _, v in tokens) == text


def test_highlight_to_html() -> None:
    html = highlight('deny tool "x"\n', AgentPolicyLexer(), HtmlFormatter())
    assert "deny" in html and 'class="kr"' in html


def test_import_stays_cheap() -> None:
    # Pygments imports every lexer plugin while searching; ours must not pull in the parser.
    code = (
        "import sys\n"
        "import charter, charter.language\n"
        "before = set(sys.modules)\n"
        "import charter.language.pygments_lexer\n"
        "new = {m for m in set(sys.modules) - before if m.startswith(('charter', 'lark'))}\n"
        "print(sorted(new))\n"
        "print('lark' in sys.modules and 'lark' not in before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == [
        "['charter.language.keywords', 'charter.language.pygments_lexer']",
        "False",
    ]


def test_registered_as_pygments_plugin() -> None:
    names = {ep.name for ep in entry_points(group="pygments.lexers")}
    if "agentpolicy" not in names:
        pytest.skip("charter is not installed, so its pygments.lexers entry point is absent")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("agentpolicy"), AgentPolicyLexer)
    assert isinstance(get_lexer_for_filename("x.agentpolicy"), AgentPolicyLexer)
