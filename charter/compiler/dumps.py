"""Each pipeline stage's value as readable text (`charter compile POLICY --dump STAGE`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from charter.compiler.emit import reachable
from charter.engine import ir
from charter.engine.render import render_code, render_expr, render_value
from charter.engine.tree import BucketCode
from charter.language import ast
from charter.language.source import Span

if TYPE_CHECKING:
    from charter.compiler.pipeline import Compilation


def dump_ast(comp: Compilation) -> str:
    """Every module's syntax tree: one node per line, fields indented under it."""
    lines: list[str] = []
    for module in comp.modules:
        lines.append(f"Module {module.file}")
        for item in module.items:
            lines.extend(_node(item, 1, ""))
    return "\n".join(lines)


def _node(value: object, depth: int, label: str) -> Iterator[str]:
    pad = "  " * depth
    if isinstance(value, tuple):
        if not value:
            return
        for i, item in enumerate(value):
            yield from _node(item, depth, f"{label}[{i}]")
        return
    if not isinstance(value, ast.Node):
        yield f"{pad}{label} = {value!r}"
        return
    fields = list(ast.fields(value))
    span = next((v for n, v in fields if n == "span"), None)
    where = f"  @{span.line}:{span.col}" if isinstance(span, Span) else ""
    scalars = [f"{n}={v!r}" for n, v in fields if _scalar(v) and n != "span"]
    head = f"{label}: " if label else ""
    yield f"{pad}{head}{type(value).__name__}({', '.join(scalars)}){where}"
    for name, field in fields:
        if not _scalar(field) and not isinstance(field, Span):
            yield from _node(field, depth + 1, name)


def _scalar(v: object) -> bool:
    if isinstance(v, tuple):
        return all(_scalar(x) for x in v)
    return not isinstance(v, ast.Node | Span)


def dump_checked(comp: Compilation) -> str:
    """A summary of the checked policy: declarations, the flattened rules, the tables."""
    p = comp.checked
    if p is None:
        return "(not checked)"
    lines = [f"policy {p.name!r} version {p.version!r}, default {p.default}"]
    if p.uses:
        lines.append(f"uses: {', '.join(sorted(p.uses))}")
    if p.options:
        lines.append(f"options: {', '.join(sorted(p.options))}")
    lines.append(f"consts ({len(p.consts)}):")
    lines += [f"  {name} = {render_value(value)}" for name, value in p.consts.items()]
    lines.append(f"matchers ({len(p.matchers)}):")
    lines += [f"  {name} = r\"{pattern}\"" for name, pattern in p.matchers.items()]
    lines.append(f"tools ({len(p.tools)}):")
    for sig in p.tools.values():
        params = ", ".join(f"{n}{'?' if opt else ''}: {t}" for n, (t, opt) in sig.params.items())
        tags = f" tagged {', '.join(sig.tags)}" if sig.tags else ""
        lines.append(f"  {sig.name}({params}){tags}")
    lines.append(f"rules ({len(p.rules)}, scopes flattened):")
    for flat in p.rules:
        item = flat.item
        kind = getattr(getattr(item, "effect", None), "kind", type(item).__name__.lower())
        targets = "; ".join(f"tagged {t.tag}" if t.tag else ", ".join(t.names)
                            for t in flat.targets) or "any call"
        extra = "".join([" [shadow]" if flat.shadow else "",
                         f" owner {flat.owner}" if flat.owner else ""])
        lines.append(f"  {flat.id or '-'}: {kind} on {targets}, "
                     f"{len(flat.conditions)} condition(s){extra}  "
                     f"({item.span.file}:{item.span.line})")
    lines.append(f"tests: {len(p.tests)}, properties: {len(p.properties)}")
    lines.append(f"resolved: {len(p.types)} expression types, {len(p.refs)} references")
    return "\n".join(lines)


def dump_ir(comp: Compilation) -> str:
    """The lowered IR: policy header, declarations, counters, then every rule."""
    policy = comp.lowered
    if policy is None:
        return "(not lowered)"
    return _policy(policy)


def _policy(policy: ir.Policy) -> str:
    lines = [f"policy {policy.name!r} version {policy.version!r}, default {policy.default}, "
             f"digest {policy.digest}"
             + (", trust request tags" if policy.trust_request_tags else "")]
    lines.append(f"tools ({len(policy.tools)}):")
    for tool in policy.tools.values():
        params = ", ".join(f"{n}{'?' if opt else ''}: {check}" for n, check, opt in tool.params)
        tags = f" tagged {', '.join(tool.tags)}" if tool.tags else ""
        lines.append(f"  {tool.name}({params}){tags}")
    if policy.matchers:
        lines.append(f"matchers ({len(policy.matchers)}):")
        lines += [f"  {m.name} = r\"{m.pattern}\" -> {m.placeholder}"
                  for m in policy.matchers.values()]
    if policy.counters:
        lines.append(f"counters ({len(policy.counters)}):")
        for c in policy.counters:
            key = render_expr(c.key) if c.key is not None else "session.id"
            window = f"{c.window}s" if c.window is not None else "session"
            total = " (the session's running total)" if c.session_total else ""
            scope = f", counting when {render_expr(c.scope)}" if c.scope is not None else ""
            lines.append(f"  {c.id}: {c.metric} <= {c.limit} per {window} by {key}{total}, "
                         f"{c.stage}, enforced by rule #{c.rule}{scope}")
    if policy.history:
        lines.append("history kept: " + "; ".join(
            f"{tool} ({', '.join(fields) or 'no fields'})" for tool, fields in
            policy.history.items()))
    lines.append(f"rules ({len(policy.rules)}):")
    for rule in policy.rules:
        lines.extend(_rule(rule))
    return "\n".join(lines)


def _rule(rule: ir.Rule) -> list[str]:
    targets = " and ".join(f"tagged {t.tag}" if t.tag else ", ".join(t.names)
                           for t in rule.targets) or "any call"
    effect: str = rule.kind
    if rule.groups:
        effect += f" from {', '.join(rule.groups)}"
    if rule.label:
        effect += f" {rule.label!r}"
    if rule.redact:
        where = f" in {rule.redact_path.text}" if rule.redact_path else ""
        effect += f" {', '.join(rule.redact)}{where}"
    flags = "".join([" [shadow]" if rule.shadow else "",
                     f" [{rule.origin}]" if rule.origin != "rule" else ""])
    out = [f"  #{rule.index} {rule.id}: {effect} {rule.stage} {targets}{flags}  "
           f"({rule.file}:{rule.line}:{rule.col})"]
    if rule.cond is not None:
        out.append(f"      when {render_expr(rule.cond)}")
    if rule.because:
        out.append(f"      because {rule.because!r}")
    return out


def dump_passes(comp: Compilation) -> str:
    """Each pass, whether it changed the IR, and the rules it changed (before → after)."""
    before, after = comp.lowered, comp.ir
    if before is None or after is None:
        return "(not run)"
    lines = [f"{name}: {'changed the IR' if changed else 'no change'}"
             for name, changed in comp.passes]
    changed = [(a, b) for a, b in zip(before.rules, after.rules, strict=True) if a != b]
    if changed:
        lines.append(f"rules changed ({len(changed)}):")
    for old, new in changed:
        lines.append(f"  #{old.index} {old.id}")
        lines.append(f"      was {render_expr(old.cond) if old.cond else '-'}")
        lines.append(f"      now {render_expr(new.cond) if new.cond else '-'}")
    for old_c, new_c in zip(before.counters, after.counters, strict=True):
        if old_c != new_c and old_c.key is not None and new_c.key is not None:
            lines.append(f"  counter {old_c.id} key {render_expr(old_c.key)} -> "
                         f"{render_expr(new_c.key)}")
    return "\n".join(lines)


def dump_tree(comp: Compilation) -> str:
    """Per stage: the first-target index (exact names, globs, tags, untargeted) and the
    resolved bucket of every named tool."""
    tree = comp.tree
    if tree is None:
        return "(not planned)"
    lines = [f"matchers used: {', '.join(tree.matchers) or 'none'}"]
    for stage, t in tree.stages.items():
        lines.append(f"stage {stage}:")
        lines.append(f"  untargeted: {_indices(t.untargeted)}")
        lines.append(f"  exact names ({len(t.exact)}):")
        lines += [f"    {name} -> {_indices(rules)}" for name, rules in t.exact.items()]
        lines.append(f"  globs ({len(t.globs)}):")
        lines += [f"    {pattern} -> #{rule}" for pattern, rule in t.globs]
        lines.append(f"  tags ({len(t.tagged)}):")
        lines += [f"    {tag} -> {_indices(rules)}" for tag, rules in t.tagged.items()]
        lines.append(f"  buckets of named tools ({len(t.tools)}):")
        lines += [f"    {name} -> {_indices(rules)}" for name, rules in t.tools.items()]
    return "\n".join(lines)


def _indices(rules: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"#{i}" for i in rules) + ")" if rules else "()"


def dump_code(comp: Compilation) -> str:
    """The generated code of every emitted bucket, which calls reach it, and its line map."""
    compiled = comp.compiled
    if compiled is None or comp.tree is None:
        return "(not emitted)"
    reached: dict[tuple[int, ...], list[str]] = {}
    for stage, t in comp.tree.stages.items():
        for name, rules in t.tools.items():
            reached.setdefault(rules, []).append(f"{stage} {name}")
        reached.setdefault(t.untargeted, []).append(f"{stage} (no tool, or an unknown one)")
    policy_rules = compiled.ir.rules
    lines = [f"emitter {compiled.emitter or '-'}: {len(compiled.code)} bucket(s)"]
    total = sum(1 for _ in reachable(comp.tree))
    if total > len(compiled.code):
        lines.append(f"({total - len(compiled.code)} more reachable buckets are generated "
                     "when first needed)")
    for n, code in enumerate(compiled.code):
        lines.append("")
        lines.extend(_bucket(n, code, policy_rules, reached.get(code.rules, [])))
    return "\n".join(lines)


def _bucket(n: int, code: BucketCode, rules: tuple[ir.Rule, ...],
            reached: list[str]) -> list[str]:
    shown = ", ".join(reached[:8]) + (f" and {len(reached) - 8} more" if len(reached) > 8 else "")
    lines = [f"# bucket {n}: rules {_indices(code.rules)}; reached by {shown or '-'}"]
    if not code.source:
        lines.append("# (no conditions: the decision is a prebuilt constant)")
        return lines
    lines.append(render_code(code.source, code.line_map, {i: rules[i] for i in code.rules}))
    return lines
