"""The registry of compile-time diagnostic codes, and the style guide for their messages.

Every diagnostic a policy can get before it runs (from the parser, the checker, the compiler
and `charter test`) has one entry here: its code, severity, title, what it means, and a policy
that produces it. A site reports through its entry, `UNKNOWN_NAME.at(span, message, help)`,
never with a code written as a string; `docs/errors.md` is generated from this module
(`python scripts/gen_errors_doc.py`). `tests/language/test_diagnostics.py` checks that every
example produces exactly its code (and its help), that every entry is used, that no code is
spelled out as a string anywhere else in `charter/`, and that `docs/errors.md` is current.

Numbering: CH01xx syntax (parser and AST builder), CH02xx names and types (checker), CH04xx
test blocks (`charter test`), CH05xx the compiler, W03xx warnings. A code keeps its meaning for
good and is never reused: CH0221 and CH0222 were never assigned. W05xx (static analysis) and
W06xx (lint) are findings of `charter analyze` and `charter lint` (charter.compiler.analysis),
not compile-time diagnostics; their entries are here so that docs/errors.md and
`charter check --explain` cover them, and their examples are analyzed rather than checked.
The analysis's I0599 ("inconclusive") is info and has no entry. Run-time errors are not
diagnostics either; they are `Decision.errors`.

How a message is written (after Cedar's `style_guide.md` and rustc):

- One line, lower case, no final period: "unknown name `agnet`".
- Name the thing found and what was expected or why it is wrong: "expected a new item such as
  `allow`, ...; found `alow`", "cannot apply `>` to decimal and str", "a condition must be
  bool, found str", "tool "fs.wirte" is not declared, so this rule restricts nothing".
- Policy text (names, keywords, operators, code to write) goes in backticks: `` `==` ``,
  `` `use pii` ``. Tool names and strings are quoted as the policy writes them, in double
  quotes: `tool "refund.create" has no parameter ...`. No single quotes. Types are the
  language's (`decimal`, `list<str>`), never Python's.
- The fix goes in `help`, not in the message: a did-you-mean where a close name exists
  (`charter.language.suggest.did_you_mean`: "did you mean `agent`?"), otherwise what to write
  instead ("write `and` instead of `&&`"). A help is one line too, lower case, no period.
- `notes` carry context that is neither the problem nor the fix.
- Report at the narrowest span that is wrong (the misspelt field, not the rule), report every
  error rather than the first, and no consequence of an error already reported (a rule whose
  condition did not parse is not type-checked too).

`Diagnostic.render` shows a diagnostic rustc-style, the way `charter check` prints it:

    policy.agentpolicy:1:1: error[CH0101]: expected a new item ...; found `alow`
      |
    1 | alow tool "x"
      | ^^^^
      = help: did you mean `allow`?

`file:line:col` (1-based), the severity and code, the message; then the source line with a
caret under the span, then `= help:` and `= note:` lines. The language server sends the same
code, message and help.
"""

from __future__ import annotations

from charter.language.source import Diagnostic, Severity, Span

__all__ = ["REGISTRY", "SECTIONS", "Code", "Section", "section_of"]


class Code:
    """One diagnostic code and what the documentation says about it.

    `example` is a policy file that produces this code and no other diagnostic (CH04xx: when
    its tests run); `help` is the help that example's diagnostic carries. A code no policy
    text can produce (an internal error) has no example and says why in `no_example`.
    """

    __slots__ = ("code", "example", "explanation", "help", "no_example", "severity", "title")

    def __init__(
        self,
        code: str,
        title: str,
        explanation: str,
        *,
        example: str | None = None,
        help: str | None = None,
        no_example: str | None = None,
    ) -> None:
        self.code = code
        self.severity: Severity = "warning" if code.startswith("W") else "error"
        self.title = title
        self.explanation = explanation
        self.example = example
        self.help = help
        self.no_example = no_example

    def at(
        self, span: Span, message: str, help: str | None = None, notes: tuple[str, ...] = ()
    ) -> Diagnostic:
        """A diagnostic of this code at `span` (message and help as the style guide says)."""
        return Diagnostic(self.code, self.severity, span, message, help, notes)

    def __repr__(self) -> str:
        return f"Code({self.code!r}, {self.title!r})"


class Section:
    """A group of codes in `docs/errors.md`: the codes starting with `prefix`."""

    __slots__ = ("intro", "prefix", "title")

    def __init__(self, prefix: str, title: str, intro: str) -> None:
        self.prefix = prefix
        self.title = title
        self.intro = intro


#: every code, by its name (`"CH0201"`), in the order of the documentation
REGISTRY: dict[str, Code] = {}


def _code(
    code: str,
    title: str,
    explanation: str,
    *,
    example: str | None = None,
    help: str | None = None,
    no_example: str | None = None,
) -> Code:
    assert code not in REGISTRY, code
    assert (example is None) != (no_example is None), code
    entry = Code(code, title, explanation, example=example, help=help, no_example=no_example)
    REGISTRY[code] = entry
    return entry


SECTIONS: tuple[Section, ...] = (
    Section(
        "CH01",
        "Syntax (CH01xx)",
        "Reported by the parser (`charter.language.parser`). After a syntax error the parser "
        "skips the broken item and goes on, so later items still get checked.",
    ),
    Section(
        "CH02",
        "Names and types (CH02xx)",
        "Reported by the checker (`charter.language.checker`, `exprcheck`). The checker runs "
        "on every item that parsed, so a file with a syntax error still gets its type errors "
        "reported.",
    ),
    Section("CH05", "Compiler (CH05xx)", ""),
    Section(
        "W03",
        "Warnings (W03xx)",
        "Warnings do not fail `charter check`; `charter check --strict` reports every "
        "warning as an error (same code) and exits 1, which is what CI should run.",
    ),
    Section(
        "W05",
        "Static analysis (W05xx)",
        "Reported by `charter analyze` and `charter lint` (docs/analysis.md), not by `charter "
        "check`. Each is proved on the exact fragment or shown by a witness: a request that "
        "the generated code and the reference interpreter both decide as the finding says. A "
        "rule opts out with `@suppress(\"CODE: reason\")`.",
    ),
    Section(
        "W06",
        "Lint (W06xx)",
        "Style rules, reported by `charter lint` only.",
    ),
    Section(
        "CH04",
        "Tests (CH04xx)",
        "Reported by `charter test` (and the pytest plugin) for a `test`, `scenario` or "
        "`property` block whose values do not fit the policy; the block is reported as an "
        "error and its expectations are not checked. Type errors in a property's `where` "
        "clause are reported with the checker's own codes. See `docs/testing.md`.",
    ),
)


def section_of(code: Code) -> Section:
    """The section `code` is documented in."""
    return next(s for s in SECTIONS if code.code.startswith(s.prefix))


# ── syntax (CH01xx) ──────────────────────────────────────────────────────────

INTERNAL_PARSER_ERROR = _code(
    "CH0100",
    "internal parser error",
    "A bug: please report it with the file. Never expected. The parser turns any exception "
    "into this diagnostic rather than raising into the host.",
    no_example="it is an internal error, which no policy text is meant to produce",
)

UNEXPECTED_TOKEN = _code(
    "CH0101",
    "unexpected token",
    "The parser found a word or symbol that cannot come here; the message says what could. "
    "The help suggests the closest keyword, or says that the item before looks unfinished when "
    "a new item starts in the middle of one. A declaration inside a `scope` is this error too "
    "(see CH0214).",
    example='alow tool "x"\n',
    help="did you mean `allow`?",
)

UNEXPECTED_CHARACTER = _code(
    "CH0102",
    "unexpected character",
    "A character no token starts with, such as `&`, `|`, `!`, `'` or `;`; the help names what "
    "Charter writes instead.",
    example='deny when agent.team == "a" && agent.id == "b"\n',
    help="write `and` instead of `&&`",
)

UNTERMINATED_STRING = _code(
    "CH0103",
    "unterminated string or raw regex",
    'Strings and raw regexes (`r"..."`) end on the line they start on.',
    example='const a = "abc\n',
    help='close it with `"` on the same line; write a quote inside it as \\"',
)

UNEXPECTED_EOF = _code(
    "CH0104",
    "unexpected end of file",
    "The file ends inside an item; the message says what the item still needs.",
    example='deny tool "x" when\n',
)

UNKNOWN_ESCAPE = _code(
    "CH0105",
    "unknown escape in a string",
    'The escapes are `\\"` `\\\\` `\\n` `\\t` `\\r` `\\/` `\\uXXXX`; use `r"..."` for regexes.',
    example='deny tool "a" because "C:\\qpath"\n',
    help='escapes are \\" \\\\ \\n \\t \\r \\/ and \\uXXXX; for a regex write r"..."',
)

UNKNOWN_STAGE = _code(
    "CH0106",
    "unknown stage",
    "An `on` names a stage that does not exist; the help suggests the closest one.",
    example='on tool_reslt deny tool "x"\n',
    help="did you mean `tool_result`?",
)

UNKNOWN_METRIC = _code(
    "CH0107",
    "unknown budget metric",
    "The metrics are `cost_usd` and `tokens`.",
    example="budget dollars <= 1 per session\n",
)

MALFORMED_TEST = _code(
    "CH0108",
    "malformed test block",
    "The shape of a test block is wrong: several calls in a `test` (one call per test; the "
    "help suggests a `scenario`), a test without `expect`, rows without a call, `approve` "
    "outside a scenario, an `expect` before a scenario's first call, a scenario without a "
    "call or with rows.",
    example='allow tool "a"\ntest "t" {\n  call "a" {}\n  call "a" {}\n  expect allow\n}\n',
    help="split this into another `test` block, or make this block a `scenario` to run the "
    "calls in order",
)

UNKNOWN_GIVEN_PART = _code(
    "CH0109",
    "unknown `given` part",
    "A `given` names no part a test can give, with a did-you-mean; also an unknown usage "
    "metric (`given usage ...`), and `on model_input with ...` naming the wrong field.",
    example='allow tool "a"\ntest "t" {\n  given agnet {id: "x"}\n  call "a" {}\n'
    "  expect allow\n}\n",
    help="did you mean `agent`?",
)

MALFORMED_HAS_COUNT = _code(
    "CH0110",
    "malformed `has`/`count`",
    "`has` takes one field path and `count` a matcher, `in` and a value: write `has(args.x)`, "
    "`count(pii.email in result)`.",
    example='deny tool "a" when has(args.x, args.y)\n',
    help="write `has(args.field)`",
)

UNCLOSED_BRACE = _code(
    "CH0111",
    "a `{` that is never closed",
    "Reported at the `{` itself, with a help saying where to add the `}`. Recovery closes the "
    "block there and goes on, so the block's own rules and every later item are still checked "
    "(one missing `}` used to be a single CH0104 at the end of the file that hid every later "
    "error).",
    example='scope agent.team == "x" {\n  allow tool "a"\n\nallow tool "b"\n',
    help="add `}` before line 4, where the next item starts",
)

NESTED_TOO_DEEPLY = _code(
    "CH0112",
    "nested too deeply",
    "More than 100 levels of expressions and scopes (`charter.language.limits.MAX_DEPTH`). "
    "Every expression node counts one level and so does each enclosing `scope`; parentheses "
    "do not. A chain of `and`/`or` counts one level per operator, so `a or b or ...` stops at "
    "about 100 operands: write `x in [...]`, or split the rule. The item is left out and the "
    "rest of the file is still checked.",
    example='deny tool "x" when '
    + " or ".join(f'args.region == "r{i}"' for i in range(101))
    + "\n",
    help="split the condition over several rules or `const`s; for a long `or` of equalities "
    "write `x in [...]`",
)

CONTROL_CHARACTER = _code(
    "CH0113",
    "control character in an annotation string",
    "An `@id` or other annotation string holds `\\n`, `\\t`, `\\u0000`, `\\u2028`... "
    "(anything `str.isprintable` rejects). Ids and metadata name rules in reasons, logs and "
    "generated code; they are one line of printable text.",
    example='@id("refund\\nlimit") deny tool "refund.create"\n',
    help="annotation strings are one line of printable text; remove the escape",
)

# ── names and types (CH02xx) ─────────────────────────────────────────────────

UNKNOWN_NAME = _code(
    "CH0201",
    "unknown name",
    "A name that is no request record, constant or matcher; the help suggests the closest one.",
    example='deny when agnet.team == "x"\n',
    help="did you mean `agent`?",
)

UNKNOWN_FIELD = _code(
    "CH0202",
    "unknown field or parameter",
    "A parameter a declared tool does not have, a field of a record or map key that does not "
    "exist, or a field on a value that has none. A rule whose targets reach several declared "
    'tools (several names, a glob, a tag: `deny tool "fs.write", "fs.edit" when args.pth ...`, '
    "`deny tool tagged money when args.ammount ...`) is checked against all of them: a field "
    'none of them has is this error (`tools "fs.write" and "fs.edit" have no parameter '
    "`pth``); a field only some have is optional, and its type is the tools' common one (else "
    "`any`).",
    example='tool "refund.create" (amount: decimal)\n'
    'deny tool "refund.create" when args.amout > 100\n',
    help="did you mean `amount`?",
)

TYPE_MISMATCH = _code(
    "CH0203",
    "type mismatch",
    "An operator or value of the wrong type: comparing a decimal with a string (the help says "
    "to remove the quotes), `in` on a non-collection or with an item of the wrong type, `like` "
    "on a non-string, `not` on a non-bool, a bad map key or list index, a regex literal "
    "outside `matches`, `approved by N of` with N below 1.",
    example='tool "pay" (amount: decimal)\nallow tool "pay" when args.amount > "100"\n',
    help="remove the quotes: `100`",
)

CONDITION_NOT_BOOL = _code(
    "CH0204",
    "a condition is not bool",
    "A `when` (or `unless`) condition must be true or false.",
    example='tool "x" (region: str)\ndeny tool "x" when args.region\n',
)

UNKNOWN_FUNCTION = _code(
    "CH0205",
    "unknown function",
    "A call to a function the standard library does not have; the help suggests the closest one.",
    example="deny when lenght(agent.id) > 3\n",
    help="did you mean `len`?",
)

BAD_ARGUMENTS = _code(
    "CH0206",
    "wrong arguments to a function",
    "The wrong number of arguments, or an argument of the wrong type.",
    example="deny when startswith(agent.id)\n",
)

SINGLE_EQUALS = _code(
    "CH0207",
    "`=` is not an operator",
    "A comparison written with one `=`.",
    example='deny when agent.team = "x"\n',
    help="did you mean `==`?",
)

INVALID_REGEX = _code(
    "CH0208",
    "invalid regex",
    "RE2 rejects the pattern (look-around, backreferences...), reported at the pattern's span; "
    "also `matches` without a regex literal.",
    example='deny when agent.id matches r"(?=x)"\n',
    help="Charter regexes use RE2 syntax (no look-around or backreferences)",
)

UNKNOWN_MATCHER = _code(
    "CH0209",
    "unknown matcher or module not used",
    "A matcher the module does not have (`pii.emial`, with a did-you-mean), a stdlib matcher "
    'without its `use` (`pii.email` without `use pii`: help "add `use pii`"), or a module '
    "used as a value.",
    example="use pii\ndeny when args contains pii.emial\n",
    help="did you mean `email`?",
)

UNKNOWN_MODULE = _code(
    "CH0210",
    "unknown stdlib module",
    "A `use` names a module the standard library does not have.",
    example="use pi\n",
    help="did you mean `pii`?",
)

DECLARED_TWICE = _code(
    "CH0211",
    "declared twice",
    "A constant, matcher, tool or parameter declared twice, a key written twice in a map "
    "literal, or a declaration named like a stdlib module.",
    example="const x = 1\nconst x = 2\n",
)

DUPLICATE_ID = _code(
    "CH0212",
    "duplicate `@id`",
    "Two rules with the same `@id`; the help names the first use. Also `@id` without a string, "
    "or on a scope.",
    example='@id("r") allow tool "a"\n@id("r") allow tool "b"\n',
    help="first used at policy.agentpolicy:1:1",
)

WRONG_STAGE = _code(
    "CH0213",
    "field not available at this stage",
    "`result` outside `on tool_result`; likewise `input`, `output` outside their stages.",
    example='deny when result == "x"\n',
    help="put the rule under `on tool_result`",
)

DECLARATION_IN_SCOPE = _code(
    "CH0214",
    "declaration inside a scope",
    "A `const`, `tool`, `matcher` or `use` inside a `scope`; normally caught by the grammar "
    "first, as CH0101.",
    no_example="the grammar rejects a declaration inside a scope first (CH0101); this guards "
    "ASTs built otherwise",
)

UNKNOWN_TYPE = _code(
    "CH0215",
    "unknown type",
    "A parameter type the language does not have, with a did-you-mean; map keys must be `str`.",
    example='tool "x" (n: integer)\n',
    help="did you mean `int`?",
)

TOOLS_FROM_UNREADABLE = _code(
    "CH0216",
    "`tools from` file unreadable",
    "The file cannot be read, or is not an MCP `tools/list` result.",
    example='tools from "no-such-file.json"\n',
    help='expected the JSON result of MCP `tools/list`: {"tools": [...]}',
)

CONFLICTING_HEADER = _code(
    "CH0217",
    "conflicting `default` or policy header",
    "Two `default`s that disagree (the help says where the first was set), or a second policy "
    "header with another name.",
    example="default allow\ndefault deny\n",
    help="`default allow` was set at policy.agentpolicy:1:1",
)

NOT_A_FIELD = _code(
    "CH0218",
    "not a request field where one is needed",
    "`has(1)`, `redact ... in 3`, `per 5`: these take a request field such as `args.x`.",
    example="deny when has(1)\n",
)

NOT_CONSTANT = _code(
    "CH0219",
    "not a constant",
    "A `const` (or a map literal) reading the request or calling a function.",
    example="const x = agent.id\n",
    help="constants are folded when the policy compiles",
)

CONTAINS_NEEDS_MATCHER = _code(
    "CH0220",
    "`contains` needs a matcher",
    "`X contains M` scans `X` with a matcher such as `pii.email`.",
    example='deny when args contains "password"\n',
    help='for a substring test write `"password" in X`',
)

BAD_LIMIT = _code(
    "CH0223",
    "bad limit",
    "A negative limit, or `then allow|redact|label` on a budget or limit.",
    example='limit calls(tool "a") <= 3 per 1h then allow\n',
    help='use `then deny`, `then warn` or `then require approval from "g"`',
)

UNDECLARED_TOOL_RESTRICTED = _code(
    "CH0224",
    "a restricting rule names an undeclared tool",
    "When the policy declares its tools (or reads them with `tools from`), a restricting rule "
    "whose target is not declared, with a did-you-mean. Restricting means everything but "
    "`allow`: `deny`, `require approval`, `warn`, `redact`, `label`, limits and budgets, "
    "including through a scope's target. Such a rule never fires on the call it was written "
    "for, so it is an error, not a warning; in an `allow` the same mistake only grants less, "
    "and stays W0301.",
    example='tool "fs.write" (path: str)\ndeny tool "fs.wirte" when args.path == "/etc/passwd"\n',
    help='did you mean "fs.write"?',
)

# ── tests (CH04xx) ───────────────────────────────────────────────────────────

TEST_UNKNOWN_TOOL = _code(
    "CH0401",
    "a test calls an unknown tool",
    "The called tool is neither declared nor named by any rule (with a did-you-mean).",
    example='allow tool "refund.create"\ntest "t" {\n  call "refund.crate" {}\n  expect allow\n}\n',
    help='did you mean "refund.create"?',
)

TEST_TYPE_ERROR = _code(
    "CH0402",
    "a test value has the wrong type",
    "A value in a test record (a call's arguments, a `given` record, a usage amount) is not of "
    "the declared type.",
    example='tool "pay" (amount: decimal)\nallow tool "pay"\n'
    'test "t" {\n  call "pay" {amount: "400"}\n  expect allow\n}\n',
    help="write the number without quotes",
)

TEST_UNKNOWN_FIELD = _code(
    "CH0403",
    "a test record has an unknown field",
    "A record has a field its type lacks (`session {cost: 1}`), with a did-you-mean.",
    example='allow tool "a"\n'
    'test "t" {\n  given session {cost: 1}\n  call "a" {}\n  expect allow\n}\n',
    help="did you mean `cost_usd`?",
)

TEST_MISSING_ARGUMENT = _code(
    "CH0404",
    "a test call lacks a required argument",
    "A call lacks an argument the tool's declaration does not mark optional.",
    example='tool "pay" (amount: decimal, currency: str)\nallow tool "pay"\n'
    'test "t" {\n  call "pay" {amount: 4}\n  expect allow\n}\n',
    help="mark a parameter optional with `name?: type` if a call may omit it",
)

TEST_NOT_LITERAL = _code(
    "CH0405",
    "a test value is not a literal",
    "A test value is neither a literal nor a `const`.",
    example='tool "pay" (currency: str)\nallow tool "pay"\n'
    'test "t" {\n  call "pay" {currency: usd}\n  expect allow\n}\n',
    help="quote it to write a string",
)

TEST_NO_CALL = _code(
    "CH0406",
    "a test makes no call",
    "A `test` block without a `call` line.",
    example='allow tool "a"\ntest "t" {\n  expect allow\n}\n',
    help='add a line such as `call "tool.name" {arg: "value"}`',
)

PROPERTY_NO_TARGET = _code(
    "CH0407",
    "a property's target matches no declared tool",
    "Properties generate calls to declared tools; a target that reaches none leaves nothing "
    "to generate.",
    example='tool "a" (x: int)\nallow tool "a"\n'
    'property "p" {\n  for all calls to tool tagged nothing\n  expect not allow\n}\n',
    help="properties generate calls to declared tools; declare the tools it means",
)

TEST_UNKNOWN_FIXTURE = _code(
    "CH0408",
    "unknown fixture",
    "`given NAME` names no fixture (with a did-you-mean), or a fixture includes itself.",
    example='allow tool "a"\nfixture support = agent {team: "support"}\n'
    'test "t" {\n  given suport\n  call "a" {}\n  expect allow\n}\n',
    help="did you mean `support`?",
)

TEST_APPROVED_IN_SCENARIO = _code(
    "CH0409",
    "`given approved` in a scenario",
    'A scenario approves the call that asks, with `approve from "g"` below it.',
    example='tool "a" (x: int)\nrequire approval from "g" when tool.name == "a"\n'
    'scenario "s" {\n  given approved\n  call "a" {x: 1}\n  expect allow\n}\n',
    help='approve the call that asks with `approve from "group"` below it',
)

# ── compiler (CH05xx) ────────────────────────────────────────────────────────

INTERNAL_COMPILER_ERROR = _code(
    "CH0500",
    "internal compiler error",
    "Lowering failed, or the Python code generated for a rule failed its check (see "
    "`docs/security.md`); reported at the rule. Never expected: please report it with the "
    "policy. The policy is rejected rather than left to deny every call at run time.",
    no_example="it is an internal error, which no policy text is meant to produce",
)

# ── warnings (W03xx) ─────────────────────────────────────────────────────────

UNDECLARED_TOOL = _code(
    "W0301",
    "tool not declared",
    "An `allow` target or `previously call` names a tool no declaration has, when the policy "
    "declares tools; the help suggests the closest declared name. (In a restricting rule this "
    "is CH0224.)",
    example='tool "fs.read" (path: str)\nallow tool "fs.reed"\n',
    help='did you mean "fs.read"?',
)

UNKNOWN_ANNOTATION = _code(
    "W0302",
    "unknown annotation",
    "The known ones are `@id`, `@owner`, `@shadow`, `@doc`, `@severity`, `@suppress`.",
    example='@owners("x") allow tool "a"\n',
    help="did you mean `@owner`?",
)

GLOB_MATCHES_NOTHING = _code(
    "W0303",
    "a glob that matches no declared tool",
    "The help suggests a glob that does match (`*` stays within one dot-separated part, `**` "
    "crosses dots), else the closest declared name. A warning rather than an error because a "
    "glob may be meant for tools not declared yet.",
    example='tool "kb.search" (query: str)\ntool "kb.article" (id: str)\nallow tool "kb*"\n',
    help='did you mean "kb.*"? (`*` stays within one dot-separated part, `**` crosses dots)',
)

UNKNOWN_TAG = _code(
    "W0304",
    "a tag no declared tool carries",
    "A tag no declared tool carries, close to one that some tool does, with a did-you-mean. A "
    "tag no declared tag is close to is taken to be one hosts send in the request's "
    "`tool.tags` (MCP servers do) and is not reported.",
    example='tool "payout.send" (amount: decimal) tags money\n'
    "deny tool tagged mony when args.amount > 10\n",
    help="did you mean `money`? (a tag no declaration has matches only calls whose request "
    "carries it in `tool.tags`)",
)

# ── static analysis (W05xx) and lint (W06xx): `charter analyze`, `charter lint` ───────────
# Reported by charter.compiler.analysis (docs/analysis.md), not by `charter check`: each is
# proved on the exact fragment or shown by a witness request both evaluators decide as
# claimed. Their examples are analyzed (`charter analyze`, `charter lint` for W06xx).

NEVER_MATCHES = _code(
    "W0501",
    "a rule that never matches",
    "No request satisfies the rule's condition, or no request reaches the rule at all (an "
    "`allow tool tagged T` when no declared tool carries T and `trust request tags` is off: "
    "request tags grant nothing). Proved on the exact fragment; when the condition uses "
    "something outside it, the analysis says I0599 (inconclusive) instead.",
    example='tool "pay" (amount: int)\n'
    'allow tool "pay" when args.amount > 100 and args.amount < 50\n'
    'allow tool "pay" when args.amount <= 10\n',
    help="delete the rule or fix its condition",
)

ALLOW_OVERRIDDEN = _code(
    "W0503",
    "an allow that never takes effect",
    "Every request the allow rule matches is denied by one deny rule (deny wins), so the allow "
    "grants nothing. The witness is a request the allow matches, decided deny.",
    example='tool "export" (region: str)\n'
    'allow tool "export" when args.region == "us-east-1"\n'
    'deny tool "export" when args.region not in {"eu-west-1"} because "data stays in the EU"\n'
    'allow tool "export" when args.region == "eu-west-1"\n',
    help="narrow `policy.agentpolicy:3`, or delete `policy.agentpolicy:2`",
)

ALLOW_REDUNDANT = _code(
    "W0504",
    "an allow that adds nothing",
    "Another allow rule matches every request this one matches, and this one carries no "
    "`because` or `@owner` the other lacks: deleting it changes no decision. Two equivalent "
    "allows are reported once, on the later one.",
    example='tool "kb.search" (query: str)\nallow tool "kb.*"\n'
    'allow tool "kb.search" when args.query != ""\n',
    help="delete `policy.agentpolicy:3`",
)

DENY_REDUNDANT = _code(
    "W0505",
    "a deny that adds nothing",
    "Another deny rule matches every request this one matches. It is reported at info level "
    "when the two `because` texts differ (the reason an agent is told may be the point), at "
    "warning level when they are the same.",
    example='tool "pay" (amount: int)\nallow tool "pay"\n'
    'deny tool "pay" when args.amount > 1000 because "over the cap"\n'
    'deny tool "pay" when args.amount > 5000 because "over the cap"\n',
    help="delete `policy.agentpolicy:4`",
)

APPROVAL_INEFFECTIVE = _code(
    "W0506",
    "an approval rule that never takes effect",
    "Every request the approval rule matches is denied anyway: by a deny rule, or, under "
    "`default deny`, because no allow matches any of them (an approval never opens a tool).",
    example='tool "refund" (amount: int)\nallow tool "refund" when args.amount > 0\n'
    'deny tool "refund" when args.amount > 100 because "over 100 goes to payments"\n'
    'require approval from "finance" tool "refund" when args.amount > 500\n',
    help="narrow `policy.agentpolicy:3`, or delete the approval rule",
)

ALLOW_DENY_OVERLAP = _code(
    "W0507",
    "an allow and a deny that partly overlap",
    "Some requests the allow matches are denied by the deny, and each also matches requests "
    "the other does not: often an intended exception, so it is reported only with "
    "`--conflicts`, at info level, with a witness of the overlap.",
    example='tool "pay" (amount: int, currency: str)\nallow tool "pay" when args.amount < 100\n'
    'deny tool "pay" when args.currency == "JPY" because "no yen"\n',
    help="intended exceptions can say so with a test",
)

TOOL_NEVER_ALLOWED = _code(
    "W0508",
    "a declared tool that is never allowed",
    "Under `default deny`, no allow rule applies to the tool at `tool_call`: every call of it "
    "is denied.",
    example='tool "search" (q: str)\ntool "delete" (id: str)\nallow tool "search"\n',
    help='add `allow tool "delete"` (with its conditions), or drop the declaration',
)

RESULTS_DENIED = _code(
    "W0509",
    "a tool whose results are always denied",
    "The tool is allowed at `tool_call`, the policy checks tool results (it has rules `on "
    "tool_result`), and under `default deny` none allows this tool's results: every result "
    "the host checks is denied.",
    example='tool "crm.lookup" (id: str)\ntool "kb.search" (q: str)\n'
    'allow tool "crm.lookup", "kb.search"\non tool_result allow tool "crm.lookup"\n',
    help='add `on tool_result allow tool "kb.search"`',
)

RISKY_UNGUARDED = _code(
    "W0510",
    "a risky tool always allowed, unguarded",
    "A tool tagged `destructive`, `money` or `external` (the tags are configurable with "
    "`--risk-tags`) is allowed on every call, with no deny, approval, budget or limit on it.",
    example='tool "fs.delete" (path: str) tags destructive\nallow tool "fs.delete"\n',
    help="add a condition, a `require approval`, a budget or a limit",
)

OPTIONAL_WITHOUT_HAS = _code(
    "W0511",
    "an allow that reads an optional parameter without `has`",
    "The allow reads a parameter declared optional (`note?: str`) without `has(args.note)`: "
    "when a call leaves it out the rule errors, and an erroring allow grants nothing. The "
    "witness is such a call.",
    example='tool "ticket.update" (id: str, note?: str)\n'
    'allow tool "ticket.update" when args.note != ""\n',
    help="write `has(args.note) and ...` or make the parameter required",
)

COUNTER_UNREACHABLE = _code(
    "W0512",
    "a budget or limit on tools never allowed",
    "Under `default deny`, no allow applies to the tools the budget or limit counts, so it "
    "never counts anything.",
    example='allow tool "kb.search"\nlimit calls(tool "email.send") <= 20 per 1h because "rate"\n',
    help="allow the tools it counts, or delete it",
)

SHADOW_NOOP = _code(
    "W0513",
    "a shadow rule the same as an enforced rule",
    "A `@shadow` rule matches exactly the requests an enforced rule of the same kind matches: "
    "trying it out can show nothing new.",
    example='tool "pay" (amount: int)\nallow tool "pay"\n'
    'deny tool "pay" when args.amount > 100 because "cap"\n'
    '@shadow\ndeny tool "pay" when args.amount > 100 because "cap (trial)"\n',
    help="change the shadow rule to the candidate you mean to try, or delete it",
)

DENY_WITHOUT_BECAUSE = _code(
    "W0601",
    "a deny without `because`",
    "The agent (and the audit log) are told only the rule's id. Reported by `charter lint`.",
    example='default allow\ntool "pay" (amount: int)\ndeny tool "pay" when args.amount > 100\n',
    help='add `because "..."` saying what to do instead',
)

RULE_WITHOUT_ID = _code(
    "W0602",
    "a rule without `@id` in a large policy",
    "In a policy of more than 20 rules, a rule without `@id` is known by its file and line, "
    "which change whenever a line is added above it; diffs, tests and audit logs name rules "
    "by id. Reported by `charter lint`.",
    example="".join(f'@id("r{i}") allow tool "t{i}"\n' for i in range(20))
    + 'allow tool "last"\n',
    help='add `@id("...")`',
)

CONST_SHADOWS_FUNCTION = _code(
    "W0603",
    "a const named like a standard-library function",
    "Calls still mean the function, but the constant reads as if it were one. Reported by "
    "`charter lint`.",
    example='const len = 3\ntool "a" (s: str)\nallow tool "a" when args.s == "x"\n',
    help="rename the constant",
)

SUPPRESS_WITHOUT_REASON = _code(
    "W0604",
    "a `@suppress` without codes and a reason",
    'An opt-out names the codes it drops and says why: `@suppress("W0507: the exception is '
    'intended")`. Without a reason it drops nothing. Reported by `charter lint`.',
    example='tool "a" (n: int)\n@suppress("W0504")\nallow tool "a" when args.n < 5\n',
    help='write `@suppress("W0507: why this is intended")`',
)
