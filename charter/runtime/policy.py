"""`Policy`: a compiled policy and its pure, thread-safe `decide`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from charter.engine import ir, redactor, support
from charter.engine.combine import combine, malformed
from charter.engine.decision import Decision, PolicyInfo, Redaction, RuleError
from charter.engine.emit import Bucket, emitter_id, generate, load
from charter.engine.emitcheck import EmitError
from charter.engine.interpreter import Ctx, Outcome, eval_rule, read_path
from charter.engine.matching import PolicyMatchers
from charter.engine.plan import Plan, plan
from charter.engine.snapshot import Snapshot
from charter.engine.tree import BucketCode, CompiledPolicy, CompiledPolicyError, dumps, loads
from charter.runtime.request import STAGES, Call, read
from charter.stdlib.values import CHECKS, RequestError, describe_error

if TYPE_CHECKING:
    from pathlib import Path

MAX_KEYS = 4096  # distinct (stage, tool, tags) entries cached per policy
SAVE_MAGIC = b"CHARTER-POLICY"  # every saved format starts so (see charter.engine.tree)


#: request fields a `redact ... in` reads whole, straight from the request
_PAYLOADS = frozenset({"args", "result", "input", "output"})
#: cached decisions per entry: by match mask, with grants, and with request errors
MAX_DECISIONS = 256
#: request errors longer than this (all of one decision's together) are not cached
MAX_ERROR_TEXT = 2048
#: the per-rule code of a rule whose own code could not be made (see `_recover`)
_INTERPRETED = object()
_NO_NOW: dict[str, Any] = {}

Key = tuple[str, str, tuple[str, ...]]  # (stage, tool name or "", request tags)


class Entry(msgspec.Struct):
    """What one (stage, tool name, request tags) resolves to, with its cached decisions."""

    bucket: Bucket
    stage: str
    name: str  # "" for a model request that names no tool
    tags: tuple[str, ...]  # request tags and declared tags
    what: str
    cache: dict[int, Decision] = msgspec.field(default_factory=dict)  # by match mask
    redact_mask: int = 0
    approval_mask: int = 0
    fn: Any = None  # bucket.fn, copied here to save an attribute hop on the hot path
    base_mask: int = 0
    cached: Any = None  # cache.get, bound once
    redacts: tuple[tuple[int, ir.Rule], ...] = ()  # (bit, rule) of the enforced redact rules
    # (mask, approved groups) -> decision, for a state presenting grants
    granted: dict[tuple[int, frozenset[str]], Decision] = msgspec.field(default_factory=dict)
    # rule outcomes (True, False or a request error) -> decision, on the error path
    erring: dict[tuple[Outcome, ...], Decision] = msgspec.field(default_factory=dict)
    rule_code: tuple[Any, ...] | None = None  # per rule: its own code (see `_recover`)
    erred: int = 0  # mask of the rules that erred on the last error (see `_recover`)
    clock: bool = False  # some rule reads `now` (known with `rule_code`)


class Policy:
    """A compiled policy. `decide()` is pure: it does no I/O and never raises."""

    def __init__(self, policy: CompiledPolicy | ir.Policy) -> None:
        """Run a compiled policy (from `charter.compiler`, or `load_compiled`); bare IR is
        planned here and its code generated as calls need it."""
        compiled = policy if isinstance(policy, CompiledPolicy) else CompiledPolicy(
            policy, plan(policy))
        policy = compiled.ir
        self.compiled = compiled
        self.ir = policy
        self.info = PolicyInfo(policy.name, policy.version, policy.digest)
        self.plan = Plan(policy, compiled.tree)
        self.matchers = PolicyMatchers(policy.matchers, compiled.tree.matchers)
        self._code: dict[tuple[int, ...], BucketCode] | None = None  # by rules, on first use
        self._entries: dict[Key, Entry] = {}
        self._buckets: dict[tuple[int, ...], Bucket] = {}
        self._rule_code: dict[int, Any] = {}
        # The fast path's tables, per stage: entries without request tags by tool name
        # (None for a model request without a tool; never ""), and with request tags by
        # name, then tags. Only what `read` accepted is ever put in them.
        self._plain: dict[str, dict[str | None, Entry]] = {s: {} for s in STAGES}
        self._tagged: dict[str, dict[str, dict[tuple[str, ...], Entry]]] = {
            s: {} for s in STAGES}
        self.decide = self._fast_decide()  # type: ignore[method-assign]
        self.matchers = redactor.register(policy.digest, self.matchers)

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

    def decide(self, request: Call | Mapping[str, Any] | bytes | str,
               state: Snapshot | None = None) -> Decision:
        """Decide one request (a dict, JSON bytes or text, or a `Call` from
        `charter.runtime.request.read`). Never raises."""
        # Replaced per instance in __init__ by the closure from `_fast_decide`.
        return self._decide(request, state)

    def _fast_decide(self) -> Any:
        """`decide` as a closure over this policy's tables.

        A dict request whose tool is a name, or an object with a name, string tags and a
        string server, is looked up in the tables without building a `Call`: the tests
        below are `request.fast_key`'s, extended to tags, so a hit is a request `read`
        accepts with the entry's key. Anything else, or a miss, takes `_decide`, which
        reads the request with `read` (and fills the tables). Both end in `_run`, so what
        is cached can only change how fast an answer comes, never the answer.
        """
        plain, tagged = self._plain, self._tagged
        slow = self._decide
        recover = self._recover
        finish = self._finish
        call_names = plain["tool_call"]
        call_tags = tagged["tool_call"]

        def decide(request: Any, state: Snapshot | None = None) -> Decision:
            try:
                if type(request) is dict:
                    stage = request.get("stage")
                    if stage is None or (type(stage) is str and stage == "tool_call"):
                        stage = "tool_call"
                        names = call_names
                    elif type(stage) is str and stage in plain:
                        names = plain[stage]
                    else:
                        return slow(request, state)
                    tool = request.get("tool")
                    entry: Entry | None = None
                    if type(tool) is str or tool is None:
                        entry = names.get(tool)
                    elif type(tool) is dict:
                        name = tool.get("name")
                        server = tool.get("server")
                        if type(name) is str and (server is None or type(server) is str):
                            tags = tool.get("tags")
                            if tags is None or (type(tags) is list and not tags):
                                entry = names.get(name)
                            elif type(tags) is list:
                                for tag in tags:
                                    if type(tag) is not str:
                                        break
                                else:
                                    by_tags = (call_tags if names is call_names
                                               else tagged[stage]).get(name)
                                    if by_tags is not None:
                                        entry = by_tags.get(tuple(tags))
                    if entry is not None:
                        fn = entry.fn
                        if fn is None:
                            mask = entry.base_mask
                        else:
                            try:
                                mask = fn(request, state, entry.name, entry.tags, stage)
                            except Exception:  # noqa: BLE001 - a rule errs: `_recover` says why
                                return recover(entry, request, state)
                        if state is None or not state.approved_groups:
                            # Masks with a redaction are cached only under -1 - mask, for
                            # values with nothing to redact (see _finish), and without
                            # grants the matched rules alone fix the decision.
                            decision: Decision | None = entry.cached(mask)
                            if decision is not None:
                                return decision
                        return finish(entry, mask, request, state)
                return slow(request, state)
            except Exception:  # noqa: BLE001 - the slow path reads it again, and says why
                return slow(request, state)

        decide.__doc__ = Policy.decide.__doc__
        return decide

    def _decide(self, request: object, state: Snapshot | None) -> Decision:
        try:
            call = read(request, self.info)
            if isinstance(call, Decision):
                return call  # the malformed-request deny
            return self._run(self._entry(call), call.req, state)
        except Exception as err:  # noqa: BLE001 - nothing raises into the host
            return malformed(self.info, f"internal error while deciding: {describe_error(err)}")

    def decider(self, stage: str, name: str, tags: tuple[str, ...] = ()
                ) -> Callable[[dict[str, Any], Snapshot | None], Decision]:
        """`decide` for the requests of one kind — the (stage, tool name, request tags) that
        `request.read` gives them — with the kind looked up once, here, rather than on every
        call: for a host that has read its requests already (the Guard). Answers as
        `decide` does for such a request (dict), and never raises."""
        entry = self._entry(Call(stage, name, tags, None, {}))
        fn, base, cached = entry.fn, entry.base_mask, entry.cached
        entry_name, entry_tags = entry.name, entry.tags
        recover, finish, info = self._recover, self._finish, self.info

        def decide(req: dict[str, Any], state: Snapshot | None = None) -> Decision:
            try:
                if fn is None:
                    mask = base
                else:
                    try:
                        mask = fn(req, state, entry_name, entry_tags, stage)
                    except Exception:  # noqa: BLE001 - some rule errs: `_recover` says which
                        return recover(entry, req, state)
                if state is None or not state.approved_groups:
                    decision: Decision | None = cached(mask)  # as `_fast_decide`
                    if decision is not None:
                        return decision
                return finish(entry, mask, req, state)
            except Exception as err:  # noqa: BLE001 - nothing raises into the host
                return malformed(info, f"internal error while deciding: {describe_error(err)}")

        return decide

    def _run(self, entry: Entry, req: dict[str, Any], st: Snapshot | None) -> Decision:
        if entry.fn is None:
            mask = entry.base_mask
        else:
            try:
                mask = entry.fn(req, st, entry.name, entry.tags, entry.stage)
            except Exception:  # noqa: BLE001 - some rule errs: `_recover` says which
                return self._recover(entry, req, st)
        return self._finish(entry, mask, req, st)

    def _finish(self, entry: Entry, mask: int, req: dict[str, Any],
                st: Snapshot | None) -> Decision:
        key = mask
        if mask & entry.redact_mask:
            if not self._nothing_to_redact(entry, mask, req, st):
                return self._from_mask(entry, mask, req, st)
            key = -1 - mask  # negative: the fast path's lookup by mask never returns it
        if st is not None and st.approved_groups and mask & entry.approval_mask:
            # Grants only satisfy matched approval rules: the groups presented fix the rest.
            granted = (key, st.approved_groups)
            decision = entry.granted.get(granted)
            if decision is None:
                decision = self._from_mask(entry, mask, req, st)
                if len(entry.granted) < MAX_DECISIONS:
                    entry.granted[granted] = decision
            return decision
        decision = entry.cache.get(key)
        if decision is None:
            decision = self._from_mask(entry, mask, req, st)
            if len(entry.cache) < MAX_DECISIONS:
                entry.cache[key] = decision
        return decision

    def _nothing_to_redact(self, entry: Entry, mask: int, req: dict[str, Any],
                           st: Snapshot | None) -> bool:
        """Whether no matched redact rule has a candidate in its value (one Set pass each):
        the decision is then the same whatever the clean value, and may come from the cache."""
        ctx: Ctx | None = None
        for bit, rule in entry.redacts:
            path = rule.redact_path
            if mask >> bit & 1 and path is not None:
                try:
                    if path.keys or path.root not in _PAYLOADS:
                        ctx = ctx or self._ctx(entry, req, st)
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

    def _from_mask(self, entry: Entry, mask: int, req: dict[str, Any],
                   st: Snapshot | None) -> Decision:
        outcomes = [bool(mask >> i & 1) for i in range(len(entry.bucket.rules))]
        return self._combine(entry, outcomes, self._ctx(entry, req, st))

    def _ctx(self, entry: Entry, req: dict[str, Any], st: Snapshot | None) -> Ctx:
        return Ctx(req, st, entry.stage, entry.name, entry.tags, self.matchers)

    def _combine(self, entry: Entry, outcomes: Sequence[Outcome], ctx: Ctx) -> Decision:
        return combine(self.ir, self.info, entry.bucket.rules, outcomes, ctx.st,
                       self._redactor(ctx), entry.what)

    def _recover(self, entry: Entry, req: dict[str, Any], st: Snapshot | None) -> Decision:
        """The decision when the bucket's code raised: some rule errs on this request.

        Each rule then runs its own generated code, and only a rule whose code raises goes
        to the interpreter, which words the error; the rules that erred on the entry's last
        error go there at once (requests that miss a field tend to come in runs). Which
        evaluator a rule gets changes the cost only, never the outcome. The clock is read
        once per decision: when some rule reads `now` and the request has none, every rule
        sees the request with that one reading as its `now`. The decision depends on the
        outcomes alone unless a grant or a redact rule is involved, so it is cached by them.
        """
        code = entry.rule_code or self._code_of(entry)
        if entry.clock and req.get("now") is None:
            req = {**req, "now": support.now_of(_NO_NOW)}  # the clock, as `now` reads it
        rules = entry.bucket.rules
        ctx: Ctx | None = None
        outcomes: list[Outcome] = []
        name, tags, stage = entry.name, entry.tags, entry.stage
        erred = entry.erred
        for bit, fn in enumerate(code):
            if fn is None:
                outcomes.append(True)
                continue
            if fn is not _INTERPRETED and not erred >> bit & 1:
                try:
                    outcomes.append(bool(fn(req, st, name, tags, stage)))
                    continue
                except Exception:  # noqa: BLE001, S112 - the interpreter says why
                    pass
            if ctx is None:
                ctx = self._ctx(entry, req, st)
            outcomes.append(eval_rule(rules[bit], ctx))
        errors = [o for o in outcomes if type(o) is RuleError]
        now_erred = sum(1 << bit for bit, o in enumerate(outcomes) if type(o) is RuleError)
        if now_erred != erred:
            entry.erred = now_erred
        if not errors:  # the bucket's code gave up, but no rule errs
            mask = sum(1 << i for i, o in enumerate(outcomes) if o)
            return self._finish(entry, mask, req, st)
        # Grants satisfy matched approval rules: with grants presented and one matched, the
        # outcomes alone do not fix the decision. Nor do they when a redact rule matched
        # (its counts depend on the value).
        granted = st is not None and st.approved_groups and any(
            outcomes[bit] is True for bit in range(len(rules)) if entry.approval_mask >> bit & 1)
        redacted = any(outcomes[bit] is not False for bit, _ in entry.redacts)
        if granted or redacted:
            return self._combine(entry, outcomes, ctx or self._ctx(entry, req, st))
        key = tuple(outcomes)
        decision = entry.erring.get(key)
        if decision is None:
            decision = self._combine(entry, outcomes, ctx or self._ctx(entry, req, st))
            if len(entry.erring) < MAX_DECISIONS and sum(
                    len(e.message) for e in errors) <= MAX_ERROR_TEXT:
                entry.erring[key] = decision
        return decision

    def _code_of(self, entry: Entry) -> tuple[Any, ...]:
        """Each rule's own generated function (None: unconditional; `_INTERPRETED`: for
        the interpreter), made on the first error of a bucket and shared between buckets."""
        code = []
        for rule in entry.bucket.rules:
            fn = self._rule_code.get(rule.index)
            if fn is None and rule.index not in self._rule_code:
                fn = None
                if rule.cond is not None:
                    try:
                        own = generate([rule], self.matchers, "rule")
                    except Exception:  # noqa: BLE001 - the bucket's code exists: not reached
                        own = None
                    fn = own.fn if own is not None and own.fn is not None else _INTERPRETED
                self._rule_code[rule.index] = fn
            code.append(fn)
        entry.clock = "v_now" in entry.bucket.source  # some rule reads `now`
        entry.rule_code = tuple(code)
        return entry.rule_code

    def interpret(self, request: Call | Mapping[str, Any] | bytes | str,
                  state: Snapshot | None = None) -> Decision:
        """The same decision computed by the reference interpreter alone (for tests): every
        rule's targets are tested directly, without the dispatch index, so that tests
        comparing this with `decide` also check the planner."""
        try:
            call = read(request, self.info)
            if isinstance(call, Decision):
                return call  # the malformed-request deny
            stage, name, req_tags = call.stage, call.name, call.tags
            tags = tuple(dict.fromkeys((*req_tags, *self.plan.declared_tags(name))))
            rules = [r for r in self.ir.rules
                     if r.stage == stage and self.plan.rule_applies(r, name, tags)]
            ctx = Ctx(call.req, state, stage, name, tags, self.matchers)
            outcomes = [eval_rule(r, ctx) for r in rules]
            what = f'tool "{name}"' if name else f"this {stage} request"
            return combine(self.ir, self.info, rules, outcomes, state, self._redactor(ctx), what)
        except Exception as err:  # noqa: BLE001
            return malformed(self.info, f"internal error while deciding: {describe_error(err)}")

    def _redactor(self, ctx: Ctx) -> Any:
        def redact(rule: ir.Rule) -> Redaction | RuleError | None:
            if rule.redact_path is None:
                return None
            try:
                value = read_path(rule.redact_path, ctx)
            except RequestError:
                return None
            try:  # the counts only: the host applies the redaction with decision.redact
                counts = self.matchers.counts(value, rule.redact)
            except RequestError as err:
                text = rule.redact_path.text
                return RuleError(rule.id, text, f"{text}: {err.message}")
            return Redaction(rule.redact_path.text, rule.id, rule.redact, counts)
        return redact

    # ── buckets ──────────────────────────────────────────────────────────────

    def _entry(self, call: Call) -> Entry:
        """The entry of a call's (stage, name, request tags), made and cached on first use."""
        key = (call.stage, call.name, call.tags)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        stage, name, req_tags = key
        tags = self.plan.tags(name, req_tags)
        indices = self.plan.bucket(stage, name, req_tags)
        bucket = self._buckets.get(indices)
        if bucket is None:
            bucket = self._buckets[indices] = self._bucket(indices)
        entry = Entry(bucket, stage, name, tags,
                      f'tool "{name}"' if name else f"this {stage} request",
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
            # The toolless entry of a model stage is filed under None, never "": the
            # fast path looks up the name a request sends, and `"tool": ""` is malformed.
            if not req_tags:
                self._plain[stage][name or None] = entry
            else:
                self._tagged[stage].setdefault(name, {})[req_tags] = entry
        return entry

    def _bucket(self, indices: tuple[int, ...]) -> Bucket:
        """The compiled function of a bucket: from the policy's generated code when it has
        the bucket's and it passes its check, else generated now from the IR."""
        rules = [self.ir.rules[i] for i in indices]
        if self._code is None:
            same = self.compiled.emitter and self.compiled.emitter == emitter_id()
            self._code = {c.rules: c for c in self.compiled.code} if same else {}
        code = self._code.get(indices)
        if code is not None:
            try:
                return load(code, rules, self.matchers)
            except EmitError as err:  # never run: the IR is the truth, generate from it
                import logging  # rare; not paid by every fresh process (issue 11 cold start)

                logging.getLogger("charter").warning(
                    "policy %s: generated code for rules %s fails its check (%s); "
                    "generating it again", self.name, indices, err)
        return generate(rules, self.matchers)

    # ── introspection ────────────────────────────────────────────────────────

    def bucket_for(self, request: Call | Mapping[str, Any] | bytes | str) -> Bucket | None:
        """The generated code that decides this request; None when it is malformed."""
        call = read(request, self.info)
        return self._entry(call).bucket if type(call) is Call else None

    def explain(self, request: Call | Mapping[str, Any] | bytes | str,
                state: Snapshot | None = None) -> dict[str, Any]:
        """The decision, and every candidate rule with its outcome (True, False, or the
        rule's `RuleError`) and the value of each sub-expression (none for a malformed
        request)."""
        call = read(request, self.info)
        if isinstance(call, Decision):
            return {"decision": call, "rules": []}
        decision = self.decide(call, state)
        entry = self._entry(call)
        ctx = self._ctx(entry, call.req, state)
        rows: list[dict[str, Any]] = []
        for rule in entry.bucket.rules:
            ctx.trace = []  # one Ctx: one clock reading for the whole explanation
            outcome = eval_rule(rule, ctx)
            rows.append({"rule": rule, "outcome": outcome, "trace": ctx.trace})
        return {"decision": decision, "rules": rows}

    # ── saving and loading ───────────────────────────────────────────────────

    def dumps(self) -> bytes:
        """The compiled policy in the saved format (charter.engine.tree: msgpack, versioned)."""
        return dumps(self.compiled)

    def save(self, path: str | Path) -> None:
        """Write the compiled policy; `charter.load_compiled` reads it without Lark."""
        from pathlib import Path

        Path(path).write_bytes(self.dumps())

    @classmethod
    def loads(cls, data: bytes | bytearray | memoryview) -> Policy:
        """A policy from `dumps` output. Raises `CompiledPolicyError` (a ValueError) for
        anything else, or a format this version cannot read."""
        return cls(loads(data))

    @classmethod
    def load_compiled(cls, path: str | Path) -> Policy:
        """A policy saved with `save`; imports neither the compiler nor Lark."""
        from pathlib import Path

        data = Path(path).read_bytes()
        try:
            return cls.loads(data)
        except CompiledPolicyError as err:
            raise CompiledPolicyError(f"{path}: {err}") from None
