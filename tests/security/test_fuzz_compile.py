"""Fuzzing the compiler: any policy text either compiles to working code or is diagnosed.

Inputs are the differential test's generated policies, then mutated: deep nesting and long
chains spliced in, arbitrary text (control characters included) in every string position
(ids and other annotations, because-texts, tool names, tags, string literals, file names),
and raw character edits. For every input `charter.compile`:
- raises `CompileError` with at least one diagnostic, none of them internal (CH0100, CH0500);
- or returns a policy whose decisions on a few requests carry no internal error and equal the
  reference interpreter's.
Anything else raised is a failure.

CI runs `CHARTER_FUZZ_EXAMPLES` inputs (default 150). The long run (docs/security.md):
    CHARTER_FUZZ_EXAMPLES=25000 python -m pytest -q -p no:cacheprovider \
        tests/security/test_fuzz_compile.py --hypothesis-seed=N    # for N in 1..4
"""

from __future__ import annotations

import os

from compiler.test_differential import SNAPSHOTS, policies, requests, with_counters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.language.fmt_expr import quote

EXAMPLES = int(os.environ.get("CHARTER_FUZZ_EXAMPLES", "150"))
# CI runs the same inputs every time; a scaled run explores (vary it with --hypothesis-seed).
DERANDOMIZE = "CHARTER_FUZZ_EXAMPLES" not in os.environ
INTERNAL = ("CH0100", "CH0500")
COUNT = {"inputs": 0, "compiled": 0, "decisions": 0}

# Text with what breaks code and logs: line breaks of every kind, NUL, escapes, quotes,
# brackets, Python syntax, and anything else Hypothesis finds.
NASTY = st.sampled_from([
    "\n", "\r", "\r\n", "\t", "\x00", "\x1b[2J", "\x0b", "\x0c", "\x85", "\u2028", "\u2029",
    "\ufeff", "\u202e", '"', "'", "\\", "#", "(", ")", "[", "]", "{", "}", "*", "**",
    "__import__('os')", "\n    return 0 #", "'''", '"""', "{0}", "%s", " ", "é", "\U0001f600",
])
TEXT = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(NASTY, st.text(max_size=4)), max_size=5).map("".join),
)


@st.composite
def string_literal(draw: st.DrawFn) -> str:
    """A Charter string literal for arbitrary text: canonical escapes, or raw characters."""
    text = draw(TEXT)
    if draw(st.integers(0, 4)) == 0:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'  # raw controls
    return quote(text)


def _depth_piece(kind: str, n: int) -> str:
    """A condition nested about `n` levels deep, in one of the ways the attack run used."""
    if kind in ("and", "or"):
        return f" {kind} ".join(["args.x == 1"] * n)
    if kind == "not":
        return "not " * n + "true"
    if kind == "neg":
        return "-" * n + "1 < 0"
    if kind == "plus":
        return "1" + " + 1" * n + " > 0"
    if kind == "list":
        return "[" * n + "1" + "]" * n + ' == [1]'
    if kind == "parens":
        return "(" * n + "true" + ")" * n
    if kind == "calls":
        return "len(" + "lower(" * n + '"x"' + ")" * n + ") == 1"
    return "agent" + ".a" * n + " == 1"


@st.composite
def deep(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["and", "or", "not", "neg", "plus", "list", "parens", "calls",
                                 "attrs", "scopes"]))
    n = draw(st.one_of(st.integers(1, 20), st.integers(85, 115), st.integers(150, 700)))
    if kind == "scopes":
        rule = 'deny tool "a" when args.x == 1'
        return "scope args.x == 1 {\n" * n + rule + "\n" + "}\n" * n
    effect = draw(st.sampled_from(["deny", "allow", "warn"]))
    return f'{effect} tool "a" when {_depth_piece(kind, n)}'


@st.composite
def strings_everywhere(draw: st.DrawFn) -> str:
    """A rule with arbitrary text in each string position."""
    notes = "".join(
        f"@{draw(st.sampled_from(['id', 'owner', 'doc', 'severity']))}({draw(string_literal())})\n"
        for _ in range(draw(st.integers(0, 3))))
    literals = [draw(string_literal()) for _ in range(draw(st.integers(1, 2)))]
    names = ", ".join(literals)
    # Declared, so that a restricting rule on them is not an error (CH0224) most times.
    declared = "".join(f"tool {name} (s?: str, x?: int) tags x\n" for name in literals
                       if draw(st.integers(0, 4)))
    target = draw(st.sampled_from([f"tool {names}", "tool tagged " + draw(st.sampled_from(
        ["money", "x", "read"]))]))
    value = draw(string_literal())
    cond = draw(st.sampled_from([
        f"args.s == {value}", f"args.s like {value}", f"{value} in args.s",
        f"startswith(args.s, {value})", f"previously call {value}",
        f'approved by {value}', f"args.s in [{value}, {draw(string_literal())}]",
    ]))
    effect = draw(st.sampled_from([
        "deny", "allow", f"require approval from {draw(string_literal())}",
        f"label session {draw(string_literal())}"]))
    because = f" because {draw(string_literal())}" if draw(st.booleans()) else ""
    return f"{declared}{notes}{effect} {target} when {cond}{because}"


@st.composite
def tool_declaration(draw: st.DrawFn) -> str:
    tags = ", ".join(draw(st.lists(st.sampled_from(["money", "x", "read", "write"]),
                                   min_size=1, max_size=3)))
    return f"tool {draw(string_literal())} (s?: str, x?: int) tags {tags}"


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with a few raw character edits: insertions, deletions, swaps."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(chars)))
        edit = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if edit == "insert":
            chars[at:at] = list(draw(st.one_of(NASTY, st.text(max_size=3))))
        elif edit == "delete":
            del chars[at : at + draw(st.integers(1, 5))]
        else:
            chars[at:at] = chars[max(0, at - 8) : at]
    return "".join(chars)


@st.composite
def fuzz_inputs(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, policy text)."""
    text = draw(policies())
    extra = draw(st.lists(st.one_of(deep(), strings_everywhere(), tool_declaration()),
                          max_size=3))
    if extra:
        extra.insert(0, 'tool "a" (x?: int, s?: str, l?: list<int>) tags x')
        lines = text.split("\n")
        for piece in extra:
            at = draw(st.integers(5, len(lines)))  # after the header, `use` and `default`
            lines.insert(at, piece)
        text = "\n".join(lines)
    if draw(st.integers(0, 3)) == 0:
        text = draw(mutated(text))
    name = draw(st.one_of(st.just("policy.agentpolicy"),
                          TEXT.map(lambda t: f"p{t}.agentpolicy")))
    return name, text


REQUESTS = [{"tool": "a", "args": {"x": 1, "s": "x"}},
            {"tool": {"name": "pay.send", "tags": ["money"]}, "args": {"s": "\n", "x": 2}}]


def _assert_no_internal_error(decision: charter.Decision, text: str) -> None:
    for reason in (*decision.reasons, *(e.message for e in decision.errors)):
        assert "internal error" not in reason and "cannot evaluate rule" not in reason, (
            f"{reason}\n--- policy ---\n{text}")


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
          suppress_health_check=list(HealthCheck))
@given(fuzz_inputs(), st.lists(st.tuples(requests(), SNAPSHOTS), min_size=2, max_size=4))
def test_compile_diagnoses_or_works(case: tuple[str, str],
                                    batch: list[tuple[dict[str, object], object]]) -> None:
    name, text = case
    COUNT["inputs"] += 1
    try:
        policy = charter.compile(text, name)
    except charter.CompileError as err:
        codes = [d.code for d in err.diagnostics]
        assert codes, text
        assert not set(codes) & set(INTERNAL), f"{err}\n--- policy ---\n{text}"
        return
    COUNT["compiled"] += 1
    for req, raw in [*((r, None) for r in REQUESTS), *batch]:
        snap = with_counters(raw, policy)  # type: ignore[arg-type]
        decision = policy.decide(req, snap)  # type: ignore[arg-type]
        _assert_no_internal_error(decision, text)
        assert decision == policy.interpret(req, snap), f"{req}\n--- policy ---\n{text}"  # type: ignore[arg-type]
        COUNT["decisions"] += 1


def test_zz_fuzz_ran() -> None:
    assert COUNT["inputs"] >= min(EXAMPLES, 100)
    assert 0 < COUNT["compiled"] < COUNT["inputs"]  # both outcomes were exercised
    print(f"\nfuzz: {COUNT['inputs']} inputs, {COUNT['compiled']} compiled, "
          f"{COUNT['decisions']} decisions checked")
