"""The fast driver (one LALR loop over the generated tables, building the AST as it reduces)
against Lark's own parser, through Lark's public API only.

Whatever the fast driver accepts must give exactly the AST built from Lark's parse tree (with
`propagate_positions`) by the same `AstBuilder` methods: same nodes, same spans, same builder
diagnostics. Whatever it rejects, Lark must reject too: only then does Lark describe the error.
"""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import pytest
from lark import Token as LarkToken
from lark import Tree
from lark.exceptions import UnexpectedInput

from charter.language import ast, parser, reference
from charter.language.astbuilder import AstBuilder
from charter.language.lexicon import Token
from charter.language.parser import parse, parse_expr
from charter.language.recovery import item_starts
from charter.language.source import Source, Span

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted(
    p
    for p in ROOT.glob("**/*.agentpolicy")
    if ".git" not in p.parts and "node_modules" not in p.parts
)

MORE = [
    'policy "x"\n',
    "",
    "# only a comment",
    'allow tool "a" when ((args.x + 1) * 2) <= 3 and -args.y < 2.5 or not (args.z)\n',
    'deny tool "a" when args.s matches r"^a\\d+$" and args.t like "a*" because "x\\u00e9\\q"\n',
    'allow tool "a" when {limit: 3, session: 1, not: 2}.limit == 3 and args.limit in [1, 2,]\n',
    'const x = previously call "a" with {b: 1} within 30s\nconst y = has(args.a, args.b)\n',
    "on tool_call allow\non bogus deny\nbudget tokens <= 10 per 1h per agent.id then deny\n",
    'tool "t" (a?: list<map<str, int>>, b: str,) tags x, y\nallow tool "t"\n',
    'scope tool tagged x when 1 == 1 {\n  @a @b("c") allow\n  scope 2 > 1 {\n  }\n}\n',
    'test "t" {\n  given agent {id: "a"} approved by "g" labels ["x"]\n'
    '  on tool_result call "a" {} with result {}\n  expect not require approval from "g"\n}\n',
    'property "p" {\n  for all calls to tool "a" where args.x > 1\n  expect deny because "b"\n}\n',
]


def _built(builder: AstBuilder, node: Tree[LarkToken] | LarkToken) -> Any:
    """What the builder makes of Lark's tree: each node's method with its span and children."""
    if isinstance(node, LarkToken):
        return Token(
            node.type,
            node.value,
            node.start_pos or 0,
            node.line or 0,
            node.column or 0,
            node.end_line or 0,
            node.end_column or 0,
            node.end_pos or 0,
        )
    meta = node.meta
    if meta.empty:
        span = Span(builder.file, 1, 1, 1, 1, 0, 0)
    else:
        span = Span(
            builder.file,
            meta.line,
            meta.column,
            meta.end_line,
            meta.end_column,
            meta.start_pos,
            meta.end_pos,
        )
    children = [_built(builder, child) for child in node.children]
    return getattr(builder, str(node.data))(span, children)


def _lark(name: str, text: str, start: str = "start", parsed: str | None = None) -> tuple[str, str]:
    """(AST, builder diagnostics) from Lark's parse of `parsed` (default `text`); raises
    Lark's `UnexpectedInput`."""
    builder = AstBuilder(name, text)
    value = _built(builder, reference.parse_tree(text if parsed is None else parsed, start))
    return repr(value), repr(builder.diagnostics)


def _fast(name: str, text: str, start: str = "start") -> tuple[str, str] | None:
    session = parser._Session(name, text)
    value = session.parse(text, start)
    return None if value is None else (repr(value), repr(session.builder.diagnostics))


def _texts() -> list[tuple[str, str]]:
    out = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in POLICIES]
    return out + [(f"more{i}", t) for i, t in enumerate(MORE)]


def test_the_examples_parse_fast() -> None:
    examples = [p for p in POLICIES if p.is_relative_to(ROOT / "examples")]
    assert examples and all(_fast(p.name, p.read_text(encoding="utf-8")) for p in examples)


@pytest.mark.parametrize(("name", "text"), _texts(), ids=lambda v: str(v)[:40])
def test_fast_path_builds_what_lark_builds(name: str, text: str) -> None:
    fast = _fast(name, text)
    try:
        lark = _lark(name, text)
    except UnexpectedInput:
        assert fast is None  # the fast path never accepts what Lark rejects
        return
    assert fast == lark


def test_fast_path_on_mutated_policies() -> None:
    """Random edits of the examples: both paths agree, or the fast path hands over."""
    rng = random.Random(7)
    words = ["allow", "tool", "when", "{", "}", "(", ")", ",", ":", '"x"', "@", ".", "\n", "3s",
             'r"x"', "1.5", 'tool "z" (', "and", "per", "-"]
    texts = [t for _, t in _texts() if t]
    checked = 0
    for _ in range(400):
        text = rng.choice(texts)
        i = rng.randrange(len(text))
        if rng.random() < 0.5:
            text = text[:i] + text[i + rng.randint(1, 3) :]
        else:
            text = text[:i] + " " + rng.choice(words) + " " + text[i:]
        fast = _fast("m", text)
        try:
            lark = _lark("m", text)
        except UnexpectedInput:
            assert fast is None
            continue
        assert fast == lark
        checked += 1
    assert checked > 0


@pytest.mark.parametrize(
    "text", ["args.a + 1", "(x)", "((a.b))[1]", "not not -3", "{a: {b: [1]}}", "f()", "tool"]
)
def test_fast_path_expressions(text: str) -> None:
    assert _fast("e", text, "expr") == _lark("e", text, "expr")


def test_pieces_parse_in_place_like_padded() -> None:
    """Recovery parses good items in place: same result as the padded text Lark would see."""
    checked = 0
    for _, text in _texts():
        starts = item_starts(text)
        for i, begin in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(text)
            newlines = text.count("\n", 0, begin)
            padded = " " * (begin - newlines) + "\n" * newlines + text[begin:end]
            in_place = parser._Session("f", text)
            value = in_place.parse(text, "start", begin, end, newlines)
            if value is None:
                continue
            assert (repr(value), repr(in_place.builder.diagnostics)) == _lark(
                "f", text, parsed=padded
            )
            checked += 1
    assert checked > len(POLICIES)


@pytest.mark.parametrize(
    "text",
    [
        'use r"x"\n',  # REGEX where only a NAME may come: `r` is a name, then a string
        "limit calls(tool \"a\") <= 5m per 1h\n",  # a DURATION where an INT must come
        'scope tool "a" {\n  tool "b" (x: int)\n}\n',  # a declaration inside a scope
    ],
)
def test_state_lexers_when_the_root_lexer_reads_another_terminal(text: str) -> None:
    """The root regex reads a terminal the state does not take: the state's own lexer reads
    the token instead, exactly as Lark's contextual lexer does."""
    driver = parser._grammar().driver
    driver.own.clear()  # a cache of compiled regexes: see that this text needs one
    fast = _fast("s", text)
    try:
        lark = _lark("s", text)
    except UnexpectedInput:
        assert fast is None
    else:
        assert fast == lark
    assert parser._grammar().driver.own


def _big(n: int) -> str:
    decls = "\n".join(f'tool "tool_{i}" (amount: decimal, region: str) tags t' for i in range(n))
    rules = "\n".join(
        f'allow tool "tool_{i}" when args.amount <= {i} and args.region in {{"eu", "us"}}'
        for i in range(n)
    )
    return 'policy "big"\ndefault deny\n' + decls + "\n" + rules


def test_large_policy_spans() -> None:
    n = 2000
    module, diagnostics = parse(Source("big.agentpolicy", _big(n)))
    assert diagnostics == []
    assert len(module.items) == 2 + 2 * n
    last = module.items[-1]
    assert isinstance(last, ast.Rule)
    assert (last.span.line, last.span.col) == (2 * n + 2, 1)
    assert last.span.end == len(_big(n))


def test_large_policy_with_one_error_recovers_the_rest() -> None:
    text = _big(2000).replace('tool "tool_77" (', "tool tool_77 (", 1)
    module, diagnostics = parse(Source("big.agentpolicy", text))
    assert len(diagnostics) == 1
    assert diagnostics[0].span.line == 2 + 77 + 1
    assert len(module.items) == 2 + 2 * 2000 - 1
    # The same item alone, and the file without it, give the same diagnostic and items.
    expected, _ = parse(Source("big.agentpolicy", text.replace("tool tool_77 (", "#ool tool_77 (")))
    assert module.items == expected.items


def test_gc_state_restored() -> None:
    assert gc.isenabled()
    parse(Source("a", MORE[3]))
    assert gc.isenabled()
    gc.disable()
    try:
        parse(Source("a", "allow tool"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_parse_expr_still_reports_errors() -> None:
    expr, diagnostics = parse_expr("args.a +")
    assert expr is None
    assert diagnostics and diagnostics[0].severity == "error"
