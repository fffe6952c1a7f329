"""Which request paths a decision log's replay blocks hold, and which of a candidate
policy's reads they cannot answer (live-control-analysis.md R-S2; docs/log.md).

A replay block keeps only the projection of the request that the *logging* policy read
(`Reads.project`). A candidate that reads a path outside it finds it missing whether or not
the request had it, so its decision there says nothing about the candidate: the record is
*inconclusive* for that path, never changed. What the block holds is derived from the
logging policy's static read set, never guessed from the block's contents:

- the log names it: the first record an `AuditLog` handle writes for a policy version
  carries, in its block, ``"reads": [[key, ...], ...]`` (`read_paths`), the paths
  `Reads.project` keeps for that version; later records of the same `policy_digest` refer
  to it (no extra line, no extra bytes per record);
- else the policy the replay was given has the record's digest (replaying against the
  logging policy): its own read set; or the caller names the logging policy (`against=`,
  `--against OLD`): its read set;
- else the capture is unknown (a log cut from its head, one written before the event
  existed): every path the candidate reads that the block does not show in full is
  inconclusive — a key the block lacks may be one the request lacked or one the logging
  policy never read, and the log cannot say which; an object it holds may be whole or a
  projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from charter.runtime.capture import PAYLOADS, escape
from charter.runtime.reads import ALWAYS, Reads, reads_of

__all__ = ["Captured", "Captures", "read_paths"]

_WHOLE: Final = ""  # as `runtime.reads`: the node's own value is kept whole
# In every block: `stage` and `tool` (every policy reads them), and the decision's `now`
# (replay puts it back for a policy that reads it).
_EVERY: Final = frozenset({*ALWAYS, ("now",)})
# A tuple, not `dict | Mapping`: a decoded record's objects are dicts, which the tuple
# takes without the ABC check (and a union in an expression is built at every call).
_MAPS: Final = (dict, Mapping)

Path = tuple[str, ...]


def read_paths(policy: Any) -> list[list[str]]:
    """The block's ``reads``: the request paths the replay blocks written for `policy`
    hold (a payload some rule reads part of is held whole, `Capture.block`). Policy-made
    names only, nothing a host sent."""
    reads = reads_of(policy)
    whole = [(name,) for name in PAYLOADS if name in reads.tree]
    paths = [p for p in reads.paths() if not (p and (p[0],) in whole)]
    return [list(p) for p in sorted({*paths, *whole})]


class Captured:
    """The request paths the replay blocks of one policy version hold (each kept whole,
    with what is under it), and per candidate policy the reads it makes outside them."""

    __slots__ = ("_gaps", "_tree")

    def __init__(self, paths: Iterable[Sequence[str]]) -> None:
        tree: dict[str, Any] = {}
        for path in paths:
            node = tree
            for key in path:
                node = node.setdefault(key, {})
            node[_WHOLE] = True
        self._tree = tree
        # Keyed by the candidate's `Reads` (kept alive by its policy's `reads_of` cache).
        self._gaps: dict[int, tuple[Reads, tuple[Path, ...]]] = {}

    @classmethod
    def of(cls, policy: Any) -> Captured:
        """What the blocks written for `policy` hold."""
        return cls(reads_of(policy).paths())

    def gaps(self, reads: Reads) -> tuple[Path, ...]:
        """The paths `reads` reads that no captured path holds whole (computed once per
        candidate): only these need a look at each record."""
        found = self._gaps.get(id(reads))
        if found is not None and found[0] is reads:
            return found[1]
        out = []
        for path in reads.paths():
            if path in _EVERY:
                continue
            node = self._tree
            for key in path:
                if _WHOLE in node:
                    break
                child = node.get(key)
                if child is None:
                    out.append(path)
                    break
                node = child
            else:
                if _WHOLE not in node:
                    out.append(path)
        gaps = tuple(out)
        self._gaps[id(reads)] = (reads, gaps)
        return gaps

    def missing(self, request: Mapping[str, Any], reads: Reads) -> list[str]:
        """Pointers (``/request/...``, the whole path `reads` reads, as IAM's simulator
        names the context keys it missed) of what this record's block cannot answer. A
        key the logging policy read but the block lacks is one the request lacked (the
        projection keeps every read key present); a value that is not an object is kept
        whole, whatever is read under it."""
        out: list[str] = []
        for path in self.gaps(reads):
            node = self._tree
            obj: Any = request
            for key in path:
                child = node.get(key)
                if child is None:
                    out.append(_pointer(path))
                    break
                if key not in obj or type(obj[key]) is not dict:
                    break  # absent from the request, or a value the block holds whole
                node, obj = child, obj[key]
            else:
                out.append(_pointer(path))  # read whole, kept in part
        return out


def unknown_missing(request: Mapping[str, Any], reads: Reads) -> list[str]:
    """`Captured.missing` when the logging policy's reads are unknown: every read path the
    block does not hold as a value other than an object (which is whole whatever the
    projection) is inconclusive."""
    out: list[str] = []
    for path in reads.paths():
        if path in _EVERY:
            continue
        obj: Any = request
        for key in path:
            if type(obj) is not dict or key not in obj:
                out.append(_pointer(path))
                break
            obj = obj[key]
            if type(obj) is not dict:
                break
        else:
            out.append(_pointer(path))
    return out


class Captures:
    """What the replay blocks of a log hold, per policy digest, learnt from the blocks'
    ``reads`` as the log streams past (`note`), with the given policies as a fallback."""

    __slots__ = ("_by_digest", "_fallback", "_known")

    def __init__(self, *policies: Any, logged_by: Any = None) -> None:
        """`policies`: versions whose records' capture is their own read set (matched by
        digest); `logged_by`: the policy the caller says wrote the log (`--against`), the
        capture of every record whose version the log does not describe. (A digest covers
        the file names below the policy directory, not where the directory is.)"""
        self._by_digest: dict[str, Captured | None] = {}
        self._known = {p.digest: p for p in (*policies, logged_by) if p is not None}
        self._fallback = Captured.of(logged_by) if logged_by is not None else None

    def note(self, record: Mapping[str, Any]) -> None:
        """Learn from `record`'s block what its version's blocks hold, if it says; a
        malformed ``reads`` makes that version's capture unknown, never wider."""
        block = record.get("replay")
        if not isinstance(block, Mapping) or "reads" not in block:
            return
        digest = record.get("policy_digest")
        if not isinstance(digest, str):
            return
        paths = block["reads"]
        if isinstance(paths, list) and all(
            isinstance(p, list) and all(isinstance(k, str) for k in p) for p in paths
        ):
            self._by_digest[digest] = Captured(paths)
        else:
            self._by_digest[digest] = None

    def of(self, record: Mapping[str, Any]) -> Captured | None:
        """What `record`'s block holds; None when the log and the given policies do not
        say (`unknown_missing` then applies)."""
        digest = record.get("policy_digest")
        if not isinstance(digest, str):
            return self._fallback
        if digest in self._by_digest:
            return self._by_digest[digest]
        policy = self._known.get(digest)
        found = Captured.of(policy) if policy is not None else self._fallback
        self._by_digest[digest] = found
        return found

    def missing(self, record: Mapping[str, Any], reads: Reads) -> list[str]:
        """The pointers of what `reads` reads that `record`'s block cannot answer."""
        block = record.get("replay")
        request = block.get("request") if isinstance(block, _MAPS) else None
        if not isinstance(request, _MAPS):
            return []  # not replayable: `replay_record` says why
        if "reads" in block:  # type: ignore[operator]  # a Mapping, checked above
            self.note(record)
        captured = self.of(record)
        if captured is None:
            return unknown_missing(request, reads)
        return captured.missing(request, reads)


def _pointer(path: Path) -> str:
    return "/request/" + "/".join(escape(k) for k in path)
