"""Pygments lexer for Charter ``.agentpolicy`` files.

Registered through the ``pygments.lexers`` entry point, so ``pygmentize -l agentpolicy`` and
Sphinx/MkDocs code blocks tagged ``agentpolicy`` pick it up once Charter is installed.

Pygments imports every registered lexer plugin while it looks for one, so this module must stay
cheap: it imports only Pygments and the plain word lists of :mod:`charter.language.keywords`,
never Lark or the parser. It highlights by local context, like the editor grammars, and never
rejects input: a half-written policy still colours sensibly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

# Pygments ships no type information; types-Pygments may or may not be installed.
from pygments.lexer import (  # type: ignore[import-untyped,unused-ignore]
    RegexLexer,
    bygroups,
    default,
    words,
)
from pygments.token import (  # type: ignore[import-untyped,unused-ignore]
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from charter.language.keywords import (
    CONSTANTS,
    CONTEXT_ROOTS,
    EFFECTS,
    FUNCTIONS,
    KEYWORDS,
    METRICS,
    MODULES,
    OPERATORS,
    STAGES,
    TYPES,
)

__all__ = ["AgentPolicyLexer", "Duration"]

#: Durations (``30s 5m 1h 7d``) are numbers with a unit; a subtype keeps Number styling.
Duration = Number.Duration

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_STRING = r'"(?:[^"\\\n]|\\.)*"'

#: Keywords that double as request roots when a path follows (``session.labels``).
_KEYWORD_ROOTS = tuple(w for w in CONTEXT_ROOTS if w in KEYWORDS)
#: Roots that are never keywords (``args``, ``agent``...).
_PLAIN_ROOTS = tuple(w for w in CONTEXT_ROOTS if w not in KEYWORDS)
#: ``time`` is both a type and a module; it only reads as the module before a member access.
_PLAIN_MODULES = tuple(m for m in MODULES if m not in TYPES)

#: Typed handle on Pygments' helper, which types-Pygments leaves untyped (keeps --strict quiet).
_groups: Callable[..., Any] = bygroups

#: A Pygments rule: a (regex, action[, new state]) tuple or a `default(...)` marker.
_TokenRule = Any


def _word_rules() -> list[_TokenRule]:
    """Rules for bare words, most specific first (a word may belong to several groups)."""
    return [
        (words(_KEYWORD_ROOTS, prefix=r"\b", suffix=r"(?=\s*[.\[])"), Name.Builtin.Pseudo),
        (r"\btime(?=\s*\.)", Name.Namespace),
        (words(_PLAIN_ROOTS, prefix=r"\b", suffix=r"\b"), Name.Builtin.Pseudo),
        (words(OPERATORS, prefix=r"\b", suffix=r"\b"), Operator.Word),
        (words(EFFECTS, prefix=r"\b", suffix=r"\b"), Keyword.Reserved),
        (words(STAGES, prefix=r"\b", suffix=r"\b"), Name.Constant),
        (words(TYPES, prefix=r"\b", suffix=r"\b"), Keyword.Type),
        (words(FUNCTIONS, prefix=r"\b", suffix=r"\b"), Name.Builtin),
        (words(CONSTANTS, prefix=r"\b", suffix=r"\b"), Keyword.Constant),
        (words(METRICS, prefix=r"\b", suffix=r"\b"), Keyword.Pseudo),
        (words(_PLAIN_MODULES, prefix=r"\b", suffix=r"\b"), Name.Namespace),
        # `use`, `const`... reach this only when the context rules in "root" did not apply.
        (words(KEYWORDS, prefix=r"\b", suffix=r"\b"), Keyword),
        (_NAME, Name),
    ]


class AgentPolicyLexer(RegexLexer):  # type: ignore[misc,unused-ignore]
    """Lexer for Charter policies (``.agentpolicy``): rules, tests, properties, expressions."""

    name = "AgentPolicy"
    aliases: ClassVar[list[str]] = ["agentpolicy"]
    filenames: ClassVar[list[str]] = ["*.agentpolicy"]
    mimetypes: ClassVar[list[str]] = ["text/x-agentpolicy"]

    tokens: ClassVar[dict[str, list[_TokenRule]]] = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r"@" + _NAME, Name.Decorator),
            # r"..." must win over the name `r` followed by a string.
            (r'\b(r)(")', _groups(String.Affix, String.Regex), "regex"),
            (r'"', String.Double, "string"),
            (r"[0-9]+[smhd]\b", Duration),
            (r"[0-9]+\.[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            # A member name is data, whatever word it is (`pii.any`, `session.labels`).
            (r"(\.)(\s*)(" + _NAME + ")", _groups(Punctuation, Whitespace, Name.Property)),
            (r"\b(use)\b", Keyword.Namespace, "use"),
            (r"\b(tags)\b", Keyword, "tags"),
            (r"\b(tagged)(\s+)(" + _NAME + ")", _groups(Keyword, Whitespace, Name.Tag)),
            (
                r"\b(const)(\s+)(" + _NAME + ")",
                _groups(Keyword.Declaration, Whitespace, Name.Constant),
            ),
            (
                r"\b(matcher)(\s+)(" + _NAME + ")",
                _groups(Keyword.Declaration, Whitespace, Name.Function),
            ),
            # `tool "name" (` is a declaration; the grammar's TOOL_DECL makes the same call.
            (
                r"\b(tool)(\s+)(" + _STRING + r")(\s*)(\()",
                _groups(Keyword, Whitespace, String.Double, Whitespace, Punctuation),
                "params",
            ),
            # Record keys (`{amount: 400}`) may be spelled like keywords.
            (r"(" + _NAME + r")(\s*)(:)", _groups(Name.Property, Whitespace, Punctuation)),
            *_word_rules(),
            (r"==|!=|<=|>=|[<>=+\-*/?]", Operator),
            (r"[{}()\[\],]", Punctuation),
            (r".", Error),
        ],
        "string": [
            (r'[^"\\\n]+', String.Double),
            (r"\\(?:u[0-9A-Fa-f]{4}|.)", String.Escape),
            (r'"', String.Double, "#pop"),
            # An unterminated string ends at the line end, as in the grammar.
            default("#pop"),
        ],
        "regex": [
            (r'[^"\\\n]+', String.Regex),
            (r"\\.", String.Escape),
            (r'"', String.Regex, "#pop"),
            default("#pop"),
        ],
        "use": [
            (r"[ \t]+", Whitespace),
            (r",", Punctuation),
            (_NAME, Name.Namespace),
            default("#pop"),
        ],
        "tags": [
            (r"[ \t]+", Whitespace),
            (r",", Punctuation),
            (_NAME, Name.Tag),
            default("#pop"),
        ],
        "params": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (
                r"(" + _NAME + r")(\s*)(\?)?(\s*)(:)",
                _groups(Name.Variable, Whitespace, Operator, Whitespace, Punctuation),
            ),
            (words(TYPES, prefix=r"\b", suffix=r"\b"), Keyword.Type),
            (_NAME, Name),
            (r"[<>,]", Punctuation),
            (r"\)", Punctuation, "#pop"),
            (r".", Error),
        ],
    }
