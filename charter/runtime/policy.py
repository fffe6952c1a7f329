"""`Policy`: a compiled policy and its pure, thread-safe `decide`."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from charter.engine import ir, redactor
from charter.engine.combine import combine, malformed
from charter.engine.decision import Decision, PolicyInfo, Redaction
from charter.engine.emit import Bucket, generate
from charter.engine.interpreter import Ctx, eval_rule, read_path
from charter.engine.matching import PolicyMatchers, used_matchers
from charter.engine.plan import Plan
from charter.engine.snapshot import Snapshot
from charter.stdlib.values import CHECKS, RequestError, describe, describe_error

STAGES = frozenset({"tool_call", "tool_result", "model_input", "model_output"})
TOOL_STAGES = frozenset({"tool_call", "tool_result"})
MAX_KEYS = 4096  # distinct (stage, tool, tags) entries cached per policy
_DECODER = msgspec.json.Decoder(float_hook=Decimal)
SAVE_MAGIC = b"CHARTER-POLICY-1\n"


#: request fields a `redact ... in` reads whole, straight from the request
_PAYLOADS = frozenset({"args", "result", "input", "output"})

@dataclass(slots=True)
class Entry:
    """What one (stage, tool name, tags) resolves to, with its decisions by match mask."""

    bucket: Bucket
    tags: tuple[str, ...]  # request tags and declared tags
    what: str
    cache: dict[int, Decision] = field(default_factory=dict)
    redact_mask: int = 0
    approval_mask: int = 0
    fn: Any = None  # bucket.fn, copied here to save an attribute hop on the hot path
    base_mask: int = 0
    cached: Any = None  # cache.get, bound once
    redacts: tuple[tuple[int, ir.Rule], ...] = ()  # (bit, rule) of the enforced redact rules


class Policy:
    """A compiled policy. `decide()` is pure: it does no I/O and never raises."""

    def __init__(self, policy: ir.Policy) -> None:
        self.ir = policy
        self.info = PolicyInfo(policy.name, policy.version, policy.digest)
        self.plan = Plan(policy)
        self.matchers = PolicyMatchers(policy.matchers, used_matchers(policy))
        self._entries: dict[tuple[str, str, tuple[str, ...]], Entry] = {}
        self._buckets: dict[tuple[int, ...], Bucket] = {}
        self._fast: dict[str, dict[str, Entry]] = {}
        self.decide = self._fast_decide()  # type: ignore[method-assign]
        redactor.register(policy.digest, self.matchers)

    # ── metadata ─────────────────────────────────────────────────────────────

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def version(self) -> str | None:
        return self.ir.version

    @property
    def digest(self) -> str:
        return self.ir.digest

    @property
    def rules(self) -> tuple[ir.Rule, ...]:
        return self.ir.rules

    @property
    def counters(self) -> tuple[ir.CounterSpec, ...]:
        return self.ir.counters

    # ── deciding ─────────────────────────────────────────────────────────────

    def decide(self, request: Mapping[str, Any] | bytes | str,
               state: Snapshot | None = None) -> Decision:
        """Decide one request (a dict, or JSON bytes/text). Never raises."""
        # Replaced per instance in __init__ by the closure from `_fast_decide`.
        return self._decide(request, state)

    def _fast_decide(self) -> Any:
        """`decide` as a closure over this policy's tables: no attribute lookups on the path
        of a dict request naming a tool already seen."""
        fast = self._fast
        slow = self._decide
        interpret = self._interpret
        finish = self._finish
        info = self.info

        tool_calls = fast.setdefault("tool_call", {})

        def decide(request: Any, state: Snapshot | None = None) -> Decision:
            try:
                if request.__class__ is dict:
                    tool = request.get("tool")
                    if tool.__class__ is dict and ((tags := tool.get("tags")) is None or (
                            tags.__class__ is list and not tags)):
                        tool = tool.get("name")  # {"name": ...} without tags: same entry
                    # Only names `_tool_key` accepted have entries (never ""), so whatever
                    # misses here takes the slow path, which says what is wrong.
                    if tool.__class__ is str:
                        stage = request.get("stage")
                        if stage is None or (stage.__class__ is str and stage == "tool_call"):
                            stage = "tool_call"
                            entry = tool_calls.get(tool)
                        elif stage.__class__ is str:
                            by_tool = fast.get(stage)
                            entry = by_tool.get(tool) if by_tool is not None else None
                        else:
                            entry = None
                        if entry is not None:
                            fn = entry.fn
                            if fn is None:
                                mask = entry.base_mask
                            else:
                                try:
                                    mask = fn(request, state, tool, entry.tags, stage)
                                except Exception:  # noqa: BLE001 - the interpreter says why
                                    return interpret(entry, request, state, tool, stage)
                            if state is None or not state.approved_groups:
                                # Masks with a redaction are cached only under -1 - mask, for
                                # values with nothing to redact (see _finish), and
                                # without grants the matched rules alone fix the decision.
                                decision: Decision | None = entry.cached(mask)
                                if decision is not None:
                                    return decision
                            return finish(entry, mask, request, state, tool, stage)
                return slow(request, state)
            except Exception as err:  # noqa: BLE001 - nothing raises into the host
                return malformed(info, f"internal error while deciding: {describe_error(err)}")

        decide.__doc__ = Policy.decide.__doc__
        return decide

    def _decide(self, request: Mapping[str, Any] | bytes | str,
                state: Snapshot | None) -> Decision:
        try:
            found = self._read(request)
            if isinstance(found, Decision):
                return found
            req, key = found
            entry = self._entries.get(key) or self._entry(key)
            if isinstance(entry, Decision):
                return entry
            return self._run(entry, req, state, key[1], key[0])
        except Exception as err:  # noqa: BLE001 - nothing raises into the host
            return malformed(self.info, f"internal error while deciding: {describe_error(err)}")

    def _run(self, entry: Entry, req: Any, st: Snapshot | None, name: str,
             stage: str) -> Decision:
        if entry.fn is None:
            mask = entry.base_mask
        else:
            try:
                mask = entry.fn(req, st, name, entry.tags, stage)
            except Exception:  # noqa: BLE001 - the interpreter reports the precise error
                return self._interpret(entry, req, st, name, stage)
        return self._finish(entry, mask, req, st, name, stage)

    def _finish(self, entry: Entry, mask: int, req: Any, st: Snapshot | None, name: str,
                stage: str) -> Decision:
        if st is not None and st.approved_groups and mask & entry.approval_mask:
            return self._from_mask(entry, mask, req, st, name, stage)
        key = mask
        if mask & entry.redact_mask:
            if not self._nothing_to_redact(entry, mask, req, st, name, stage):
                return self._from_mask(entry, mask, req, st, name, stage)
            key = -1 - mask  # negative: the fast path's lookup by mask never returns it
        decision = entry.cache.get(key)
        if decision is None:
            decision = self._from_mask(entry, mask, req, st, name, stage)
            if len(entry.cache) < 256:
                entry.cache[key] = decision
        return decision

    def _nothing_to_redact(self, entry: Entry, mask: int, req: Any, st: Snapshot | None,
                           name: str, stage: str) -> bool:
        """Whether no matched redact rule has a candidate in its value (one Set pass each):
        the decision is then the same whatever the clean value, and may come from the cache."""
        ctx: Ctx | None = None
        for bit, rule in entry.redacts:
            path = rule.redact_path
            if mask >> bit & 1 and path is not None:
                try:
                    if path.keys or path.root not in _PAYLOADS:
                        ctx = ctx or Ctx(req, st, stage, name, entry.tags, self.matchers)
                        value = read_path(path, ctx)
                    elif path.root in req:
                        # A whole payload (`in result`), read as read_path reads it but
                        # without a context: on a clean 200 B result that was a third of
                        # the cost beyond the scan itself.
                        value = CHECKS[path.check](req[path.root])
                    else:
                        return False
                    if self.matchers.may_find(value, rule.redact):
                        return False
                except (RequestError, TypeError):
                    return False  # missing, or refused: the full path says which
        return True

    def _from_mask(self, entry: Entry, mask: int, req: Any, st: Snapshot | None, name: str,
                   stage: str) -> Decision:
        rules = entry.bucket.rules
        outcomes = [bool(mask >> i & 1) for i in range(len(rules))]
        ctx = Ctx(req, st, stage, name, entry.tags, self.matchers)
        return combine(self.ir, self.info, rules, outcomes, st, self._redactor(ctx), entry.what)

    def _interpret(self, entry: Entry, req: Any, st: Snapshot | None, name: str,
                   stage: str) -> Decision:
        ctx = Ctx(req, st, stage, name, entry.tags, self.matchers)
        outcomes = [eval_rule(r, ctx) for r in entry.bucket.rules]
        return combine(self.ir, self.info, entry.bucket.rules, outcomes, st,
                       self._redactor(ctx), entry.what)

    def interpret(self, request: Any, state: Snapshot | None = None) -> Decision:
        """The same decision computed by the reference interpreter alone (for tests)."""
        try:
            found = self._read(request)
            if isinstance(found, Decision):
                return found
            req, (stage, name, req_tags) = found
            tags = tuple(dict.fromkeys((*req_tags, *self.plan.declared_tags(name))))
            # No dispatch index here: every rule's targets are tested directly, so that
            # tests comparing this with `decide` also check the planner.
            rules = [r for r in self.ir.rules
                     if r.stage == stage and self.plan.rule_applies(r, name, tags)]
            ctx = Ctx(req, state, stage, name, tags, self.matchers)
            outcomes = [eval_rule(r, ctx) for r in rules]
            what = f'tool "{name}"' if name else f"this {stage} request"
            return combine(self.ir, self.info, rules, outcomes, state, self._redactor(ctx), what)
        except Exception as err:  # noqa: BLE001
            return malformed(self.info, f"internal error while deciding: {describe_error(err)}")

    def _redactor(self, ctx: Ctx) -> Any:
        def redact(rule: ir.Rule) -> Redaction | str | None:
            if rule.redact_path is None:
                return None
            try:
                value = read_path(rule.redact_path, ctx)
            except RequestError:
                return None
            try:  # the counts only: the host applies the redaction with decision.redact
                counts = self.matchers.counts(value, rule.redact)
            except RequestError as err:
                return f"{rule.redact_path.text}: {err.message}"
            return Redaction(rule.redact_path.text, rule.id, rule.redact, counts)
        return redact

    # ── request normalisation ────────────────────────────────────────────────

    def _coerce(self, request: Any) -> dict[str, Any] | Decision:
        if isinstance(request, bytes | bytearray | memoryview | str):
            try:
                req = _DECODER.decode(request)
            except msgspec.DecodeError as err:
                return malformed(self.info, f"not valid JSON: {err}")
        elif isinstance(request, Mapping):
            req = dict(request)
        else:
            return malformed(self.info, f"expected a JSON object, found {type(request).__name__}")
        if type(req) is not dict:
            return malformed(self.info, "the request must be a JSON object")
        return req

    def _read(self, request: Any) -> tuple[Any, tuple[str, str, tuple[str, ...]]] | Decision:
        """The request as a dict and its (stage, tool name, request tags); a deny saying
        why when it is malformed."""
        req: Any = request
        if type(req) is not dict:
            req = self._coerce(request)
            if isinstance(req, Decision):
                return req
        key = self._tool_key(req.get("stage"), req.get("tool"))
        return key if isinstance(key, Decision) else (req, key)

    def _tool_key(self, stage: Any, tool: Any) -> tuple[str, str, tuple[str, ...]] | Decision:
        """(stage, tool name, request tags), or the malformed-request deny. A null `stage` or
        `tags` is absent, as null is everywhere in a request."""
        if stage is None:
            stage = "tool_call"
        if type(stage) is not str or stage not in STAGES:
            return malformed(self.info, f"stage must be one of {', '.join(sorted(STAGES))}; "
                             f"found {describe(stage)}")
        if tool is None:
            if stage in TOOL_STAGES:
                return malformed(self.info, f"tool missing (a {stage} request names its tool)")
            return (stage, "", ())
        if type(tool) is str:
            if not tool:
                return malformed(self.info, "tool name is empty")
            return (stage, tool, ())
        if not isinstance(tool, dict):
            return malformed(self.info, "tool must be a name or an object with a name")
        name = tool.get("name")
        if type(name) is not str or not name:
            return malformed(self.info, "tool.name missing or not a string")
        tags = tool.get("tags", ())
        if tags is None:
            tags = ()
        if not isinstance(tags, list | tuple) or any(type(t) is not str for t in tags):
            return malformed(self.info, "tool.tags must be a list of strings")
        return (stage, name, tuple(tags))

    def _entry(self, key: tuple[str, str, tuple[str, ...]]) -> Entry | Decision:
        stage, name, req_tags = key
        if stage not in STAGES:
            return malformed(self.info, f"stage must be one of {', '.join(sorted(STAGES))}; "
                             f"found {describe(stage)}")
        declared = self.plan.declared_tags(name)
        tags = tuple(dict.fromkeys((*req_tags, *declared)))
        indices = self.plan.candidates(stage, name, tags)
        bucket = self._buckets.get(indices)
        if bucket is None:
            rules = [self.ir.rules[i] for i in indices]
            bucket = generate(rules, self.matchers, "bucket")
            self._buckets[indices] = bucket
        entry = Entry(bucket, tags, f'tool "{name}"' if name else f"this {stage} request",
                      fn=bucket.fn, base_mask=bucket.base_mask)
        entry.cached = entry.cache.get
        for bit, rule in enumerate(bucket.rules):
            if rule.kind == "redact" and not rule.shadow:
                entry.redact_mask |= 1 << bit
                entry.redacts += ((bit, rule),)
            if rule.kind == "require_approval" and not rule.shadow:
                entry.approval_mask |= 1 << bit
        if len(self._entries) < MAX_KEYS:
            self._entries[key] = entry
            # Not the toolless entry of a model stage (name ""): the fast path looks up the
            # name a request sends, and `"tool": ""` or `{"name": ""}` is malformed.
            if not req_tags and name:
                self._fast.setdefault(stage, {})[name] = entry
        return entry

    # ── introspection ────────────────────────────────────────────────────────

    def bucket_for(self, request: Mapping[str, Any]) -> Bucket | None:
        key = self._tool_key(request.get("stage"), request.get("tool"))
        if isinstance(key, Decision):
            return None
        entry = self._entry(key)
        return None if isinstance(entry, Decision) else entry.bucket

    def explain(self, request: Mapping[str, Any], state: Snapshot | None = None) -> dict[
            str, Any]:
        """Every candidate rule with its outcome and the value of each sub-expression."""
        decision = self.decide(dict(request), state)
        key = self._tool_key(request.get("stage"), request.get("tool"))
        rows: list[dict[str, Any]] = []
        if not isinstance(key, Decision):
            entry = self._entry(key)
            if isinstance(entry, Entry):
                ctx = Ctx(request, state, key[0], key[1], entry.tags, self.matchers)
                for rule in entry.bucket.rules:
                    ctx.trace = []  # one Ctx: one clock reading for the whole explanation
                    outcome = eval_rule(rule, ctx)
                    rows.append({"rule": rule, "outcome": outcome, "trace": ctx.trace})
        return {"decision": decision, "rules": rows}

    # ── saving and loading ───────────────────────────────────────────────────

    def save(self, path: str | Path) -> None:
        """Write the compiled policy; `charter.load_compiled` reads it without Lark."""
        Path(path).write_bytes(SAVE_MAGIC + pickle.dumps(self.ir, protocol=5))

    @classmethod
    def load_compiled(cls, path: str | Path) -> Policy:
        data = Path(path).read_bytes()
        if not data.startswith(SAVE_MAGIC):
            raise ValueError(f"{path}: not a compiled Charter policy")
        return cls(_SafeUnpickler.loads(data[len(SAVE_MAGIC):]))


class _SafeUnpickler(pickle.Unpickler):
    """Only IR classes and plain value types may be rebuilt from a saved policy."""

    ALLOWED = {
        ("decimal", "Decimal"), ("datetime", "timedelta"), ("builtins", "frozenset"),
        ("builtins", "set"), ("builtins", "tuple"), ("builtins", "dict"), ("builtins", "list"),
        ("builtins", "slice"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if module == ir.__name__ or (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a compiled policy")

    @classmethod
    def loads(cls, data: bytes) -> ir.Policy:
        import io

        obj = cls(io.BytesIO(data)).load()
        if not isinstance(obj, ir.Policy):
            raise ValueError("not a compiled Charter policy")
        return obj
