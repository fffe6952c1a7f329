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
the log cannot reconstruct (`<`, `like`, a function, or `==` without a hash); `Replayed`
lists the pointers, as IAM's simulator lists `MissingContextValues`.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Iterator, Mapping
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

__all__ = ["ReplayError", "Replayed", "Tally", "replay", "replay_log", "replay_record"]


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
                  captures: Captures | None = None) -> Replayed:
    """`replay`, with the logged outcome and what made the replay inconclusive.

    `captures`: what the log's replay blocks hold per policy version (`runtime.captured`;
    fed the log's ``reads`` events by `replay_log`); without it, only a record of
    `policy`'s own digest has a known capture, and any other is judged conservatively: a
    path `policy` reads that its block does not show is inconclusive."""
    block = _block(record)
    reads = reads_of(policy)
    if captures is None:
        captures = _own_captures(policy)
    uncaptured = captures.missing(record, reads)
    tree = {"request": _copy(block.get("request") or {}),
            "snapshot": _copy(block.get("snapshot"))}
    masked = _dict(block.get("masked"))
    hashes = _dict(block.get("hashes"))
    _restore(tree, masked, hashes, _constants(policy, reads, hash_key))
    lost: list[str] = []
    req = _values(tree["request"], "/request", lost)
    st = _snapshot(_values(tree["snapshot"], "/snapshot", lost))
    if not isinstance(req, dict):
        raise ReplayError("the replay block's request is not an object")
    when = now if now is not None else _float(block.get("now"))
    if reads.now and when is not None and (now is not None or req.get("now") is None):
        req["now"] = when
    if uncaptured:
        # Some rule reads what the block may not hold: judge by the rules that can apply
        # to this call (the policy's own dispatch), not by every rule of the policy.
        call = read(req, policy.info)
        if type(call) is Call:
            uncaptured = captures.missing(record, reads_for(policy, call.stage, call.name,
                                                            call.tags))
    scans = _dict(block.get("scans"))
    counts = _dict(block.get("counts"))
    table = _verdicts(req, reads, scans, counts)
    with verdicts.answering(table):
        decision = verdicts.replayer(policy).decide(req, st)
    decided = block.get("decided")
    logged = decided if isinstance(decided, dict) else record
    return Replayed(
        decision, str(logged.get("effect")), tuple(logged.get("rules") or ()),
        tuple(sorted({*lost, *uncaptured, *_inconclusive(masked, hashes, reads, scans,
                                                         counts, hash_key is not None)})))


def _own_captures(policy: Policy) -> Captures:
    found = _OWN.get(policy)
    if found is None:
        found = _OWN[policy] = Captures(policy)
    return found


_OWN: weakref.WeakKeyDictionary[Policy, Captures] = weakref.WeakKeyDictionary()


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
    if isinstance(records, str | os.PathLike):
        from charter.runtime.audit import read

        records = read(records)
    tally = Tally()
    captures = Captures(policy)
    for record in records:
        if record.get("event") is not None or "effect" not in record:
            continue
        tally.records += 1
        try:
            out = replay_record(record, policy, hash_key=hash_key, captures=captures)
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
    if not isinstance(block, Mapping):
        raise ReplayError("not replayable: the record has no replay block (the log was "
                          "written with replay=False, or not by a Guard)")
    if block.get("v") != VERSION:
        raise ReplayError(f"replay block schema v{block.get('v')} is not one this Charter "
                          f"reads (it reads v{VERSION})")
    if "error" in block or not isinstance(block.get("request"), Mapping):
        raise ReplayError(f"not replayable: {block.get('error') or 'the block has no request'}")
    return block


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _float(value: object) -> float | None:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return None


def _copy(value: object) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _values(value: object, ptr: str, lost: list[str]) -> Any:
    """Logged values as the policy read them: ``{"$bytes": text}`` is bytes again; a value
    the log could not carry (``{"$unloggable": why}``) is noted in `lost`."""
    if isinstance(value, dict):
        if len(value) == 1:
            if "$bytes" in value and isinstance(value["$bytes"], str):
                return value["$bytes"].encode("utf-8", "surrogatepass")
            if "$unloggable" in value:
                lost.append(ptr)
        return {k: _values(v, f"{ptr}/{_escape(k)}", lost) for k, v in value.items()}
    if isinstance(value, list):
        return [_values(v, f"{ptr}/{i}", lost) for i, v in enumerate(value)]
    return value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _snapshot(data: object) -> Snapshot | None:
    if not isinstance(data, dict):
        return None
    counters: dict[tuple[str, str], int | Decimal] = {}
    for entry in data.get("counters") or ():
        if isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[0], str) and (
                isinstance(entry[1], str)):
            counters[(entry[0], entry[1])] = entry[2]
    history: dict[str, tuple[tuple[float, Mapping[str, object]], ...]] = {}
    for tool, calls in (data.get("history") or {}).items():
        history[tool] = tuple((float(at), fields) for at, fields in calls)
    approvers = {g: frozenset(f"approver {i}" for i in range(int(n)))
                 for g, n in (data.get("approvers") or {}).items()}
    return Snapshot(counters=counters, labels=frozenset(data.get("labels") or ()),
                    history=history,
                    approved_groups=frozenset(data.get("approved_groups") or ()),
                    now=_float(data.get("now")), approvers=approvers)


# ── masked values ────────────────────────────────────────────────────────────

_NUMBER_BASE: Final = -(10**30)  # masked numbers stand in as ints far from any amount


def _sentinel(kind: str, digest: str | None) -> object:
    """What stands for a masked value no constant matched: equal to another masked value
    exactly when their hashes are (no hash: equal to nothing the policy could write)."""
    if kind == "num":
        return _NUMBER_BASE - (int(digest, 16) if digest else 0)
    return f"\x00masked:{digest}" if digest else None


def _constants(policy: Policy, reads: Reads, key: bytes | None) -> dict[str, object]:
    """The policy's constants by their keyed hash."""
    if key is None:
        return {}
    cache = _HASHED.setdefault(policy, {})
    found = cache.get(key)
    if found is None:
        found = {}
        for value in reads.constants:
            h = keyed_hash(key, value)
            if h is not None:
                found.setdefault(h, value)
        cache[key] = found
    return found


_HASHED: weakref.WeakKeyDictionary[Policy, dict[bytes, dict[str, object]]] = (
    weakref.WeakKeyDictionary())


def _tokens(ptr: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:]]


def _restore(tree: dict[str, Any], masked: Mapping[str, Any], hashes: Mapping[str, Any],
             constants: Mapping[str, object]) -> None:
    """Put back what the hashes prove about each masked value (values first, then the
    keys their pointers go through)."""
    values = [p for p in masked if not p.endswith("~k")]
    keys = sorted((p for p in masked if p.endswith("~k")), key=len, reverse=True)
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
        _set(tree, _tokens(ptr), new)
    for ptr in keys:
        digest = hashes.get(ptr)
        if not isinstance(digest, str):
            continue
        new = constants.get(digest)
        name = new if isinstance(new, str) else f"\x00masked:{digest}"
        _rename(tree, _tokens(ptr[:-2]), name)


def _set(tree: Any, parts: list[str], value: object) -> None:
    obj = tree
    for part in parts[:-1]:
        obj = _child(obj, part)
        if obj is None:
            return
    last = parts[-1] if parts else None
    if isinstance(obj, dict) and last in obj:
        obj[last] = value
    elif isinstance(obj, list) and last is not None and last.isdigit() and int(last) < len(obj):
        obj[int(last)] = value


def _rename(tree: Any, parts: list[str], name: str) -> None:
    obj = tree
    for part in parts[:-1]:
        obj = _child(obj, part)
        if obj is None:
            return
    if isinstance(obj, dict) and parts and parts[-1] in obj:
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
        is_key = ptr.endswith("~k")
        parts = tuple(_tokens(ptr[:-2] if is_key else ptr))[1:]
        kinds = reads.kinds_over(parts)
        # A masked number stands in as an int, which every type check takes or refuses as
        # it did the number; a masked key is another key.
        # A value of a type the log does not keep is read differently by every read but
        # a scan (which has its recorded verdict).
        lost = kinds & VALUE or (kinds & EQ and (not hashed or kind == "type")) or (
            kinds & TYPE and (is_key or kind == "type"))
        if lost or (kinds & SCAN and not _verdicts_cover(parts, reads, scans, counts)):
            yield ptr


def _verdicts_cover(parts: tuple[str, ...], reads: Reads, scans: Mapping[str, Any],
                    counts: Mapping[str, Any]) -> bool:
    for scan in reads.scans.values():
        path = (scan.root, *scan.keys)
        n = min(len(path), len(parts))
        if path[:n] != parts[:n]:
            continue
        if scan.field not in scans:
            return False
        have = counts.get(scan.field) or {}
        if any(name not in have for name in scan.counts):
            return False
    return True


# ── recorded verdicts ────────────────────────────────────────────────────────

def _verdicts(req: dict[str, Any], reads: Reads, scans: Mapping[str, Any],
              counts: Mapping[str, Any]) -> verdicts.Table:
    """The recorded verdicts by the identity of the value they are about (each scanned
    string made an object of its own, so that two fields never share one)."""
    table: verdicts.Table = {}
    for scan in reads.scans.values():
        if scan.field not in scans:
            continue
        parent: Any = req
        keys = (scan.root, *scan.keys)
        for key in keys[:-1]:
            parent = parent.get(key) if type(parent) is dict else None
        if type(parent) is not dict or keys[-1] not in parent:
            continue
        value = parent[keys[-1]]
        if type(value) is str and len(value) > 1:
            value = parent[keys[-1]] = (value + ".")[:-1]
        recorded = scans[scan.field]
        found = frozenset(recorded) if isinstance(recorded, list) else None
        table[id(value)] = [value, found, _dict(counts.get(scan.field))]
    return table
