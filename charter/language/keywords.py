"""The vocabulary of the ``.agentpolicy`` language, grouped by how editors should colour it.

This module is the single source of truth for highlighters: the Pygments lexer imports it,
and the tests check that the TextMate grammar (``editors/vscode``) and the Vim syntax file
(``editors/vim``) know every word listed here, and that every keyword of the Lark grammar
appears in some group. It must stay import-free so that loading the Pygments lexer stays cheap.

A word may sit in several groups (``time`` is both a type and a stdlib module, ``session``
both a keyword and a request root); highlighters decide by context which reading wins.
"""

from __future__ import annotations

from typing import Final

#: Structural keywords: items, clauses, test blocks and the keyword-like expression forms.
KEYWORDS: Final[tuple[str, ...]] = (
    # items and headers
    "policy",
    "version",
    "use",
    "default",
    "const",
    "matcher",
    "tool",
    "tools",
    "from",
    "tags",
    "scope",
    "budget",
    "limit",
    "calls",
    "per",
    "session",
    "then",
    "because",
    "when",
    "unless",
    "on",
    "tagged",
    "turn",
    # policy options
    "strict",
    "trust",
    "request",
    # tests and properties
    "test",
    "given",
    "call",
    "with",
    "result",
    "expect",
    "property",
    "for",
    "all",
    "to",
    "where",
    "labels",
    "scenario",
    "fixture",
    "approve",
    "row",
    "usage",
    # expression forms that read as keywords rather than functions
    "has",
    "count",
    "approved",
    "by",
    "of",
    "previously",
    "within",
)

#: Word operators of expressions (``not in`` is ``not`` followed by ``in``).
OPERATORS: Final[tuple[str, ...]] = (
    "and",
    "or",
    "not",
    "in",
    "like",
    "matches",
    "contains",
)

#: Words that start or complete an effect (``require approval from``, ``label session``).
EFFECTS: Final[tuple[str, ...]] = (
    "allow",
    "deny",
    "warn",
    "require",
    "approval",
    "redact",
    "label",
)

#: Evaluation stages named after ``on``.
STAGES: Final[tuple[str, ...]] = (
    "tool_call",
    "tool_result",
    "model_input",
    "model_output",
)

#: Type names usable in tool parameter declarations.
TYPES: Final[tuple[str, ...]] = (
    "bool",
    "int",
    "decimal",
    "str",
    "time",
    "duration",
    "any",
    "set",
    "list",
    "map",
)

#: Built-in functions callable in expressions.
FUNCTIONS: Final[tuple[str, ...]] = (
    "len",
    "lower",
    "upper",
    "startswith",
    "endswith",
    "url_host",
    "domain_of",
    "cidr_contains",
    "hour_of",
    "weekday",
)

#: Literal constants.
CONSTANTS: Final[tuple[str, ...]] = (
    "true",
    "false",
)

#: Metrics a ``budget`` can bound.
METRICS: Final[tuple[str, ...]] = (
    "cost_usd",
    "tokens",
)

#: Standard-library modules importable with ``use``.
MODULES: Final[tuple[str, ...]] = (
    "pii",
    "secrets",
    "net",
    "text",
    "time",
)

#: Roots of the request context (DESIGN §1.4); highlighted as variables when followed by
#: ``.`` or ``[`` so that ``session.labels`` reads as data, not as the ``session`` keyword.
CONTEXT_ROOTS: Final[tuple[str, ...]] = (
    "stage",
    "agent",
    "user",
    "session",
    "tool",
    "args",
    "result",
    "input",
    "output",
    "estimate",
    "approvals",
    "now",
)

#: Every word a highlighter must recognise as reserved (context roots excluded: they are
#: ordinary names unless a path follows).
ALL_WORDS: Final[frozenset[str]] = frozenset(
    KEYWORDS + OPERATORS + EFFECTS + STAGES + TYPES + FUNCTIONS + CONSTANTS + METRICS + MODULES
)

#: The groups by name, for tests and for generating editor files.
GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "KEYWORDS": KEYWORDS,
    "OPERATORS": OPERATORS,
    "EFFECTS": EFFECTS,
    "STAGES": STAGES,
    "TYPES": TYPES,
    "FUNCTIONS": FUNCTIONS,
    "CONSTANTS": CONSTANTS,
    "METRICS": METRICS,
    "MODULES": MODULES,
}
