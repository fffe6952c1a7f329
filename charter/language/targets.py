"""Which declared tools a rule's targets reach, and what that makes of `args`.

A restricting rule (`deny`, `require approval`, `redact`, a limit, ...) whose target names a
tool that is not declared never fires on the call its author meant to restrict: a misspelt
`deny tool "fs.wirte"` lets every write through while `charter check` stays green. So when a
policy declares its tools, the checker resolves each target against the declarations:

- an exact name no declaration has is an error in a restricting rule (CH0224) and a warning
  in an `allow` (W0301), both with a did-you-mean;
- a glob that reaches no declared tool is a warning (W0303) with a suggestion; so is a tag no
  declared tool carries when a declared tag is close to it (W0304) -- other tags are taken to
  be ones hosts send in `tool.tags`, as MCP servers do;
- `args` of a rule reaching several declared tools is checked against all of them: a field
  that none of them has is an error (CH0202).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from charter.language import ast
from charter.language.checked import ToolSig
from charter.language.diagnostics import (
    GLOB_MATCHES_NOTHING,
    UNDECLARED_TOOL,
    UNDECLARED_TOOL_RESTRICTED,
    UNKNOWN_TAG,
)
from charter.language.source import Diagnostic, Span
from charter.language.suggest import closest, did_you_mean
from charter.language.types import ANY, FieldT, RecordT, Type
from charter.stdlib.globs import name_matches

#: shown in messages; more tools than this are summarised as "and N more"
_NAMED = 3


def restricting(item: ast.Rule | ast.Budget | ast.Limit) -> bool:
    """Whether a rule takes something away (only `allow` grants)."""
    return not (isinstance(item, ast.Rule) and item.effect.kind == "allow")


def reaches(target: ast.ToolTarget, tool: ToolSig) -> bool:
    """Whether a target matches a declared tool (by name, glob or declared tag)."""
    if target.tag is not None:
        return target.tag in tool.tags
    return any(name_matches(n, tool.name) for n in target.names)


def reached(targets: Sequence[ast.ToolTarget], tools: Mapping[str, ToolSig]) -> list[ToolSig]:
    """The declared tools that every target matches (a rule's targets must all match)."""
    first, rest = targets[0], targets[1:]
    return [t for t in _candidates(first, tools) if all(reaches(g, t) for g in rest)]


def _candidates(target: ast.ToolTarget, tools: Mapping[str, ToolSig]) -> list[ToolSig]:
    # Exact names are dict lookups: scanning every declaration for every rule made checking
    # a policy quadratic in its size (10,000 rules took 80 s to check).
    if target.tag is None and not any("*" in n for n in target.names):
        return [tools[n] for n in dict.fromkeys(target.names) if n in tools]
    return [t for t in tools.values() if reaches(target, t)]


class ArgsShape(msgspec.Struct, frozen=True):
    """The type of `args` in a rule, and the words naming whose parameters they are."""

    type: Type
    owner: str | None  # e.g. 'tool "fs.write"' or 'tools "fs.write" and "fs.edit"'


def args_shape(sigs: Sequence[ToolSig]) -> ArgsShape | None:
    """`args` as the union of the reached tools' parameters (None: nothing to check against).

    A parameter that only some of the tools have is optional; one whose type differs between
    them is `any`, so the check never rejects what one of the tools accepts."""
    if not sigs:
        return None
    if len(sigs) == 1:
        sig = sigs[0]
        fields = {n: FieldT(t, opt) for n, (t, opt) in sig.params.items()}
        return ArgsShape(RecordT(f'args of "{sig.name}"', fields), f'tool "{sig.name}"')
    types: dict[str, list[Type]] = {}
    for sig in sigs:
        for name, (t, _) in sig.params.items():
            types.setdefault(name, []).append(t)
    union = {
        name: FieldT(ts[0] if all(t == ts[0] for t in ts) else ANY, len(ts) < len(sigs))
        for name, ts in types.items()
    }
    names = _names([s.name for s in sigs])
    return ArgsShape(RecordT(f"args of tools {names}", union), f"tools {names}")


def _names(names: Sequence[str]) -> str:
    quoted = [f'"{n}"' for n in names[:_NAMED]]
    if len(names) > _NAMED:
        return ", ".join(quoted) + f" and {len(names) - _NAMED} more"
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


class TargetReport:
    """Diagnostics about targets, one per (target, name): a target shared by the rules of a
    scope is reported once, as an error if any of those rules restricts."""

    def __init__(self, tools: Mapping[str, ToolSig]) -> None:
        self.tools = tools
        self._found: dict[tuple[str, int, str], Diagnostic] = {}

    def target(self, t: ast.ToolTarget, restricts: bool) -> None:
        if not self.tools:
            return  # nothing declared: targets cannot be resolved
        if t.tag is not None:
            self._tag(t.tag, t.span)
        for name in t.names:
            if "*" in name:
                self._glob(name, t.span)
            elif name not in self.tools:
                self._undeclared(name, t.span, restricts)

    def diagnostics(self) -> list[Diagnostic]:
        return list(self._found.values())

    def _add(self, name: str, diag: Diagnostic) -> None:
        key = (diag.span.file, diag.span.start, name)
        old = self._found.get(key)
        if old is None or (old.severity == "warning" and diag.severity == "error"):
            self._found[key] = diag

    def _undeclared(self, name: str, span: Span, restricts: bool) -> None:
        hint = did_you_mean(name, self.tools, '"')
        if restricts:
            self._add(name, UNDECLARED_TOOL_RESTRICTED.at(
                span, f'tool "{name}" is not declared, so this rule restricts nothing', hint
                or "declare the tool with `tool \"...\" (...)`, or fix the name"))
        else:
            self._add(name, UNDECLARED_TOOL.at(span, f'tool "{name}" is not declared', hint))

    def _glob(self, pattern: str, span: Span) -> None:
        if any(name_matches(pattern, n) for n in self.tools):
            return
        self._add(pattern, GLOB_MATCHES_NOTHING.at(
            span, f'"{pattern}" matches no declared tool', _glob_help(pattern, self.tools)))

    def _tag(self, tag: str, span: Span) -> None:
        declared = {g for t in self.tools.values() for g in t.tags}
        if tag in declared:
            return
        hint = did_you_mean(tag, declared)
        if hint is None:
            return  # a tag hosts send in `tool.tags` (MCP servers do), not a typo
        self._add("#" + tag, UNKNOWN_TAG.at(
            span, f"no declared tool is tagged `{tag}`",
            f"{hint} (a tag no declaration has matches only calls whose request carries it "
            "in `tool.tags`)"))


def _glob_help(pattern: str, tools: Iterable[str]) -> str | None:
    """A glob close to `pattern` that does match, or the closest declared name."""
    names = list(tools)
    fixes = []
    if pattern.endswith("*") and not pattern.endswith((".*", "**")):
        fixes += [pattern[:-1] + ".*", pattern[:-1] + ".**"]
    fixes.append(pattern.replace("**", "*").replace("*", "**"))
    for fix in fixes:
        if fix != pattern and any(name_matches(fix, n) for n in names):
            return f'did you mean "{fix}"? (`*` stays within one dot-separated part, `**` ' \
                   "crosses dots)"
    best = closest(pattern.replace("*", ""), names)
    return f'did you mean "{best}"?' if best else None
