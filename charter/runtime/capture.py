"""The replay block of a decision log record (schema v1; docs/log.md).

The Guard hands the log a `Capture`: the request as the policy decided it, the state
snapshot the decision used, and the decision itself. The log turns it into the record's
``replay`` block only when it writes the record, with the log's own mask:

- ``request``: the projection of the request the policy's rules read (`runtime.reads`),
  masked like the rest of the record;
- ``masked``: the JSON pointers (into the block) of every value masking replaced, with the
  kind of what was there (``str``, ``num`` or ``key`` for an object key);
- ``hashes``: with an operator key, HMAC-SHA256 of each masked value, so that equality
  rules on masked fields replay;
- ``scans``/``counts``: the matcher verdicts of every field a rule scans, taken from the
  clear text, so `contains` and `count` replay though the text is masked;
- ``snapshot``: counters (id, key, usage, limit), labels, `previously` history, approved
  groups, the number of distinct approvers per group, and the snapshot's `now`;
- ``now``: the time of the decision; ``decided``: the policy's own effect and rules when
  the Guard changed them afterwards (a reservation that lost a race, a bad estimate).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any, Final

import msgspec

from charter.engine.decision import Decision
from charter.engine.snapshot import Snapshot
from charter.runtime.audit_values import Mask, Walk
from charter.runtime.capture_plan import Builder, Plan, plan_of
from charter.runtime.reads import Reads, Scan, reads_of
from charter.runtime.request import Call
from charter.runtime.verdicts import UNKNOWN, Table

__all__ = ["HASH_HEX", "PAYLOADS", "VERSION", "Capture", "escape", "keyed_hash", "number_text",
           "with_now"]

VERSION: Final = 1
"""The schema version of the decision log's records and their replay block."""

HASH_HEX: Final = 32
"""Hex digits kept of each HMAC-SHA256 (128 bits)."""

_ENCODE = msgspec.json.encode


def number_text(value: object) -> str | None:
    """The exact decimal text of an integral number (what a masked number was), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        try:
            if value == int(value):
                return str(int(value))
        except (OverflowError, ValueError, ArithmeticError):
            return None
    return None


def keyed_hash(key: bytes, value: object) -> str | None:
    """HMAC-SHA256 under `key` of a string or an integral number, tagged by kind so that
    ``"7"`` and ``7`` differ; None for anything else."""
    if isinstance(value, str):
        data = b"s\x00" + value.encode("utf-8", "surrogatepass")
    else:
        text = number_text(value)
        if text is None:
            return None
        data = b"n\x00" + text.encode()
    import hashlib  # hmac loads OpenSSL: only a log that masks a value needs it
    import hmac

    return hmac.new(key, data, hashlib.sha256).hexdigest()[:HASH_HEX]


def _same(text: str) -> str:
    return text


def with_now(call: Call, policy: Any) -> Call:
    """`call` with the clock's reading as its `now` when the policy reads `now` and the
    request has none: the rules would read the same clock during the decision, and the log
    can then record the instant they saw."""
    if not reads_of(policy).now or call.req.get("now") is not None:
        return call
    return Call(call.stage, call.name, call.tags, call.server,
                {**call.req, "now": time.time()})


def escape(key: str) -> str:
    """One JSON-pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


class Capture:
    """What one decision read, as the Guard saw it; made into a replay block by the log."""

    __slots__ = ("decided", "final", "policy", "req", "state", "time", "verdicts")

    def __init__(self, policy: Any, req: Mapping[str, Any], state: Snapshot | None,
                 decided: Decision, final: Decision, time: float,
                 verdicts: Table | None = None) -> None:
        self.policy = policy  # a `runtime.policy.Policy`
        self.req = req
        self.state = state
        self.decided = decided  # what the policy decided
        self.final = final  # what the Guard returned
        self.time = time
        self.verdicts = verdicts  # the scans the decision made (`runtime.verdicts`)

    def block(self, mask: Mask | None, hash_key: bytes | None) -> dict[str, object]:
        """The replay block, masked with `mask` (None: not masked), hashing masked values
        with `hash_key`."""
        plan = plan_of(self.policy)
        the_mask = mask if mask is not None else _same
        if plan.clean(the_mask):
            try:
                return self._planned(plan, the_mask, hash_key)
            except Exception:  # noqa: BLE001 - `Bail` or any oddity: the general walk says
                pass
        return self._walked(mask, hash_key)

    def _planned(self, plan: Plan, mask: Mask, hash_key: bytes | None) -> dict[str, object]:
        """The block by the policy's plan (`runtime.capture_plan`): the same block as
        `_walked` for the plain JSON requests usually are, else `Bail`."""
        build = Builder(mask, None if hash_key is None else partial(keyed_hash, hash_key))
        out = plan.project(self.req, build)
        st = self.state
        block: dict[str, object] = {
            "v": VERSION, "request": out, "snapshot": _planned_snapshot(st, plan, build),
            "now": st.now if st is not None and st.now is not None else self.time,
        }
        self._finish(block, plan.reads, build.masked, build.hashes)
        return block

    def _finish(self, block: dict[str, object], reads: Reads, masked: dict[str, str],
                hashes: dict[str, str]) -> None:
        """The block's pointers, hashes, verdicts and the policy's own decision."""
        if masked:
            block["masked"] = masked
            if hashes:
                block["hashes"] = hashes
            scans, counts = self._scans(reads, masked)
            if scans:
                block["scans"] = scans
            if counts:
                block["counts"] = counts
        final = self.final
        if final.effect != self.decided.effect or final.rules != self.decided.rules:
            block["decided"] = {"effect": self.decided.effect,
                                "rules": list(self.decided.rules)}

    def _walked(self, mask: Mask | None, hash_key: bytes | None) -> dict[str, object]:
        """The block by the general walk (`_Masking`), for any value whatever."""
        reads = reads_of(self.policy)
        # Unmasked, the walk still notes values whose type the log does not keep.
        walk = _Masking(mask if mask is not None else _same, hash_key)
        request = reads.project(self.req)
        for name in _PAYLOADS:
            if name in request and not reads.whole(name):
                # A payload some rule reads part of is kept whole all the same: the record
                # carries it masked anyway, and masked once here it is shared (`shared`)
                # rather than walked twice, once for the block and once for the record.
                request[name] = self.req[name]
        walk.at.append("request")
        out = walk.tree(request, 0)
        walk.at.pop()
        st = self.state
        block: dict[str, object] = {
            "v": VERSION, "request": out, "snapshot": self._snapshot(walk),
            "now": st.now if st is not None and st.now is not None else self.time,
        }
        self._finish(block, reads, walk.masked, walk.hashes)
        return block

    def shared(self, block: Mapping[str, object], record: Mapping[str, object]
               ) -> dict[str, object]:
        """The record's payload fields (`args`, `result`, `input`, `output`) that the block
        already holds masked (whole: `block` keeps every payload a rule reads whole) and the
        very same value: the log writes those without masking them a second time."""
        request = block.get("request")
        if not isinstance(request, dict):
            return {}
        out: dict[str, object] = {}
        for name in plan_of(self.policy).payloads:  # (those the policy's rules read)
            value = record.get(name)
            if value is not None and value is self.req.get(name) and name in request:
                out[name] = request[name]
        return out

    def _snapshot(self, walk: _Masking | None) -> dict[str, object] | None:
        """The snapshot as JSON: what the policy and the Guard made (counter ids, usage,
        limits, labels, groups, times) as it is; what the host sent (counter keys, the
        recorded fields of history) masked like the request."""
        st = self.state
        if st is None:
            return None
        plain = Walk(None)
        limits = _limits(self.policy)
        host = walk if walk is not None else plain
        counters: list[object] = []
        if walk is not None:
            walk.at += ["snapshot", "counters"]
        mask = walk._mask if walk is not None else None
        for i, ((cid, key), used) in enumerate(st.counters.items()):
            if walk is None:
                masked_key = key
            elif type(key) is str and key.isascii() and mask is not None:
                # The usual key (a session or agent id): masked in place, as `tree` would.
                masked_key = mask(key)
                if masked_key != key:
                    walk._note(f"/snapshot/counters/{i}/1", "str", key)
            else:
                walk.at += [str(i), "1"]
                masked_key = walk.tree(key, 0)
                del walk.at[-2:]
            # Usage and limits are ints and finite Decimals the store and policy made.
            counters.append([cid, masked_key, used, limits.get(cid)])
        out: dict[str, object] = {"counters": counters, "labels": sorted(st.labels)}
        if st.history:
            history: dict[str, object] = {}
            if walk is not None:
                walk.at[-1] = "history"
            for tool, calls in st.history.items():
                entries = _latest(calls)
                if walk is not None:
                    walk.at.append(escape(tool))
                    for i, entry in enumerate(entries):
                        walk.at += [str(i), "1"]
                        entry[1] = walk.tree(entry[1], 0)
                        del walk.at[-2:]
                    walk.at.pop()
                else:
                    for entry in entries:
                        entry[1] = host.field(entry[1])
                history[tool] = entries
            out["history"] = history
        if walk is not None:
            del walk.at[-2:]
        return _grants_and_time(st, out)

    def _scans(self, reads: Reads, masked: Mapping[str, str]
               ) -> tuple[dict[str, object], dict[str, object]]:
        """The verdicts of every scanned field that holds a masked value, from the clear
        value (None: it could not be scanned, which the policy reported as a request
        error). A field with nothing masked replays by scanning the logged text, the text
        the policy saw."""
        scans: dict[str, object] = {}
        counts: dict[str, object] = {}
        if not masked:
            return scans, counts
        matchers = self.policy.matchers
        for scan, at, under in _scan_plan(reads):
            for p in masked:  # (a loop, not `any` over a generator: a block has few)
                if p == at or p.startswith(under):
                    break
            else:
                continue
            value = _at(self.req, scan.root, scan.keys)
            if value is _MISSING:
                continue
            hit = self.verdicts.get(id(value)) if self.verdicts else None
            if hit is not None and hit[0] is value and isinstance(hit[1], frozenset) and (
                    hit[1] is not UNKNOWN) and all(n in hit[2] for n in scan.counts):
                # What the decision's own scan found: no second scan.
                scans[scan.field] = sorted(hit[1])
                if scan.counts:
                    counts[scan.field] = {n: hit[2][n] for n in scan.counts}
                continue
            try:
                scans[scan.field] = sorted(matchers.scan(value))
                if scan.counts:
                    counts[scan.field] = {n: int(matchers.scanner.count(value, n))
                                          for n in scan.counts}
            except Exception:  # noqa: BLE001 - the rule erred on it: replay errs the same way
                scans[scan.field] = None
        return scans, counts


def _planned_snapshot(st: Snapshot | None, plan: Plan, build: Builder
                      ) -> dict[str, object] | None:
    """`Capture._snapshot` by the plan's `Builder` (the same JSON and pointers)."""
    if st is None:
        return None
    limits = plan.limits
    mask, seen = build.mask, build.seen
    counters: list[object] = []
    for i, ((cid, key), used) in enumerate(st.counters.items()):
        if type(key) is str and key.isascii():  # the usual key: a session or agent id
            masked_key = seen.get(key) or mask(key)
            if masked_key != key:
                build.note(f"/snapshot/counters/{i}/1", "str", key)
        else:
            masked_key = build.value(key, f"/snapshot/counters/{i}/1", 0)
        counters.append([cid, masked_key, used, limits.get(cid)])
    out: dict[str, object] = {"counters": counters, "labels": sorted(st.labels)}
    if st.history:
        history: dict[str, object] = {}
        for tool, calls in st.history.items():
            entries = _latest(calls)
            at = f"/snapshot/history/{escape(tool)}/"
            for i, entry in enumerate(entries):
                entry[1] = build.value(entry[1], f"{at}{i}/1", 0)
            history[tool] = entries
        out["history"] = history
    return _grants_and_time(st, out)


def _grants_and_time(st: Snapshot, out: dict[str, object]) -> dict[str, object]:
    """The snapshot's approvals and clock, added to `out` (both ways of making a block)."""
    if st.approved_groups:
        out["approved_groups"] = sorted(st.approved_groups)
    if st.approvers:
        out["approvers"] = {g: len(people) for g, people in st.approvers.items()}
    if st.now is not None:
        out["now"] = st.now
    return out


def _limits(policy: Any) -> dict[str, object]:
    """Counter id -> limit of a policy (once per policy)."""
    found = _LIMITS.get(policy)
    if found is None:
        found = _LIMITS[policy] = {spec.id: spec.limit for spec in policy.ir.counters}
    return found


def _scan_plan(reads: Reads) -> tuple[tuple[Scan, str, tuple[str, str]], ...]:
    """Each scanned field of `reads` with its pointer and the prefixes of what is under
    it (once per read set: the same for every record)."""
    entry = _SCAN_PLANS.get(id(reads))
    if entry is None or entry[0] is not reads:
        plan = []
        for scan in reads.scans.values():
            at = "/request/" + "/".join(escape(k) for k in (scan.root, *scan.keys))
            plan.append((scan, at, (at + "/", at + "~k")))
        if len(_SCAN_PLANS) >= 64:  # policies come and go (reloads): keep the recent few
            _SCAN_PLANS.clear()
        entry = _SCAN_PLANS[id(reads)] = (reads, tuple(plan))
    return entry[1]


_LIMITS: weakref.WeakKeyDictionary[Any, dict[str, object]] = weakref.WeakKeyDictionary()
# By the identity of a `Reads` (a dataclass: neither hashable nor weakly referenced).
_SCAN_PLANS: dict[int, tuple[Reads, tuple[tuple[Scan, str, tuple[str, str]], ...]]] = {}
_MISSING: Final = object()
# Types a value comes back as from the log as it was (or as one the rules read alike).
_FAITHFUL: Final = frozenset({str, int, float, Decimal, bool, type(None), dict, list, tuple,
                              set, frozenset, bytes, bytearray})
PAYLOADS: Final = ("args", "result", "input", "output")
"""The request's payload fields: a replay block holds each one some rule reads whole."""
_PAYLOADS: Final = PAYLOADS
_FAST_DEPTH: Final = 32  # deeper values take `Walk`, which also catches cycles
_SMALL: Final = 10**18  # as `audit_values`: ints written out without counting digits
_SCAN_DIGITS: Final = 64


def _at(req: Mapping[str, Any], root: str, keys: tuple[str, ...]) -> object:
    obj: Any = req.get(root, _MISSING)
    for key in keys:
        if type(obj) is not dict or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def _latest(calls: tuple[tuple[float, Mapping[str, object]], ...]) -> list[list[object]]:
    """A tool's history as `previously` can use it: the latest time of each distinct set of
    recorded fields (an earlier equal call never decides anything a later one does not)."""
    latest: dict[bytes, list[object]] = {}
    out: list[list[object]] = []
    for at, fields in calls:
        try:
            key = _ENCODE(fields)
        except Exception:  # noqa: BLE001 - not JSON: keep the entry as it is
            out.append([at, fields])
            continue
        entry = latest.get(key)
        if entry is None:
            latest[key] = [at, fields]
        elif at > entry[0]:  # type: ignore[operator]  # a float
            entry[0] = at
    return [*latest.values(), *out]


class _Masking(Walk):
    """A masking `Walk` that notes the JSON pointer (and, with a key, the keyed hash) of
    every value and object key the mask changed."""

    __slots__ = ("at", "hashes", "hash_key", "masked", "_quiet")

    def __init__(self, mask: Mask, hash_key: bytes | None) -> None:
        super().__init__(mask)
        self.at: list[str] = []
        self.masked: dict[str, str] = {}
        self.hashes: dict[str, str] = {}
        self.hash_key = hash_key
        self._quiet = False  # inside a key, or the digits of a number: noted by the caller

    def _note(self, ptr: str, kind: str, clean: object) -> None:
        if self.masked.get(ptr) != "type":  # a lost type says more than a masked value
            self.masked[ptr] = kind
        if self.hash_key is not None:
            digest = keyed_hash(self.hash_key, clean)
            if digest is not None:
                self.hashes[ptr] = digest

    def _ptr(self) -> str:
        return "/" + "/".join(self.at)

    def _value(self, v: object, depth: int) -> object:
        if type(v) not in _FAITHFUL and not isinstance(v, dict):
            # Logged as JSON it comes back as another type (a StrEnum as a str, a mapping
            # that is not a dict as a dict), which the rules may read differently.
            self.masked.setdefault(self._ptr(), "type")
        return super()._value(v, depth)

    def tree(self, v: Any, depth: int) -> Any:
        """`v` masked: plain JSON values here, anything else through `Walk` (the replay
        block's usual dicts, lists, ASCII strings and small ints at a third of the cost)."""
        t = type(v)
        if depth >= _FAST_DEPTH or self.budget <= 1:
            return self.value(v, depth)
        if t is str:
            if not v.isascii():
                return self.value(v, depth)
            self.budget -= 1
            try:
                out = self._mask(v)  # type: ignore[misc]  # set: this walk always masks
            except Exception:  # noqa: BLE001 - `text` says why it cannot be logged
                return self.value(v, depth)
            if out != v:
                self._note(self._ptr(), "str", v)
            return out
        if t is dict:
            self.budget -= 1
            out_d: dict[str, Any] = {}
            at = self.at
            mask = self._mask
            for k, item in v.items():
                if type(k) is not str or not k.isascii():
                    return self.value(v, depth)  # keys to mask with care: `Walk` does
                try:
                    key = mask(k)  # type: ignore[misc]
                except Exception:  # noqa: BLE001 - `Walk` says why
                    return self.value(v, depth)
                if key in out_d:
                    return self.value(v, depth)
                token = key if "/" not in key and "~" not in key else escape(key)
                if key != k:
                    self._note(f"{self._ptr()}/{token}~k", "key", k)
                if type(item) is str and item.isascii() and self.budget > 1 and (
                        depth + 1 < _FAST_DEPTH):
                    # A string leaf, the commonest value, as `tree` does it, without a call.
                    self.budget -= 1
                    try:
                        text = mask(item)  # type: ignore[misc]
                    except Exception:  # noqa: BLE001 - `text` says why it cannot be logged
                        at.append(token)
                        out_d[key] = self.value(item, depth + 1)
                        at.pop()
                        continue
                    if text != item:
                        self._note(f"{self._ptr()}/{token}", "str", item)
                    out_d[key] = text
                    continue
                at.append(token)
                out_d[key] = self.tree(item, depth + 1)
                at.pop()
            return out_d
        if t is list:
            self.budget -= 1
            out_l: list[Any] = []
            at = self.at
            for i, item in enumerate(v):
                at.append(str(i))
                out_l.append(self.tree(item, depth + 1))
                at.pop()
            return out_l
        if t is int and -_SMALL < v < _SMALL:
            self.budget -= 1
            digits = str(v if v >= 0 else -v)  # a sign is not part of a card number
            try:
                masked = self._mask(digits)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - `Walk` says why
                return self.value(v, depth)
            if masked == digits:
                return v
            self._note(self._ptr(), "num", v)
            return masked
        if v is None or v is True or v is False:
            self.budget -= 1
            return v
        # A finite fraction is no card or phone number: logged as it is (`Walk` does the
        # rest: whole numbers, long decimals, NaN).
        if t is float and v - v == 0 and v != int(v):
            self.budget -= 1
            return v
        if t is Decimal and v.is_finite() and v.adjusted() < _SCAN_DIGITS and (
                len(v.as_tuple().digits) <= _SCAN_DIGITS and v != v.to_integral_value()):
            self.budget -= 1
            return v
        return self.value(v, depth)

    def text(self, s: str) -> object:
        out = super().text(s)
        if out != s and not self._quiet:
            self._note(self._ptr(), "str", s)
        return out

    def number(self, v: int | float | Decimal, integral: bool) -> object:
        quiet, self._quiet = self._quiet, True
        try:
            out = super().number(v, integral)
        finally:
            self._quiet = quiet
        if out is not v and not quiet:
            self._note(self._ptr(), "num", v)
        return out

    def binary(self, data: bytes) -> object:
        self.at.append("$bytes")
        try:
            return super().binary(data)
        finally:
            self.at.pop()

    def key(self, k: object) -> str:
        quiet, self._quiet = self._quiet, True
        try:
            out = super().key(k)
        finally:
            self._quiet = quiet
        plain = k if isinstance(k, str) else Walk(None).key(k)
        if out != plain:
            self._note(f"{self._ptr()}/{escape(out)}~k", "key", k)
        return out

    def sequence(self, v: list[object] | tuple[object, ...] | set[object], depth: int
                 ) -> list[object]:
        out: list[object] = []
        for i, item in enumerate(v):
            if self.budget <= 0:
                out.append(self._over_budget())
                break
            self.at.append(str(i))
            try:
                out.append(self.value(item, depth + 1))
            finally:
                self.at.pop()
        return out

    def mapping(self, v: Mapping[object, object], depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, item in v.items():
            if self.budget <= 0:
                self._put(out, "$unloggable", self._over_budget()["$unloggable"])
                break
            key = base = self.key(k)
            n = 2
            while key in out:  # as `Walk._put`: two keys masked alike both stay
                key = f"{base}#{n}"
                n += 1
            self.at.append(escape(key))
            try:
                out[key] = self.value(item, depth + 1)
            finally:
                self.at.pop()
        return out
