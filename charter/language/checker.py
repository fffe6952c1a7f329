"""The checker: names, types, imports, regexes and matchers, over one or more modules.

`check()` never stops at the first problem: every diagnostic of every file is collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from charter.language import ast
from charter.language.checked import CheckedPolicy, FlatRule, ToolSig
from charter.language.constfold import NotConstant, fold
from charter.language.diagnostics import (
    BAD_LIMIT,
    CONFLICTING_HEADER,
    DECLARATION_IN_SCOPE,
    DECLARED_TWICE,
    DUPLICATE_ID,
    NOT_A_FIELD,
    NOT_CONSTANT,
    TOOLS_FROM_UNREADABLE,
    UNKNOWN_ANNOTATION,
    UNKNOWN_MODULE,
    UNKNOWN_TYPE,
    Code,
)
from charter.language.exprcheck import Env, ExprChecker, path_chain
from charter.language.source import Diagnostic, Source, Span
from charter.language.suggest import did_you_mean
from charter.language.targets import TargetReport, args_shape, reached, restricting
from charter.language.types import (
    ANY,
    PRIMS,
    ListT,
    MapT,
    Prim,
    SetT,
    Type,
)
from charter.stdlib.functions import STDLIB_MODULES

KNOWN_ANNOTATIONS = ("id", "owner", "shadow", "doc", "severity", "suppress")
DECLARATIONS = (ast.Header, ast.Use, ast.Default, ast.Option, ast.Const, ast.MatcherDecl,
                ast.ToolDecl, ast.ToolsFrom, ast.Test, ast.Property)
JSON_TYPES = {"string": "str", "integer": "int", "number": "decimal", "boolean": "bool",
              "array": "list<any>", "object": "map<str, any>"}


def check(modules: Sequence[ast.Module], sources: dict[str, Source]) -> tuple[
        CheckedPolicy, list[Diagnostic]]:
    """Check parsed modules that together form one policy."""
    return Checker(modules, sources).run()


class Checker:
    def __init__(self, modules: Sequence[ast.Module], sources: dict[str, Source]) -> None:
        self.diags: list[Diagnostic] = []
        self.p = CheckedPolicy(
            name="policy", version=None, default="deny", uses=frozenset(), consts={},
            matchers={}, tools={}, rules=[], tests=[], properties=[], modules=list(modules),
            sources=sources,
        )
        self.x = ExprChecker(self.p, self.diags.append)
        self._header: ast.Header | None = None
        self._default: ast.Default | None = None
        self._ids: dict[str, Span] = {}
        self._targets = TargetReport(self.p.tools)

    def run(self) -> tuple[CheckedPolicy, list[Diagnostic]]:
        for m in self.p.modules:
            self._declarations(m)
        for m in self.p.modules:
            self._rules(m.items, (), (), shadow=False, owner=None, top=True)
        self.diags.extend(self._targets.diagnostics())
        return self.p, self.diags

    def error(self, code: Code, span: Span, message: str, help: str | None = None) -> None:
        self.diags.append(code.at(span, message, help))

    warn = error  # the registry entry says which; the two names say it at the call site

    # ── declarations ─────────────────────────────────────────────────────────

    def _declarations(self, m: ast.Module) -> None:
        uses = set(self.p.uses)
        for item in m.items:
            if isinstance(item, ast.Use):
                for name, span in zip(item.modules, item.spans, strict=True):
                    if name not in STDLIB_MODULES:
                        self.error(UNKNOWN_MODULE, span, f"unknown stdlib module `{name}`",
                                   did_you_mean(name, STDLIB_MODULES))
                    uses.add(name)
        self.p.uses = frozenset(uses)
        for item in m.items:
            if isinstance(item, ast.Header):
                self._header_item(item)
            elif isinstance(item, ast.Default):
                self._default_item(item)
            elif isinstance(item, ast.Option):
                self.p.options.setdefault(item.name, item.span)
            elif isinstance(item, ast.Const):
                self._const(item)
            elif isinstance(item, ast.MatcherDecl):
                self._matcher(item)
            elif isinstance(item, ast.ToolDecl):
                self._tool(item)
            elif isinstance(item, ast.ToolsFrom):
                self._tools_from(item, m.file)
            elif isinstance(item, ast.Test):
                self.p.tests.append(item)
            elif isinstance(item, ast.Property):
                self.p.properties.append(item)

    def _header_item(self, h: ast.Header) -> None:
        if self._header is not None and self._header.name != h.name:
            self.error(CONFLICTING_HEADER, h.span, f'a second policy header "{h.name}"',
                       f'this policy is already named "{self._header.name}" at {self._header.span}')
            return
        self._header = h
        self.p.name, self.p.version = h.name, h.version

    def _default_item(self, d: ast.Default) -> None:
        if self._default is not None and self._default.effect != d.effect:
            self.error(CONFLICTING_HEADER, d.span, f"conflicting `default {d.effect}`",
                       f"`default {self._default.effect}` was set at {self._default.span}")
            return
        self._default = d
        self.p.default = d.effect

    def _duplicate(self, kind: str, name: str, span: Span) -> bool:
        taken = (name in self.p.consts or name in self.p.matchers) if kind != "tool" else (
            name in self.p.tools)
        if taken:
            self.error(DECLARED_TWICE, span, f"{kind} `{name}` is declared twice")
        return taken

    def _const(self, c: ast.Const) -> None:
        if self._duplicate("constant", c.name, c.name_span):
            return
        before = len(self.diags)
        self.x.infer(c.value, Env(args=ANY, stage=None, in_const=True))
        try:
            self.p.consts[c.name] = fold(c.value, self.p.consts)
        except NotConstant:
            if len(self.diags) > before:
                return  # the reason it is not constant is already reported
            self.error(NOT_CONSTANT, c.value.span, f"`{c.name}` is not a constant expression",
                       "a const holds literals, sets, lists and arithmetic on other consts")

    def _matcher(self, d: ast.MatcherDecl) -> None:
        if self._duplicate("matcher", d.name, d.name_span):
            return
        if d.name in ("pii", "secrets"):
            self.error(DECLARED_TWICE, d.name_span, f"`{d.name}` is a stdlib module name")
            return
        self.x.check_pattern(d.regex.pattern, d.regex.span)
        self.p.matchers[d.name] = d.regex.pattern

    def _tool(self, t: ast.ToolDecl) -> None:
        if self._duplicate("tool", t.name, t.name_span):
            return
        params: dict[str, tuple[Type, bool]] = {}
        for prm in t.params:
            if prm.name in params:
                self.error(DECLARED_TWICE, prm.span, f"parameter `{prm.name}` is declared twice")
            params[prm.name] = (self._type(prm.type), prm.optional)
        self.p.tools[t.name] = ToolSig(t.name, params, t.tags, t.span)

    def _type(self, te: ast.TypeExpr) -> Type:
        if te.name in PRIMS and not te.args:
            return Prim(te.name)
        if te.name in ("set", "list") and len(te.args) == 1:
            inner = self._type(te.args[0])
            return SetT(inner) if te.name == "set" else ListT(inner)
        if te.name == "map" and len(te.args) == 2:
            if te.args[0].name != "str":
                self.error(UNKNOWN_TYPE, te.args[0].span, "map keys are always `str`")
            return MapT(self._type(te.args[1]))
        self.error(UNKNOWN_TYPE, te.span, f"unknown type `{te.name}`",
                   did_you_mean(te.name, (*PRIMS, "set", "list", "map")))
        return ANY

    def _tools_from(self, t: ast.ToolsFrom, file: str) -> None:
        path = Path(file).parent / t.path
        try:
            import json  # only for `tools from`: not paid by every compile

            data = json.loads(path.read_text())
            tools = data["tools"] if isinstance(data, dict) and "tools" in data else data
            for entry in tools:
                self._tool_from_schema(entry, t.span)
        except (OSError, ValueError, KeyError, TypeError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            self.error(TOOLS_FROM_UNREADABLE, t.span,
                       f'cannot read MCP tools from "{path}": {why[:1].lower()}{why[1:]}',
                       'expected the JSON result of MCP `tools/list`: {"tools": [...]}')

    def _tool_from_schema(self, entry: dict[str, object], span: Span) -> None:
        name = str(entry["name"])
        schema = entry.get("inputSchema") or {}
        assert isinstance(schema, dict)
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        params: dict[str, tuple[Type, bool]] = {}
        for pname, pschema in props.items():
            jtype = pschema.get("type", "any") if isinstance(pschema, dict) else "any"
            from charter.language.types import parse_type_string
            ptype = parse_type_string(JSON_TYPES.get(str(jtype), "any"))
            params[pname] = (ptype, pname not in required)
        annotations = entry.get("annotations")
        # the file is the author's own choice: its annotations are trusted (docs/mcp.md)
        from charter.stdlib.mcp_tools import annotation_tags

        hints = annotations if isinstance(annotations, dict) else None
        tags = ["mcp", *annotation_tags(hints, trusted=True)]
        if name not in self.p.tools:
            self.p.tools[name] = ToolSig(name, params, tuple(tags), span)

    # ── rules and scopes ─────────────────────────────────────────────────────

    def _rules(
        self, items: Sequence[ast.Item], targets: tuple[ast.ToolTarget, ...],
        conds: tuple[ast.Condition, ...], shadow: bool, owner: str | None, top: bool,
    ) -> None:
        for item in items:
            if isinstance(item, ast.Scope):
                self._scope(item, targets, conds, shadow, owner)
            elif isinstance(item, ast.Rule | ast.Budget | ast.Limit):
                self._rule_like(item, targets, conds, shadow, owner)
            elif not top and isinstance(item, DECLARATIONS):
                self.error(DECLARATION_IN_SCOPE, item.span,
                           "declarations belong at the top level, not inside a scope")

    def _scope(self, s: ast.Scope, targets: tuple[ast.ToolTarget, ...],
               conds: tuple[ast.Condition, ...], shadow: bool, owner: str | None) -> None:
        ann = self._annotations(s.annotations, allow_id=False)
        new_targets = targets + ((s.target,) if s.target else ())
        new_conds = conds
        if s.condition is not None:
            env = self._env(new_targets, None)
            self.x.condition(s.condition, env)
            new_conds = conds + (ast.Condition(False, s.condition, s.condition.span),)
        self._rules(s.items, new_targets, new_conds, shadow or "shadow" in ann,
                    ann.get("owner") or owner, top=False)

    def _rule_like(self, r: ast.Rule | ast.Budget | ast.Limit,
                   targets: tuple[ast.ToolTarget, ...], conds: tuple[ast.Condition, ...],
                   shadow: bool, owner: str | None) -> None:
        ann = self._annotations(r.annotations, allow_id=True)
        own_target = r.target if isinstance(r, ast.Rule | ast.Limit) else None
        all_targets = targets + ((own_target,) if own_target else ())
        for t in all_targets:  # a scope's target is checked with each rule it governs
            self._targets.target(t, restricting(r))
        stage = (r.stage if isinstance(r, ast.Rule) else None) or "tool_call"
        env = self._env(all_targets, stage)
        own_conds: tuple[ast.Condition, ...] = ()
        if isinstance(r, ast.Rule):
            own_conds = r.conditions
            for c in r.conditions:
                self.x.condition(c.expr, env)
            self._effect(r.effect, env)
        else:
            self._budget_like(r, env)
        rule_id = ann.get("id")
        self.p.rules.append(FlatRule(
            item=r, targets=all_targets, conditions=conds + own_conds,
            shadow=shadow or "shadow" in ann, owner=ann.get("owner") or owner,
            id=rule_id,
        ))

    def _budget_like(self, r: ast.Budget | ast.Limit, env: Env) -> None:
        if r.limit < 0:
            self.error(BAD_LIMIT, r.span, "a limit must not be negative")
        if r.key is not None:
            chain = path_chain(r.key)
            if chain is None:
                self.error(NOT_A_FIELD, r.key.span, "`per` takes a request field such as agent.id")
            else:
                self.x.infer(r.key, env)
        if r.then is not None:
            if r.then.kind in ("allow", "redact", "label"):
                self.error(BAD_LIMIT, r.then.span,
                           f"`then {r.then.kind}` cannot enforce a limit",
                           "use `then deny`, `then warn` or `then require approval from \"g\"`")
            self._effect(r.then, env)

    def _effect(self, eff: ast.Effect, env: Env) -> None:
        if eff.kind == "redact":
            for m in eff.matchers:
                self.x.matcher_operand(m, env)
            if eff.path is not None:
                chain = path_chain(eff.path)
                if chain is None or chain[0] not in ("args", "result", "input", "output"):
                    self.error(NOT_A_FIELD, eff.path.span,
                               "`redact ... in` takes args, result, input or output (or a field)")
                else:
                    self.x.infer(eff.path, env)

    def _env(self, targets: tuple[ast.ToolTarget, ...], stage: str | None) -> Env:
        """`args` typed by every declared tool the targets reach (untyped if they reach
        none, or the rule has no target: then any tool's call can reach it)."""
        shape = args_shape(reached(targets, self.p.tools)) if targets else None
        if shape is None:
            return Env(args=MapT(ANY), stage=stage)
        return Env(args=shape.type, stage=stage, args_owner=shape.owner)

    def _annotations(self, anns: Sequence[ast.Annotation], allow_id: bool) -> dict[str, str]:
        out: dict[str, str] = {}
        for a in anns:
            if a.name not in KNOWN_ANNOTATIONS:
                self.warn(UNKNOWN_ANNOTATION, a.span, f"unknown annotation `@{a.name}`",
                          did_you_mean(f"@{a.name}", [f"@{k}" for k in KNOWN_ANNOTATIONS]))
            if a.name == "id":
                if not allow_id or not a.arg:
                    self.error(DUPLICATE_ID, a.span, "`@id(\"...\")` names one rule")
                elif a.arg in self._ids:
                    self.error(DUPLICATE_ID, a.span, f'duplicate rule id "{a.arg}"',
                               f"first used at {self._ids[a.arg]}")
                else:
                    self._ids[a.arg] = a.span
            out[a.name] = a.arg or ""
        return out

