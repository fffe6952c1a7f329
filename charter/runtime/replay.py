"""Re-deciding logged decisions: `replay(record, policy)` runs a decision log record's
replay block (`charter.runtime.capture`, docs/log.md) through `Policy.decide`.

The request is the recorded projection, the state the recorded snapshot, `now` the recorded
time; masked values are put back where the log can prove what they were: a keyed hash that
matches one of the policy's constants is that constant, and two masked values with the same
hash are the same value. Matcher scans of masked fields answer from the recorded verdicts.
Nothing else about the decision is re-implemented: the policy's own generated code (and,
on the error path, its interpreter) decides, with a matcher set whose scans of the recorded
fields return the recorded verdicts.

A record is *inconclusive* for a policy when that policy reads a masked value in a way
the log cannot reconstruct (`<`, `like`, a function, or `==` without a hash), or a request
path the logging policy never read, so that the block does not hold it
(`runtime.captured`); `Replayed` lists the pointers, as IAM's simulator lists
`MissingContextValues`.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgspec

from charter.engine.decision import Decision
from charter.engine.snapshot import Snapshot
from charter.runtime import verdicts
from charter.runtime.capture import VERSION, keyed_hash
from charter.runtime.captured import Captures
from charter.runtime.policy import Policy
from charter.runtime.reads import EQ, SCAN, TYPE, VALUE, Reads, reads_for, reads_of
from charter.runtime.request import Call, read

__all__ = ["ReplayError", "Replayed", "Tally", "replay", "replay_log", "replay_record",
           "with_plain"]


class ReplayError(ValueError):
    """A record that cannot be replayed: written by another schema version, or without a
    replay block (the message says which)."""


class Replayed(msgspec.Struct, frozen=True):
    """One record re-decided: the new `decision`, what the log says the policy decided
    (`effect`, `rules`), and the pointers of masked values the policy read that the log
    cannot reconstruct (`inconclusive`; empty when the replay is exact)."""

    decision: Decision
    effect: str
    rules: tuple[str, ...]
    inconclusive: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        """The same effect and the same rules as logged."""
        return self.decision.effect == self.effect and self.decision.rules == self.rules


def replay(record: Mapping[str, Any], policy: Policy, *, hash_key: bytes | None = None,
           now: float | None = None) -> Decision:
    """`record` (one decision log record, as `audit.read` yields it) decided again by
    `policy`; `hash_key` is the log's HMAC key when it kept hashes of masked values; `now`
    overrides the recorded time. Raises `ReplayError` for a record that cannot be
    replayed."""
    return replay_record(record, policy, hash_key=hash_key, now=now).decision


def replay_record(record: Mapping[str, Any], policy: Policy, *,
                  hash_key: bytes | None = None, now: float | None = None,
                  captures: Captures | None = None, plain: bool = False) -> Replayed:
    """`replay`, with the logged outcome and what made the replay inconclusive.

    `captures`: what the log's replay blocks hold per policy version (`runtime.captured`;
    fed the blocks' ``reads`` by `replay_log`); without it, only a record of `policy`'s
    own digest has a known capture, and any other is judged conservatively: a path
    `policy` reads that its block does not show is inconclusive. `plain`: the caller knows
    the record holds no ``{"$bytes": ...}`` or ``{"$unloggable": ...}`` object (its log
    line has neither text), so the block is not walked for them and only what replay
    changes is copied. The record itself is never changed."""
    block = _block(record)
    facts = _facts(policy)
    reads = facts.reads
    if captures is None:
        captures = _own_captures(policy)
    uncaptured = captures.missing(record, reads)
    raw_request, raw_snapshot = block.get("request") or {}, block.get("snapshot")
    if not isinstance(raw_request, dict):
        raise ReplayError("the replay block's request is not an object")
    lost: list[str] = []
    owned: set[int] | None
    if plain:
        # Copy on write: the request's top level (for `now`), and each object or array
        # on the way to a value replay puts back or marks (`_owned`).
        tree: dict[str, Any] = {"request": dict(raw_request), "snapshot": raw_snapshot}
        owned = {id(tree["request"])}
    else:
        special: list[bool] = []
        tree = {"request": _thaw(raw_request, special),
                "snapshot": _thaw(raw_snapshot, special)}
        owned = None  # all of it is a copy
        if special:  # rare: find where the log could not carry a value
            _lost(raw_request, "/request", lost)
            _lost(raw_snapshot, "/snapshot", lost)
    masked = _dict(block.get("masked"))
    hashes = _dict(block.get("hashes")) if masked else _EMPTY
    if masked:
        _restore(tree, masked, hashes, _constants(facts, hash_key), owned)
    req = tree["request"]
    st = _snapshot(tree["snapshot"])
    when = now if now is not None else _float(block.get("now"))
    if reads.now and when is not None and (now is not None or req.get("now") is None):
        req["now"] = when
    counted: Collection[str] = ()
    histories: Collection[str] = ()
    unsnapped = False
    if (reads.counters or reads.history) and record.get("policy_digest") != facts.digest:
        # (The logging policy itself loaded all its rules read: nothing to check.)
        counted = {cid for cid, _ in st.counters} if st is not None else set()
        # The snapshot lists every tool whose history the logging Guard loaded, with no
        # calls as an empty list: a tool it does not list was not loaded.
        histories = st.history.keys() if st is not None else frozenset()
        unsnapped = not (reads.counters <= counted and reads.history <= histories)
    if uncaptured or unsnapped:
        # Some rule reads what the block may not hold: judge by the rules that can apply
        # to this call (the policy's own dispatch), not by every rule of the policy.
        call = read(req, policy.info)
        if type(call) is Call:
            bucket = reads_for(policy, call.stage, call.name, call.tags)
            if uncaptured:
                uncaptured = captures.missing(record, bucket)
            if unsnapped:
                # A counter or tool history the logging Guard did not load for this call
                # (the snapshot holds every one it loaded, used or empty) would read as
                # unused or empty: unknown.
                uncaptured += _unsnapped(bucket, counted, histories)
        elif unsnapped:
            uncaptured += _unsnapped(reads, counted, histories)
    scans = _dict(block.get("scans"))
    counts = _dict(block.get("counts"))
    table = _verdicts(req, facts.scans, scans, counts, owned) if scans else {}
    decision = verdicts.decide_replaying(facts.twin, table, req, st)
    decided = block.get("decided")
    logged = decided if isinstance(decided, dict) else record
    if masked:
        lost += _inconclusive(masked, hashes, reads, scans, counts, hash_key is not None)
    if uncaptured:
        lost += uncaptured
    return Replayed(
        decision, str(logged.get("effect")), tuple(logged.get("rules") or ()),
        tuple(sorted(set(lost))) if lost else ())


def _unsnapped(reads: Reads, counted: Collection[str], histories: Collection[str]
               ) -> list[str]:
    """Pointers of the counters and tool histories `reads` reads that the snapshot does
    not hold: they would read as unused and empty, which the log cannot vouch for."""
    return [*(f"/snapshot/counters/{_escape(c)}" for c in sorted(reads.counters)
              if c not in counted),
            *(f"/snapshot/history/{_escape(t)}" for t in sorted(reads.history)
              if t not in histories)]


@dataclass(slots=True)
class _Facts:
    """What replaying a record needs of a policy that no record changes (`_facts`)."""

    reads: Reads
    digest: str
    twin: Policy  # `verdicts.replayer(policy)`: holds the policy by a weak reference only
    hashed: dict[bytes, dict[str, object]]  # `_constants`, by hash key
    scans: tuple[tuple[str, tuple[str, ...]], ...]  # (field, its path), as `_verdicts` reads


def _facts(policy: Policy) -> _Facts:
    """The policy's `_Facts`: the last policy's from a one-slot cache (a log is replayed
    against one or two policies, record after record), else from a weak map."""
    global _LAST
    last = _LAST
    if last is not None and last[0]() is policy:
        return last[1]
    found = _FACTS.get(policy)
    if found is None:
        reads = reads_of(policy)
        found = _FACTS[policy] = _Facts(
            reads, policy.digest, verdicts.replayer(policy), {},
            tuple((scan.field, (scan.root, *scan.keys)) for scan in reads.scans.values()))
    _LAST = (weakref.ref(policy), found)
    return found


_FACTS: weakref.WeakKeyDictionary[Policy, _Facts] = weakref.WeakKeyDictionary()
_LAST: tuple[weakref.ref[Policy], _Facts] | None = None
_EMPTY: Mapping[str, Any] = {}  # never written to


def _own_captures(policy: Policy) -> Captures:
    found = _OWN.get(policy.digest)
    if found is None:
        if len(_OWN) >= _MAX_OWN:
            _OWN.clear()
        found = _OWN[policy.digest] = Captures(policy)
    return found


# By digest, bounded: a `Captures` holds its policy, so a weak map keyed by the policy (as
# this was) never let either go.
_OWN: dict[str, Captures] = {}
_MAX_OWN = 16


@dataclass(slots=True)
class Tally:
    """Counts of a log replayed against a policy (`replay_log`)."""

    records: int = 0  # decision records read (settlements and other events are skipped)
    same: int = 0  # same effect and rules as logged, exactly replayed
    changed: int = 0  # a different effect or different rules, exactly replayed
    inconclusive: int = 0  # the policy read a masked or uncaptured value (never changed)
    not_replayable: int = 0  # no replay block, or another schema version


def replay_log(records: Iterable[Mapping[str, Any]] | str | os.PathLike[str], policy: Policy,
               *, hash_key: bytes | None = None) -> Tally:
    """Replay every decision record of a log (a path, or records) against `policy`."""
    tally = Tally()
    captures = Captures(policy)
    for record, plain in with_plain(records):
        if record.get("event") is not None or "effect" not in record:
            continue
        tally.records += 1
        try:
            out = replay_record(record, policy, hash_key=hash_key, captures=captures,
                                plain=plain)
        except ReplayError:
            tally.not_replayable += 1
            continue
        if out.inconclusive:
            tally.inconclusive += 1
        elif out.same:
            tally.same += 1
        else:
            tally.changed += 1
    return tally


def with_plain(records: Iterable[Mapping[str, Any]] | str | os.PathLike[str]
               ) -> Iterator[tuple[Mapping[str, Any], bool]]:
    """The records of a log (a path, streamed, or records), each with whether it is
    `plain` for `replay_record`: known from its line's text, when there is one."""
    if isinstance(records, str | os.PathLike):
        from charter.runtime.audit import read_lines

        for found, line in read_lines(records):
            # One scan for the usual line (no string of it starts with "$"), two otherwise.
            yield found, b'"$' not in line or (
                b'"$bytes"' not in line and b'"$unloggable"' not in line)
    else:
        for record in records:
            yield record, False


# ── the record ───────────────────────────────────────────────────────────────


def _block(record: Mapping[str, Any]) -> Mapping[str, Any]:
    v = record.get("v")
    if v is None:
        raise ReplayError("not replayable: the record has no schema version (written "
                          "before decision log schema v1)")
    if v != VERSION:
        raise ReplayError(f"decision log schema v{v} is not one this Charter reads "
                          f"(it reads v{VERSION})")
    block = record.get("replay")
    if type(block) is not dict and not isinstance(block, Mapping):
        raise ReplayError("not replayable: the record has no replay block (the log was "
                          "written with replay=False, or not by a Guard)")
    if block.get("v") != VERSION:
        raise ReplayError(f"replay block schema v{block.get('v')} is not one this Charter "
                          f"reads (it reads v{VERSION})")
    request = block.get("request")
    if "error" in block or (type(request) is not dict and not isinstance(request, Mapping)):
        raise ReplayError(f"not replayable: {block.get('error') or 'the block has no request'}")
    return block


def _dict(value: object) -> Mapping[str, Any]:
    """A block's object as it is (only read, never changed), or an empty one."""
    if type(value) is dict:
        return value
    return dict(value) if isinstance(value, Mapping) else {}


# Tuples, not `dict | list`: a union in an expression is built anew at every call.
_TREE: Final = (dict, list)
_NUMBERS: Final = (int, float, Decimal)


def _float(value: object) -> float | None:
    t = type(value)
    if t is float:
        return value  # type: ignore[return-value]
    if t is Decimal or t is int:  # the usual JSON numbers, without the ABCs
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        return float(value)
    return None


def _thaw(value: object, special: list[bool]) -> Any:
    """A copy of a logged tree, its objects and arrays new (restoring masked values and
    marking scanned ones never touches the record), with ``{"$bytes": text}`` bytes again;
    `special` is appended to at a ``{"$unloggable": why}`` (`_lost` then says where)."""
    if isinstance(value, dict):
        if len(value) == 1:
            if "$bytes" in value and isinstance(value["$bytes"], str):
                return value["$bytes"].encode("utf-8", "surrogatepass")
            if "$unloggable" in value:
                special.append(True)
        return {k: _thaw(v, special) if isinstance(v, _TREE) else v
                for k, v in value.items()}
    if isinstance(value, list):
        return [_thaw(v, special) if isinstance(v, _TREE) else v for v in value]
    return value


def _lost(value: object, ptr: str, lost: list[str]) -> None:
    """The pointers of the values the log could not carry (``{"$unloggable": why}``)."""
    if isinstance(value, dict):
        if len(value) == 1 and "$unloggable" in value:
            lost.append(ptr)
        if len(value) == 1 and "$bytes" in value:
            return
        for k, v in value.items():
            _lost(v, f"{ptr}/{_escape(k)}", lost)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _lost(v, f"{ptr}/{i}", lost)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _snapshot(data: object) -> Snapshot | None:
    if not isinstance(data, dict):
        return None
    get = data.get
    counters: dict[tuple[str, str], int | Decimal] = {}
    for entry in get("counters") or ():
        if isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[0], str) and (
                isinstance(entry[1], str)):
            counters[(entry[0], entry[1])] = entry[2]
    history: dict[str, tuple[tuple[float, Mapping[str, object]], ...]] = {}
    raw = get("history")
    if raw:
        for tool, calls in raw.items():
            # (No generator for a tool without calls, the usual entry.)
            history[tool] = () if type(calls) is list and not calls else tuple(
                (float(at), fields) for at, fields in calls)
    raw = get("approvers")
    approvers = {g: _people(n) for g, n in raw.items()} if raw else {}
    raw = get("labels")
    groups = get("approved_groups")
    return Snapshot(counters=counters, labels=frozenset(raw) if raw else _NONE,
                    history=history, approved_groups=frozenset(groups) if groups else _NONE,
                    now=_float(get("now")), approvers=approvers)


_NONE: Final[frozenset[str]] = frozenset()


def _people(n: object) -> frozenset[str]:
    """`n` distinct stand-in approvers (what `approved by N of` counts)."""
    count = int(n)  # type: ignore[call-overload]
    found = _PEOPLE.get(count)
    if found is None:
        found = frozenset(f"approver {i}" for i in range(count))
        if count < 64:
            _PEOPLE[count] = found
    return found


_PEOPLE: dict[int, frozenset[str]] = {}


# ── masked values ────────────────────────────────────────────────────────────

_NUMBER_BASE: Final = -(10**30)  # masked numbers stand in as ints far from any amount


def _sentinel(kind: str, digest: str | None) -> object:
    """What stands for a masked value no constant matched: equal to another masked value
    exactly when their hashes are (no hash: equal to nothing the policy could write)."""
    if kind == "num":
        return _NUMBER_BASE - (int(digest, 16) if digest else 0)
    return f"\x00masked:{digest}" if digest else None


def _constants(facts: _Facts, key: bytes | None) -> Mapping[str, object]:
    """The policy's constants by their keyed hash."""
    if key is None:
        return _EMPTY
    found = facts.hashed.get(key)
    if found is None:
        found = {}
        for value in facts.reads.constants:
            h = keyed_hash(key, value)
            if h is not None:
                found.setdefault(h, value)
        facts.hashed[key] = found
    return found


def _tokens(ptr: str) -> tuple[str, ...]:
    found = _TOKENS.get(ptr)
    if found is None:
        found = tuple(t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:])
        if len(_TOKENS) >= _MEMO:
            _TOKENS.clear()
        _TOKENS[ptr] = found
    return found


# The same pointers recur in every record of a log: parse each once (bounded; a tuple,
# shared: callers only slice it).
_TOKENS: dict[str, tuple[str, ...]] = {}
_MEMO: Final = 4096


def _restore(tree: dict[str, Any], masked: Mapping[str, Any], hashes: Mapping[str, Any],
             constants: Mapping[str, object], owned: set[int] | None) -> None:
    """Put back what the hashes prove about each masked value (values first, then the
    keys their pointers go through)."""
    keys = [p for p in masked if p.endswith("~k")]
    values: Iterable[str] = masked
    if keys:  # rare: a masked key
        values = [p for p in masked if not p.endswith("~k")]
        keys.sort(key=len, reverse=True)
    for ptr in values:
        digest = hashes.get(ptr)
        if not isinstance(digest, str):
            digest = None
        kind = str(masked[ptr])
        new = constants.get(digest) if digest is not None else None
        if new is None:
            new = _sentinel(kind, digest)
            if new is None:
                continue  # a string without a hash: the masked text stays
        _set(tree, _tokens(ptr), new, owned)
    for ptr in keys:
        digest = hashes.get(ptr)
        if not isinstance(digest, str):
            continue
        new = constants.get(digest)
        name = new if isinstance(new, str) else f"\x00masked:{digest}"
        _rename(tree, _tokens(ptr[:-2]), name, owned)


def _owned(tree: Any, parts: Sequence[str], owned: set[int] | None) -> Any:
    """What is at `parts` in `tree`, each object and array on the way (and it) made a copy
    of its own first unless `owned` already holds it (None: all of `tree` is a copy)."""
    obj = tree
    for part in parts:
        child = obj.get(part) if type(obj) is dict else _child(obj, part)
        if owned is not None and isinstance(child, _TREE) and id(child) not in owned:
            child = child.copy()
            owned.add(id(child))
            _put(obj, part, child)
        obj = child
        if obj is None:
            return None
    return obj


def _put(obj: Any, part: str, value: object) -> None:
    if isinstance(obj, dict):
        obj[part] = value
    elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
        obj[int(part)] = value


def _set(tree: Any, parts: Sequence[str], value: object, owned: set[int] | None) -> None:
    if not parts:
        return
    if parts[-1] == "$bytes" and len(parts) >= 2:
        parent = _owned(tree, parts[:-2], owned)
        if type(_child(parent, parts[-2])) is bytes:
            # The text of logged bytes (``{"$bytes": text}``, bytes again by now).
            if isinstance(value, str):
                _put(parent, parts[-2], value.encode("utf-8", "surrogatepass"))
            return
    obj = _owned(tree, parts[:-1], owned)
    last = parts[-1]
    if isinstance(obj, dict) and last in obj:
        obj[last] = value
    elif isinstance(obj, list) and last.isdigit() and int(last) < len(obj):
        obj[int(last)] = value


def _rename(tree: Any, parts: Sequence[str], name: str, owned: set[int] | None) -> None:
    if not parts:
        return
    obj = _owned(tree, parts[:-1], owned)
    if isinstance(obj, dict) and parts[-1] in obj:
        items = list(obj.items())
        obj.clear()
        obj.update((name if k == parts[-1] else k, v) for k, v in items)


def _child(obj: Any, part: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(part)
    if isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
        return obj[int(part)]
    return None


def _inconclusive(masked: Mapping[str, Any], hashes: Mapping[str, Any], reads: Reads,
                  scans: Mapping[str, Any], counts: Mapping[str, Any], keyed: bool
                  ) -> Iterator[str]:
    """The masked values `reads` uses in a way the log cannot reconstruct."""
    for ptr, kind in masked.items():
        hashed = keyed and ptr in hashes
        if not ptr.startswith("/request/"):
            # Counter keys and `previously` fields are compared for equality.
            if not hashed and ptr.startswith("/snapshot/"):
                yield ptr
            continue
        is_key, kinds, covering = _kinds(reads, ptr)
        # A masked number stands in as an int, which every type check takes or refuses as
        # it did the number; a masked key is another key.
        # A value of a type the log does not keep is read differently by every read but
        # a scan (which has its recorded verdict).
        lost = kinds & VALUE or (kinds & EQ and (not hashed or kind == "type")) or (
            kinds & TYPE and (is_key or kind == "type"))
        if lost or (kinds & SCAN and not _verdicts_cover(covering, scans, counts)):
            yield ptr


_Kinds = tuple[bool, int, tuple[tuple[str, tuple[str, ...]], ...]]


def _kinds(reads: Reads, ptr: str) -> _Kinds:
    """Whether a masked pointer is a key, how `reads` reads it, and the scans whose
    verdicts must be recorded to answer for it (field, counts; once per policy and
    pointer)."""
    entry = _KINDS.get(id(reads))
    if entry is None or entry[0] is not reads:
        if len(_KINDS) >= 64:  # policies come and go (reloads): keep the recent few
            _KINDS.clear()
        entry = _KINDS[id(reads)] = (reads, {})
    cache = entry[1]
    found = cache.get(ptr)
    if found is None:
        is_key = ptr.endswith("~k")
        parts = _tokens(ptr[:-2] if is_key else ptr)[1:]
        found = (is_key, reads.kinds_over(parts), _covering(parts, reads))
        if len(cache) >= _MEMO:
            cache.clear()
        cache[ptr] = found
    return found


# By the identity of a `Reads` (a dataclass: neither hashable nor weakly referenced).
_KINDS: dict[int, tuple[Reads, dict[str, _Kinds]]] = {}


def _covering(parts: tuple[str, ...], reads: Reads) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The scans of `reads` over `parts` or a path within it or around it: (the scanned
    field, the names it counts)."""
    found = []
    for scan in reads.scans.values():
        path = (scan.root, *scan.keys)
        n = min(len(path), len(parts))
        if path[:n] == parts[:n]:
            found.append((scan.field, tuple(scan.counts)))
    return tuple(found)


def _verdicts_cover(covering: tuple[tuple[str, tuple[str, ...]], ...],
                    scans: Mapping[str, Any], counts: Mapping[str, Any]) -> bool:
    """Whether the block recorded every verdict of the `covering` scans (`_covering`)."""
    for field, names in covering:
        if field not in scans:
            return False
        if names:
            have = counts.get(field) or {}
            if any(name not in have for name in names):
                return False
    return True


# ── recorded verdicts ────────────────────────────────────────────────────────

def _verdicts(req: dict[str, Any], paths: tuple[tuple[str, tuple[str, ...]], ...],
              scans: Mapping[str, Any], counts: Mapping[str, Any], owned: set[int] | None
              ) -> verdicts.Table:
    """The recorded verdicts by the identity of the value they are about (each scanned
    string made an object of its own, so that two fields never share one); `paths`: the
    policy's scans, (field, path; `_Facts.scans`)."""
    table: verdicts.Table = {}
    for field, keys in paths:
        if field not in scans:
            continue
        parent: Any = req
        for key in keys[:-1]:
            parent = parent.get(key) if type(parent) is dict else None
        if type(parent) is not dict or keys[-1] not in parent:
            continue
        value = parent[keys[-1]]
        if type(value) is str and len(value) > 1:
            if owned is not None and id(parent) not in owned:
                parent = _owned(req, keys[:-1], owned)
            value = parent[keys[-1]] = (value + ".")[:-1]
        recorded = scans[field]
        found = frozenset(recorded) if isinstance(recorded, list) else None
        table[id(value)] = [value, found, _dict(counts.get(field))]
    return table
