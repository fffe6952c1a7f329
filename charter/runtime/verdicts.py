"""Matcher verdicts by value, for the decision log: a twin of a policy whose scanner notes
the verdicts of the scans its decisions make (the Guard decides with it when its log
captures replay blocks), or answers from recorded ones (`runtime.replay`).

A twin is the same compiled policy — the same generated code, plan and combination — with
one difference in its matcher set, so deciding with it is deciding with the policy. The
verdicts live in a context variable, a table from the identity of a scanned value to what
the scan found; outside `recording` and `answering`, a twin scans like its policy.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any, Final

from charter.engine.decision import Decision
from charter.engine.matching import PolicyMatchers
from charter.runtime.policy import Policy

__all__ = ["UNKNOWN", "Table", "Verdict", "answering", "decide_answering", "recorder", "recording",
           "replayer"]

UNKNOWN: Final = frozenset({"\x00unknown"})
"""The `found` of a value only counted, never scanned."""

Verdict = list[Any]
"""[the value, what `scan` found (None: the scan failed; UNKNOWN), counts by matcher]"""

Table = dict[int, Verdict]

_RECORD: contextvars.ContextVar[Table | None] = contextvars.ContextVar(
    "charter_verdicts_record", default=None)
_ANSWER: contextvars.ContextVar[Table | None] = contextvars.ContextVar(
    "charter_verdicts_answer", default=None)


@contextmanager
def recording() -> Iterator[Table]:
    """Note the verdicts of the scans a recorder twin makes in this block."""
    table: Table = {}
    token = _RECORD.set(table)
    try:
        yield table
    finally:
        _RECORD.reset(token)


@contextmanager
def answering(table: Table) -> Iterator[None]:
    """Answer a replayer twin's scans of the values in `table` from it in this block."""
    token = _ANSWER.set(table)
    try:
        yield
    finally:
        _ANSWER.reset(token)


def decide_answering(policy: Policy, table: Table, request: Any, state: Any) -> Decision:
    """`replayer(policy).decide(request, state)` answering from `table` (`answering`
    without a context manager's cost: a replay does this once per record)."""
    token = _ANSWER.set(table)
    try:
        return _twin(policy, _REPLAYERS, False).decide(request, state)
    finally:
        _ANSWER.reset(token)


def decide_replaying(twin: Policy, table: Table, request: Any, state: Any) -> Decision:
    """`decide_answering` with `twin` already `replayer(policy)`: a replay of many records
    looks the twin up once."""
    token = _ANSWER.set(table)
    try:
        return twin.decide(request, state)
    finally:
        _ANSWER.reset(token)


class _Scanner:
    """A policy's scanner that notes verdicts (`record`) or answers recorded ones."""

    def __init__(self, base: PolicyMatchers, record: bool) -> None:
        self._base = base
        self._record = record

    def _entry(self, value: object, table: Table | None) -> Verdict | None:
        hit = table.get(id(value)) if table else None
        return hit if hit is not None and hit[0] is value else None

    def scan(self, value: object) -> frozenset[str]:
        if self._record:
            found: frozenset[str] = self._base.scanner.scan(value)
            table = _RECORD.get()
            if table is not None:
                hit = self._entry(value, table)
                if hit is None:
                    table[id(value)] = [value, found, {}]
                else:
                    hit[1] = found
            return found
        hit = self._entry(value, _ANSWER.get())
        if hit is None or hit[1] is UNKNOWN:
            found = self._base.scanner.scan(value)
            return found
        if hit[1] is None:
            raise ValueError("the logged decision could not scan this value")
        answer: frozenset[str] = hit[1]
        return answer

    def count(self, value: object, name: str) -> int:
        if self._record:
            n = int(self._base.scanner.count(value, name))
            table = _RECORD.get()
            if table is not None:
                hit = self._entry(value, table)
                if hit is None:
                    hit = table[id(value)] = [value, UNKNOWN, {}]
                hit[2][name] = n
            return n
        hit = self._entry(value, _ANSWER.get())
        if hit is not None and name in hit[2]:
            return int(hit[2][name])
        if hit is not None and isinstance(hit[1], frozenset) and hit[1] is not UNKNOWN and (
                name not in hit[1]):
            return 0
        return int(self._base.scanner.count(value, name))

    def __getattr__(self, name: str) -> Any:  # may_match, counts, redact: the base's
        return getattr(self._base.scanner, name)


class _Matchers(PolicyMatchers):
    """`PolicyMatchers` over `_Scanner`."""

    def __init__(self, base: PolicyMatchers, record: bool) -> None:
        super().__init__({}, ())
        self._twin_scanner = _Scanner(base, record)

    @property
    def scanner(self) -> Any:
        return self._twin_scanner

    def scan(self, value: object) -> frozenset[str]:
        return self._twin_scanner.scan(value)

    def count(self, value: object, names: Collection[str]) -> int:
        return sum(self._twin_scanner.count(value, n) for n in names)


class _Twin(Policy):
    """The same compiled policy, deciding with `_Matchers`."""

    def __init__(self, base: Policy, record: bool) -> None:
        super().__init__(base.compiled)  # registers nothing new: the digest's matchers live
        self.matchers = _Matchers(base.matchers, record)
        self.base = weakref.ref(base)  # not a strong one: the twin is cached by its base


_RECORDERS: weakref.WeakKeyDictionary[Policy, _Twin] = weakref.WeakKeyDictionary()
_REPLAYERS: weakref.WeakKeyDictionary[Policy, _Twin] = weakref.WeakKeyDictionary()


def recorder(policy: Policy) -> Policy:
    """The twin of `policy` that notes its scans' verdicts inside `recording`."""
    return _twin(policy, _RECORDERS, True)


def replayer(policy: Policy) -> Policy:
    """The twin of `policy` that answers scans from the table of `answering`."""
    return _twin(policy, _REPLAYERS, False)


def _twin(policy: Policy, twins: weakref.WeakKeyDictionary[Policy, _Twin], record: bool
          ) -> Policy:
    if isinstance(policy, _Twin):
        base = policy.base()
        if base is None:
            return policy
        policy = base
    twin = twins.get(policy)
    if twin is None:
        twin = twins[policy] = _Twin(policy, record)
    return twin
