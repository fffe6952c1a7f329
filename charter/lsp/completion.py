"""Completion: fields after `args.`/`agent.`/..., tool names inside `tool "`, and names.

While the user types, the item under the cursor usually does not parse (the parser drops it
and keeps the rest), so the context is read from the text around the cursor; declarations
come from the rest of the policy, which still compiles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charter.language.checked import CheckedPolicy
from charter.language.context import ROOTS
from charter.language.fmt_comments import find_code
from charter.language.keywords import KEYWORDS
from charter.language.lexicon import ITEM_KEYWORDS
from charter.language.types import RecordT
from charter.stdlib.functions import FUNCTIONS
from charter.stdlib.matchers import GROUPS, MODULES

_FIELD = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.(\w*)\Z")
_TOOL_STRING = re.compile(r'(?:\b(?:tool|call)\s+|\btool\s+(?:"[^"\n]*"\s*,\s*)+)"([^"\n]*)\Z')
_TARGET = re.compile(r'\btool\s+("[^"\n]*"(?:\s*,\s*"[^"\n]*")*)')
_WORD = re.compile(r"\w*\Z")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One completion: the text, what kind of thing it is, a detail line, and how many
    characters before the cursor it replaces."""

    label: str
    kind: str  # "field" | "tool" | "matcher" | "function" | "constant" | "keyword" | "variable"
    detail: str
    replace: int


def complete(text: str, offset: int, checked: CheckedPolicy | None) -> list[Suggestion]:
    """Suggestions for the cursor at `offset` of `text`."""
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    if (m := _TOOL_STRING.search(before)) is not None:
        tools = sorted(checked.tools) if checked else []
        return [Suggestion(t, "tool", _tool_detail(checked, t), len(m.group(1))) for t in tools]
    if _in_string(before):
        return []
    if (m := _FIELD.search(before)) is not None:
        return _fields(text, line_start, offset, m.group(1), len(m.group(2)), checked)
    return _names(len(_WORD.search(before).group()), checked)  # type: ignore[union-attr]


def _in_string(before: str) -> bool:
    return len(re.findall(r'(?<!\\)"', before.split("#", 1)[0])) % 2 == 1


def _tool_detail(checked: CheckedPolicy | None, name: str) -> str:
    if checked is None or name not in checked.tools:
        return ""
    sig = checked.tools[name]
    params = ", ".join(f"{p}{'?' if o else ''}: {t}" for p, (t, o) in sig.params.items())
    return f"({params})"


def _fields(
    text: str, line_start: int, offset: int, root: str, typed: int,
    checked: CheckedPolicy | None,
) -> list[Suggestion]:
    if root == "args":
        fields = _args_fields(text, line_start, offset, checked)
        return [Suggestion(n, "field", d, typed) for n, d in fields]
    if root in MODULES:
        names = [(n, s.doc.split("\n")[0]) for n, s in sorted(MODULES[root].items())]
        if f"{root}.any" in GROUPS:
            names.append(("any", f"any {root} matcher"))
        return [Suggestion(n, "matcher", d, typed) for n, d in names]
    typ = ROOTS.get(root)
    if isinstance(typ, RecordT):
        return [
            Suggestion(n, "field", str(f.type), typed) for n, f in typ.fields.items()
        ]
    return []


def _args_fields(
    text: str, line_start: int, offset: int, checked: CheckedPolicy | None
) -> list[tuple[str, str]]:
    """The parameters of the tool the rule around the cursor targets (or its scope's)."""
    if checked is None:
        return []
    item_start = _item_start(text, line_start)
    names = _target_names(text[item_start:offset])
    if names is None:
        names = _scope_target(text, item_start)
    if not names or any(n not in checked.tools for n in names):
        return []
    sigs = [checked.tools[n] for n in names]
    common = [p for p in sigs[0].params if all(p in s.params for s in sigs)]
    return [
        (p, f"{t}{' (optional)' if o else ''}")
        for p in common
        for t, o in [sigs[0].params[p]]
    ]


def _item_start(text: str, line_start: int) -> int:
    """The start of the line that begins the item containing the line at `line_start`."""
    pos = line_start
    while True:
        end = text.find("\n", pos)
        words = text[pos : len(text) if end < 0 else end].split()
        first = words[0] if words else ""
        if first.startswith("@") or first in ITEM_KEYWORDS or pos == 0:
            return pos
        pos = text.rfind("\n", 0, pos - 1) + 1


def _target_names(item: str) -> list[str] | None:
    m = _TARGET.search(item)
    if m is None:
        return None
    return re.findall(r'"([^"\n]*)"', m.group(1))


def _scope_target(text: str, before: int) -> list[str] | None:
    """The tool names of the innermost enclosing `scope tool "..." {` with a target."""
    opens: list[int] = []
    pos = 0
    while True:
        brace_open = find_code(text, pos, before, "{")
        brace_close = find_code(text, pos, before, "}")
        if brace_open < 0 and brace_close < 0:
            break
        if brace_close < 0 or 0 <= brace_open < brace_close:
            opens.append(brace_open)
            pos = brace_open + 1
        else:
            if opens:
                opens.pop()
            pos = brace_close + 1
    for brace in reversed(opens):
        head_start = text.rfind("scope", 0, brace)
        if head_start < 0:
            continue
        names = _target_names(text[head_start:brace])
        if names:
            return names
    return None


def _names(typed: int, checked: CheckedPolicy | None) -> list[Suggestion]:
    out = [Suggestion(k, "keyword", "", typed) for k in sorted(KEYWORDS)]
    out += [Suggestion(r, "variable", str(t), typed) for r, t in ROOTS.items()]
    out.append(Suggestion("args", "variable", "the tool call's arguments", typed))
    out += [
        Suggestion(f.name, "function", f"{f.name}({', '.join(f.params)}) -> {f.returns}", typed)
        for f in FUNCTIONS.values()
    ]
    out += [Suggestion(m, "variable", "stdlib matchers", typed) for m in MODULES]
    if checked is not None:
        out += [Suggestion(c, "constant", "const", typed) for c in sorted(checked.consts)]
        out += [Suggestion(m, "matcher", "matcher", typed) for m in sorted(checked.matchers)]
    return out
