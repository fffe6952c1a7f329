"""One vocabulary, four places: the Lark grammar, keywords.py, the TextMate grammar and Vim.

`charter.language.keywords` is the reference list. These tests fail when the Lark grammar gains
a keyword no highlighter knows, or when an editor file drifts from the reference list.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pygments.token import Keyword, Name, Operator, _TokenType

from charter.language import keywords as K
from charter.language.pygments_lexer import AgentPolicyLexer

ROOT = Path(__file__).resolve().parents[2]
LARK = ROOT / "charter" / "grammar" / "agentpolicy.lark"
TEXTMATE = ROOT / "editors" / "vscode" / "syntaxes" / "agentpolicy.tmLanguage.json"
VIM_SYNTAX = ROOT / "editors" / "vim" / "syntax" / "agentpolicy.vim"

# The keyword list of DESIGN.md §1.2/§1.5/§1.9, as written there; used even without a grammar.
_DESIGN_TEXT = """
policy version use default allow deny warn const matcher tool tools from tags scope budget
limit calls per session then because when unless on tool_call tool_result model_input
model_output require approval redact in label tagged test given call with result expect
property for all to where and or not like matches contains has count approved by previously
within true false
bool int decimal str time duration any set list map
len lower upper startswith endswith url_host domain_of cidr_contains hour_of weekday
cost_usd tokens pii secrets net text
"""
DESIGN_KEYWORDS = _DESIGN_TEXT.split()

# Which TextMate repository entry and which Vim groups hold each keywords.py group.
TEXTMATE_KEYS = {
    "KEYWORDS": "keywords",
    "OPERATORS": "operators",
    "EFFECTS": "effects",
    "STAGES": "stages",
    "TYPES": "types",
    "FUNCTIONS": "functions",
    "CONSTANTS": "constants",
    "METRICS": "metrics",
    "MODULES": "modules",
}
VIM_GROUPS = {
    "KEYWORDS": {"agentpolicyKeyword", "agentpolicyImport", "agentpolicyDefine"},
    "OPERATORS": {"agentpolicyOperatorWord"},
    "EFFECTS": {"agentpolicyEffect"},
    "STAGES": {"agentpolicyStage"},
    "TYPES": {"agentpolicyType"},
    "FUNCTIONS": {"agentpolicyFunction"},
    "CONSTANTS": {"agentpolicyBoolean"},
    "METRICS": {"agentpolicyMetric"},
    "MODULES": {"agentpolicyModule"},
}
PYGMENTS_TOKENS: dict[str, set[_TokenType]] = {
    "KEYWORDS": {Keyword, Keyword.Namespace, Keyword.Declaration},
    "OPERATORS": {Operator.Word},
    "EFFECTS": {Keyword.Reserved},
    "STAGES": {Name.Constant},
    "TYPES": {Keyword.Type},
    "FUNCTIONS": {Name.Builtin},
    "CONSTANTS": {Keyword.Constant},
    "METRICS": {Keyword.Pseudo},
    "MODULES": {Name.Namespace},
}


def grammar_keywords(text: str) -> set[str]:
    """The alphabetic string literals of a Lark grammar, i.e. its keywords.

    Comments are dropped first: they quote source snippets such as `tool "name" (`.
    """
    code = re.sub(r"//[^\n]*", "", text)
    return set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', code))


def textmate_words(entry: str) -> set[str]:
    """Words listed in the `\\b(?:a|b|c)\\b` alternations of one TextMate repository entry."""
    grammar = json.loads(TEXTMATE.read_text())
    found: set[str] = set()
    for pattern in grammar["repository"][entry]["patterns"]:
        match = pattern.get("match", "")
        re.compile(match)  # the alternations must also be valid Python/Oniguruma-common syntax
        for alternation in re.findall(r"\\b\(\?:([A-Za-z0-9_|]+)\)", match):
            found.update(alternation.split("|"))
    return found


def vim_words() -> dict[str, set[str]]:
    """Vim syntax group -> words it defines via `syn keyword` or `\\<word\\>` matches."""
    groups: dict[str, set[str]] = {}
    for line in VIM_SYNTAX.read_text().splitlines():
        keyword = re.match(r"\s*syn(?:tax)?\s+keyword\s+(\w+)\s+(.*)$", line)
        if keyword:
            words = [w for w in keyword.group(2).split() if "=" not in w]
            words = [w for w in words if w not in {"skipwhite", "skipnl", "skipempty", "contained"}]
            groups.setdefault(keyword.group(1), set()).update(words)
            continue
        match = re.match(r'\s*syn(?:tax)?\s+match\s+(\w+)\s+"(.*?)"', line)
        if match:
            pattern = match.group(2)
            for alternation in re.findall(r"\\<\\%\(((?:\w+\\\|)*\w+)\\\)", pattern):
                groups.setdefault(match.group(1), set()).update(alternation.split("\\|"))
            for word in re.findall(r"\\<(\w+)(?:\\>|\\ze)", pattern):
                groups.setdefault(match.group(1), set()).add(word)
    return groups


def test_keyword_groups_are_disjoint_where_it_matters() -> None:
    # A word in two groups would be coloured by whichever rule comes first; only the documented
    # double readings are allowed.
    seen: dict[str, str] = {}
    overlaps = set()
    for name, words in K.GROUPS.items():
        assert len(words) == len(set(words)), f"{name} lists a word twice"
        for word in words:
            if word in seen:
                overlaps.add((word, seen[word], name))
            seen[word] = name
    assert overlaps == {("time", "TYPES", "MODULES")}


def test_design_keywords_are_all_known() -> None:
    missing = set(DESIGN_KEYWORDS) - K.ALL_WORDS
    assert not missing, f"keywords.py lacks DESIGN keywords: {sorted(missing)}"


def test_grammar_keywords_are_all_known() -> None:
    if not LARK.exists():
        pytest.skip(f"{LARK} not written yet; checked against the DESIGN list only")
    found = grammar_keywords(LARK.read_text())
    assert {"policy", "deny", "because"} <= found, "keyword extraction from the grammar broke"
    missing = found - K.ALL_WORDS - set(K.CONTEXT_ROOTS)
    assert not missing, (
        f"the grammar has keywords no highlighter knows: {sorted(missing)}; "
        "add them to charter/language/keywords.py and the editor files"
    )


def test_grammar_keyword_extraction_ignores_comments() -> None:
    text = '// `tool "name" (` is special\nheader: "policy" STRING ("version" STRING)?\n'
    assert grammar_keywords(text) == {"policy", "version"}


@pytest.mark.parametrize("group", sorted(K.GROUPS))
def test_textmate_grammar_matches_keyword_list(group: str) -> None:
    assert textmate_words(TEXTMATE_KEYS[group]) == set(K.GROUPS[group])


def test_textmate_keyword_scopes() -> None:
    grammar = json.loads(TEXTMATE.read_text())
    scopes = {
        entry: {p.get("name") for p in grammar["repository"][entry]["patterns"]}
        for entry in TEXTMATE_KEYS.values()
    }
    assert scopes["keywords"] == {"keyword.control.agentpolicy"}
    assert scopes["operators"] >= {"keyword.operator.word.agentpolicy"}
    assert scopes["effects"] == {"keyword.other.effect.agentpolicy"}
    assert scopes["types"] == {"support.type.primitive.agentpolicy"}
    assert scopes["functions"] == {"support.function.builtin.agentpolicy"}
    assert scopes["constants"] == {"constant.language.boolean.agentpolicy"}


@pytest.mark.parametrize("group", sorted(K.GROUPS))
def test_vim_syntax_matches_keyword_list(group: str) -> None:
    defined = vim_words()
    in_groups = set().union(*(defined.get(g, set()) for g in VIM_GROUPS[group]))
    assert in_groups == set(K.GROUPS[group])


@pytest.mark.parametrize(
    ("group", "word"), [(g, w) for g, words in sorted(K.GROUPS.items()) for w in words]
)
def test_pygments_knows_every_word(group: str, word: str) -> None:
    # Modules are only modules before a member access (`time` alone is the type).
    text = f"{word}.x\n" if group == "MODULES" else f"{word}\n"
    tokens = list(AgentPolicyLexer().get_tokens(text))
    assert tokens[0][1] == word
    assert tokens[0][0] in PYGMENTS_TOKENS[group], f"{word!r} lexed as {tokens[0][0]}"
