"""Properties of the formatter over generated policies: it is idempotent, it undoes any
scrambling of the layout, and the formatted policy decides every request the same way."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.compiler.pipeline import compile_sources
from charter.language.formatter import format_text
from charter.language.source import Source
from charter.runtime.policy import Policy
from tests.formatter.scramble import scramble

TOOLS = {"a.x": "tags t1", "b.y": "tags t2"}
HEADER = """\
policy "gen" version "1.0"
default {default}

const k = {k}
const names = {{"p", "q"}}

tool "a.x" (n: int, s: str, d?: decimal) tags t1
tool "b.y" (n: int, s: str) tags t2
"""

_STRINGS = st.sampled_from(["p", "q", "r", 'say "hi"', "back\\slash", "tab\there", "#hash"])


def _atoms() -> st.SearchStrategy[str]:
    from charter.language.fmt_expr import quote

    return st.one_of(
        st.builds(lambda op, n: f"args.n {op} {n}", st.sampled_from(["<", ">", "==", "!=",
                                                                      "<=", ">="]),
                  st.integers(-3, 12)),
        st.builds(lambda s: f"args.s == {quote(s)}", _STRINGS),
        st.just("args.s in names"),
        st.just("args.s not in names"),
        st.just("args.n > k"),
        st.builds(lambda n: f"args.n * 2 - {n} > -(1 + k)", st.integers(0, 9)),
        st.sampled_from(['agent.team == "s"', 'agent.team != "t"', "session.cost_usd > 1.50",
                         "session.cost_usd <= 2.00", 'startswith(args.s, "p")']),
    )


def _expr(depth: int = 2) -> st.SearchStrategy[str]:
    if depth == 0:
        return _atoms()
    sub = _expr(depth - 1)
    return st.one_of(
        _atoms(),
        st.builds(lambda a, op, b: f"{a} {op} {b}", sub, st.sampled_from(["and", "or"]), sub),
        st.builds(lambda a: f"not ({a})", sub),
        st.builds(lambda a: f"({a})", sub),
    )


@st.composite
def _rule(draw: Any, index: int) -> str:
    from charter.language.fmt_expr import quote

    notes = ""
    if draw(st.booleans()):
        notes += f'@id("r{index}") '
    if draw(st.integers(0, 5)) == 0:
        notes += "@shadow "
    effect = draw(st.sampled_from(["allow", "deny", "warn", 'require approval from "g"']))
    tool = draw(st.sampled_from(sorted(TOOLS)))
    clauses = [
        f"{draw(st.sampled_from(['when', 'unless']))} {draw(_expr())}"
        for _ in range(draw(st.integers(0, 2)))
    ]
    if draw(st.booleans()):
        clauses.append(f"because {quote(draw(_STRINGS))}")
    comment = "  # note" if draw(st.integers(0, 4)) == 0 else ""
    return f'{notes}\n{effect} tool "{tool}" ' + "\n  ".join(clauses) + comment


@st.composite
def policies(draw: Any) -> str:
    """Policy text in an arbitrary but parseable layout."""
    text = HEADER.format(default=draw(st.sampled_from(["allow", "deny"])), k=draw(
        st.integers(0, 9)))
    n = draw(st.integers(1, 6))
    rules = [draw(_rule(i)) for i in range(n)]
    if n > 1 and draw(st.booleans()):
        cut = draw(st.integers(1, n - 1))
        inner = "\n".join(rules[cut:])
        rules = rules[:cut] + ['# scoped\nscope agent.team == "s" {\n' + inner + "\n}"]
    seps = [draw(st.sampled_from(["\n", "\n\n", "\n# between\n"])) for _ in rules]
    return text + "".join(sep + r for sep, r in zip(seps, rules, strict=True)) + "\n"


requests = st.fixed_dictionaries({
    "tool": st.sampled_from(sorted(TOOLS)),
    "args": st.fixed_dictionaries({"n": st.integers(-4, 13), "s": _STRINGS}),
    "agent": st.fixed_dictionaries({"id": st.just("a1"), "team": st.sampled_from(["s", "t"])}),
    "session": st.fixed_dictionaries({
        "id": st.just("s1"),
        "cost_usd": st.sampled_from([Decimal("0.5"), Decimal("1.50"), Decimal("2.00"),
                                     Decimal("3")]),
    }),
})


def _compile(text: str) -> Any:
    comp = compile_sources([Source("gen.agentpolicy", text)])
    assert not comp.errors, [d.render(comp.sources["gen.agentpolicy"]) for d in comp.errors]
    assert comp.ir is not None
    return comp.ir


_RULE_ID = re.compile(r"gen\.agentpolicy:\d+")


def _outcome(ir: Any, request: dict[str, Any]) -> tuple[object, ...]:
    # Rules without @id are named FILE:LINE, which formatting may change: compare positions.
    position = {r.id: (r.index, r.kind) for r in ir.rules}
    d = Policy(ir).decide(request)

    def texts(items: tuple[str, ...]) -> list[str]:
        return sorted(_RULE_ID.sub(lambda m: f"#{position[m.group()][0]}", t) for t in items)

    return (
        d.effect, sorted(position[r] for r in d.rules), texts(d.reasons), texts(d.warnings),
        sorted(d.approvers), sorted(position[s.rule] for s in d.shadow),
    )


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(policies())
def test_idempotent(text: str) -> None:
    once = format_text(text)
    assert format_text(once) == once


@SETTINGS
@given(policies(), st.integers(0, 2**32))
def test_scrambled_layout_comes_back(text: str, seed: int) -> None:
    canonical = format_text(text)
    assert format_text(scramble(canonical, seed)) == canonical


@SETTINGS
@given(policies(), st.lists(requests, min_size=1, max_size=8))
def test_same_decisions(text: str, batch: list[dict[str, Any]]) -> None:
    before, after = _compile(text), _compile(format_text(text))
    assert len(before.rules) == len(after.rules)
    for request in batch:
        assert _outcome(before, request) == _outcome(after, request)
