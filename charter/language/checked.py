"""The checker's output: a policy whose names and types are resolved."""

from __future__ import annotations

import msgspec

from charter.language import ast
from charter.language.source import Source, Span
from charter.language.types import Type


class ConstRef(msgspec.Struct, frozen=True):
    value: object


class MatcherRef(msgspec.Struct, frozen=True):
    names: tuple[str, ...]  # qualified, groups expanded


class PathRef(msgspec.Struct, frozen=True):
    root: str
    keys: tuple[str, ...]
    type: Type


Ref = ConstRef | MatcherRef | PathRef


class ToolSig(msgspec.Struct, frozen=True):
    name: str
    params: dict[str, tuple[Type, bool]]  # name -> (type, optional)
    tags: tuple[str, ...]
    span: Span


class FlatRule(msgspec.Struct, frozen=True):
    """A rule, budget or limit with its enclosing scopes' targets and conditions folded in."""

    item: ast.Rule | ast.Budget | ast.Limit
    targets: tuple[ast.ToolTarget, ...]
    conditions: tuple[ast.Condition, ...]
    shadow: bool
    owner: str | None
    id: str | None


class CheckedPolicy(msgspec.Struct):
    """Everything later stages need: declarations, flattened rules, and resolution tables
    keyed by `id()` of AST expression nodes (the AST is kept alive alongside)."""

    name: str
    version: str | None
    default: str
    uses: frozenset[str]
    consts: dict[str, object]
    matchers: dict[str, str]  # user matcher name -> RE2 pattern
    tools: dict[str, ToolSig]
    rules: list[FlatRule]
    tests: list[ast.Test]
    properties: list[ast.Property]
    modules: list[ast.Module]
    sources: dict[str, Source]
    types: dict[int, Type] = msgspec.field(default_factory=dict)
    refs: dict[int, Ref] = msgspec.field(default_factory=dict)
    #: "strict args", "trust request tags"
    options: dict[str, Span] = msgspec.field(default_factory=dict)
