"""Generate `charter/grammar/_tables.py`, the LALR(1) tables of `charter/grammar/agentpolicy.lark`.

    python scripts/gen_parser_tables.py            # rewrite the tables
    python scripts/gen_parser_tables.py --check    # exit 1 when they are stale

Run it after every change to the grammar (`tests/language/test_parser_tables.py` fails until
you do). Lark analyses the grammar; its serialize tool (`lark.tools.serialize`, "Stores Lark's
internal state & LALR analysis as a JSON file") takes the analysis out in its documented
format, and this script turns that into the plain data the fast driver in
`charter/language/parser.py` runs on, so that parsing a valid file needs no Lark at all:

- States are renumbered breadth-first from the start states, symbols in name order: Lark
  numbers them in set order, which changes with the hash seed, and generated files must not.
- Each state gets the contextual lexer Lark would build for it (`lark.lexer.ContextualLexer`):
  the terminals its row accepts plus the ignored ones and NAME (the lexer accepts it in every
  state, see `charter.language.lexicon`), in Lark's order, as one regex of named groups. String
  terminals that the NAME regex also matches are left out of the regex and found by a lookup
  after a NAME match, as Lark's `UnlessCallback` does. Identical lexers are stored once.
- The root lexer (all terminals) comes too. The script checks that every state's lexer is the
  root lexer restricted to the state's terminals: the same order, and the same keyword lookups
  less the keywords the state does not take. So the driver lexes with the root regex and one
  lookup table, and compiles a state's own regex (about 0.3 ms each) only when the root one
  finds a terminal the state does not accept, which valid files rarely need.
- Ignored whitespace and comments are skipped by the driver before each token, so the per-state
  regexes leave them out; the script refuses a grammar whose ignored terminals are others.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

from lark import Lark
from lark.tools.serialize import serialize
from lark.utils import get_regexp_width

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "charter" / "grammar" / "agentpolicy.lark"
OUTPUT = ROOT / "charter" / "grammar" / "_tables.py"

#: The grammar's start symbols: files, and single expressions (REPL, CLI, tests).
STARTS = ("start", "expr")
#: The terminal the lexer accepts in every state (`charter.language.lexicon.ALWAYS_ACCEPT`).
ALWAYS_ACCEPT = "NAME"
#: The ignored terminals the driver skips itself, and the characters that can start them.
IGNORED = {"WS": "(?:[ \t\f\r\n])+", "COMMENT": "#[^\n]*"}
IGNORED_FIRST = " \t\f\r\n#"


class Lexer(NamedTuple):
    """One contextual lexer: its regex of named groups, {regex terminal: {keyword: terminal}}
    for the keywords found by a lookup after a regex match, and its terminals in regex order."""

    pattern: str
    unless: dict[str, dict[str, str]]
    order: tuple[str, ...]


class GrammarNotSupported(Exception):
    """The grammar uses a Lark feature the fast driver does not implement."""


def lark_analysis(grammar: str) -> dict[str, Any]:
    """Lark's LALR analysis of `grammar`, as its serialize tool writes it (`data` and `memo`)."""
    lark = Lark(
        grammar, parser="lalr", lexer="contextual", maybe_placeholders=False, start=list(STARTS)
    )
    out = io.StringIO()
    serialize(lark, out)  # type: ignore[no-untyped-call]  # the tool has no annotations
    analysis: dict[str, Any] = json.loads(out.getvalue())
    return analysis


def _regexp(terminal: dict[str, Any]) -> str:
    """`Pattern.to_regexp`: the terminal's regex, string literals escaped, flags applied."""
    pattern = terminal["pattern"]
    value: str = pattern["value"]
    if pattern["__type__"] == "PatternStr":
        value = re.escape(value)
    for flag in pattern["flags"]:
        value = f"(?{flag}:{value})"
    return value


def _max_width(terminal: dict[str, Any]) -> int:
    pattern = terminal["pattern"]
    if pattern["__type__"] == "PatternStr":
        return len(pattern["value"])
    return int(get_regexp_width(_regexp(terminal))[1])


def _has_newline(regexp: str) -> bool:
    """Lark's test for terminals that may span lines (their tokens advance the line count)."""
    return (
        "\n" in regexp
        or "\\n" in regexp
        or "\\s" in regexp
        or "[^" in regexp
        or ("(?s" in regexp and "." in regexp)
    )


def _lexer(accepts: set[str], terminals: dict[str, dict[str, Any]]) -> Lexer:
    """The scanner Lark builds for a state accepting `accepts` (`BasicLexer._build_scanner`)."""
    chosen = [terminals[n] for n in accepts | set(IGNORED) | {ALWAYS_ACCEPT} if n in terminals]
    chosen.sort(
        key=lambda t: (-t["priority"], -_max_width(t), -len(t["pattern"]["value"]), t["name"])
    )
    regexes = [t for t in chosen if t["pattern"]["__type__"] == "PatternRE"]
    strings = [t for t in chosen if t["pattern"]["__type__"] == "PatternStr"]
    unless: dict[str, dict[str, str]] = {}
    embedded: set[str] = set()
    for retok in regexes:
        words: dict[str, str] = {}
        for strtok in strings:
            text = strtok["pattern"]["value"]
            if strtok["priority"] != retok["priority"]:
                continue
            match = re.match(_regexp(retok), text)
            if match is None or match.group(0) != text:
                continue
            if strtok["pattern"]["flags"]:
                raise GrammarNotSupported(f"{strtok['name']}: a keyword with flags")
            words[text] = strtok["name"]
            if set(strtok["pattern"]["flags"]) <= set(retok["pattern"]["flags"]):
                embedded.add(strtok["name"])
        if words:
            unless[retok["name"]] = words
    kept = [t for t in chosen if t["name"] not in embedded and t["name"] not in IGNORED]
    pattern = "|".join(f"(?P<{t['name']}>{_regexp(t)})" for t in kept)
    re.compile(pattern)  # one regex per state, as Lark has for this grammar
    return Lexer(pattern, unless, tuple(t["name"] for t in kept))


def _check_restriction(lexer: Lexer, root: Lexer, accepts: set[str]) -> None:
    """Check that a state's lexer is the root lexer restricted to the state's terminals.

    Then the root regex's first match is the state's whenever its terminal is accepted there
    (both regexes list terminals in the same order), and the driver compiles a state's own
    regex only when the root one finds a terminal the state does not accept.
    """
    allowed = accepts | {ALWAYS_ACCEPT}
    order = tuple(name for name in root.order if name in allowed)
    unless = {
        retok: kept
        for retok, words in root.unless.items()
        if retok in allowed and (kept := {w: k for w, k in words.items() if k in allowed})
    }
    if (order, unless) != (lexer.order, lexer.unless):
        raise GrammarNotSupported(f"a state lexer is not the root lexer restricted: {accepts}")


def _check_lexing(data: dict[str, Any], terminals: dict[str, dict[str, Any]]) -> None:
    conf = data["parser"]["lexer_conf"]
    if conf["g_regex_flags"] or conf["use_bytes"] or conf.get("callbacks"):
        raise GrammarNotSupported("regex flags, bytes or lexer callbacks")
    ignored = {name: _regexp(terminals[name]) for name in conf["ignore"]}
    if ignored != IGNORED:
        raise GrammarNotSupported(f"the driver skips {IGNORED}; the grammar ignores {ignored}")
    for name, terminal in terminals.items():
        if name in IGNORED:
            continue
        regexp = re.compile(_regexp(terminal))
        for first in IGNORED_FIRST:
            if any(regexp.match(first + rest) for rest in ("", "a", "0", '"', first)):
                raise GrammarNotSupported(f"{name} can start with {first!r}, which is skipped")


def _canonical_states(table: dict[str, Any]) -> dict[int, int]:
    """Lark's state number -> ours: breadth first from the start states, symbols by name."""
    tokens = {int(k): v for k, v in table["tokens"].items()}
    rows = {int(s): row for s, row in table["states"].items()}
    queue = deque(table["start_states"][name] for name in sorted(table["start_states"]))
    number: dict[int, int] = {}
    while queue:
        state = queue.popleft()
        if state in number:
            continue
        number[state] = len(number)
        for _, (action, arg) in sorted(rows[state].items(), key=lambda kv: tokens[int(kv[0])]):
            if action == 0 and arg not in number:
                queue.append(arg)
    if len(number) != len(rows):
        raise GrammarNotSupported("unreachable LALR states")
    return number


def tables(grammar: str) -> dict[str, Any]:
    """Everything `_tables.py` holds, computed from `grammar`."""
    analysis = lark_analysis(grammar)
    data, memo = analysis["data"], analysis["memo"]
    terminals = {
        t["name"]: t for t in (memo[str(ref["@"])] for ref in data["parser"]["lexer_conf"]
                               ["terminals"])
    }
    _check_lexing(data, terminals)
    rule_refs = [ref["@"] for ref in data["rules"]]
    rule_index = {ref: i for i, ref in enumerate(rule_refs)}
    rules = []
    for ref in rule_refs:
        rule = memo[str(ref)]
        options = rule["options"]
        if options["empty_indices"] or options["priority"] is not None:
            raise GrammarNotSupported(f"rule options of {rule['origin']['name']}")
        expansion = tuple(
            (sym["name"], sym["__type__"] == "Terminal", bool(sym.get("filter_out")))
            for sym in rule["expansion"]
        )
        rules.append(
            (
                rule["origin"]["name"],
                rule["alias"],
                expansion,
                bool(options["keep_all_tokens"]),
                bool(options["expand1"]),
            )
        )

    table = data["parser"]["parser"]
    tokens = {int(k): v for k, v in table["tokens"].items()}
    number = _canonical_states(table)
    actions: list[dict[str, int]] = [{} for _ in number]
    for state, row in table["states"].items():
        ours: dict[str, int] = {}
        for token, (action, arg) in sorted(row.items(), key=lambda kv: tokens[int(kv[0])]):
            ours[tokens[int(token)]] = number[arg] if action == 0 else ~rule_index[arg["@"]]
        actions[number[int(state)]] = ours

    root = _lexer(set(terminals), terminals)
    lexers: list[str] = []
    state_lexer: list[int] = []
    for row in actions:
        accepts = {name for name in row if name in terminals}
        lexer = _lexer(accepts, terminals)
        _check_restriction(lexer, root, accepts)
        if lexer.pattern not in lexers:
            lexers.append(lexer.pattern)
        state_lexer.append(lexers.index(lexer.pattern))

    return {
        "GRAMMAR_SHA256": hashlib.sha256(grammar.encode("utf-8")).hexdigest(),
        "LITERALS": {
            name: t["pattern"]["value"]
            for name, t in sorted(terminals.items())
            if t["pattern"]["__type__"] == "PatternStr"
        },
        "NEWLINE_TERMINALS": tuple(
            sorted(name for name, t in terminals.items() if _has_newline(_regexp(t)))
        ),
        "IGNORED": "(?:" + "|".join(IGNORED.values()) + ")+",
        "IGNORED_FIRST": IGNORED_FIRST,
        "START_STATES": {name: number[table["start_states"][name]] for name in STARTS},
        "END_STATES": {name: number[table["end_states"][name]] for name in STARTS},
        "RULES": tuple(rules),
        "ROOT_LEXER": root.pattern,
        "UNLESS": root.unless,
        "LEXERS": tuple(lexers),
        "STATE_LEXER": tuple(state_lexer),
        "ACTIONS": tuple(actions),
    }


_HEADER = '''\
"""The LALR(1) tables of `agentpolicy.lark`. Generated by scripts/gen_parser_tables.py: do not edit.

Read by the fast driver in `charter.language.parser`. Rerun the script after changing the
grammar; `tests/language/test_parser_tables.py` fails while this file is stale.

- RULES: rule number -> (origin, alias, symbols as (name, is terminal, filtered out),
  keep all tokens (`!rule`), expand a single child (`?rule`)).
- ACTIONS: state -> {symbol: n}; n >= 0 shifts (or goes to) state n, n < 0 reduces rule ~n.
- ROOT_LEXER: the regex of named groups over all terminals (ignored ones left out: the driver
  skips IGNORED itself); UNLESS: {regex terminal: {keyword: its terminal}}, the keywords read
  by a lookup after a regex match. A state's lexer is the root lexer restricted to the
  terminals the state accepts (keywords included): LEXERS holds each distinct one's regex,
  STATE_LEXER: state -> lexer.
"""

# ruff: noqa: E501
from typing import Final
'''

_TYPES = {
    "GRAMMAR_SHA256": "str",
    "LITERALS": "dict[str, str]",
    "NEWLINE_TERMINALS": "tuple[str, ...]",
    "IGNORED": "str",
    "IGNORED_FIRST": "str",
    "START_STATES": "dict[str, int]",
    "END_STATES": "dict[str, int]",
    "RULES": "tuple[tuple[str, str | None, tuple[tuple[str, bool, bool], ...], bool, bool], ...]",
    "ROOT_LEXER": "str",
    "UNLESS": "dict[str, dict[str, str]]",
    "LEXERS": "tuple[str, ...]",
    "STATE_LEXER": "tuple[int, ...]",
    "ACTIONS": "tuple[dict[str, int], ...]",
}


def render(values: dict[str, Any]) -> str:
    """The source of `_tables.py`: one line per rule, lexer and state."""
    out = [_HEADER]
    for name, value in values.items():
        head = f"{name}: Final[{_TYPES[name]}] = "
        if isinstance(value, dict) and name == "UNLESS":
            lines = [f"    {key!r}: {item!r}," for key, item in value.items()]
            out.append(head + "{\n" + "\n".join(lines) + "\n}\n")
        elif name in ("RULES", "LEXERS", "ACTIONS"):
            lines = [f"    {item!r}," for item in value]
            out.append(head + "(\n" + "\n".join(lines) + "\n)\n")
        else:
            out.append(head + repr(value) + "\n")
    return "\n".join(out)


def generate(grammar_path: Path = GRAMMAR) -> str:
    return render(tables(grammar_path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = generate()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        if text != current:
            stale = f"{OUTPUT.relative_to(ROOT)} is stale: run {Path(__file__).name}"
            print(stale, file=sys.stderr)
            return 1
        return 0
    if text != current:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
