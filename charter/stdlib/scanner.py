r"""The matcher engine: every matcher of a policy in one RE2 Set, one pass per value.

Scanning model:
1. A value's texts (a string itself; dict keys and values, container items at any depth;
   ints as decimal text; bytes as UTF-8) are encoded once and joined with "\n" into one
   buffer, which goes through the Set in one pass. The Set says which matchers have a
   *candidate* somewhere in the value. Patterns run in multi-line mode (`anchors.py`), so a
   match inside one text is a match in the joined buffer: the pass may over-report, never
   miss. Patterns using `\A`, `\z` or `(?-m)` are scanned text by text instead.
2. Only for those matchers, the matcher's regex walks the joined buffer to find which texts
   hold a candidate, and then each such text on its own (exact semantics, offsets in that
   text); the validator (Luhn, mod-97, ...) confirms each candidate. `scan` stops at the first
   confirmed match per matcher; a matcher without a validator or `^`/`$` is confirmed by the
   Set alone when the value is one string.
3. Nothing is rebuilt unless something matched: `redact` returns a clean value itself.

Limits (a value past them is refused with `ScanError`, which the evaluator turns into a deny
naming the reason, never a partial answer): `max_bytes` of text per value, `max_candidates`
regex candidates per call (each costs a validator call or a hit record), `max_depth` levels
of nesting (a cyclic value is infinitely deep). Matching is RE2's, linear in the text; with
these bounds time and memory per call are linear and capped.

Fail closed: RE2's Set reports "out of memory" and "no match" the same way (an empty result)
through the Python binding, so the Set carries a sentinel pattern `\z` that matches every
string. A result without the sentinel means the engine failed, and `ScanError` is raised —
never an empty answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple, NoReturn

import re2

from charter.stdlib import engine, redaction, walk
from charter.stdlib.anchors import anchoring
from charter.stdlib.matchers import GROUPS
from charter.stdlib.redaction import Hit
from charter.stdlib.spec import MatcherSpec, prefilters_in_use

MAX_DEPTH = 1024
"""Containers nested deeper than this (or cyclic) are refused (ScanError), not half-scanned."""

MAX_BYTES = 16 << 20
"""Text per scanned value (UTF-8 bytes, all strings together) beyond which it is refused."""

MAX_CANDIDATES = 1 << 16
"""Regex candidates per scan/count/redact call beyond which the value is refused: each costs
a validator call or a hit record (2-15 µs each), so this caps a call at about a second."""

DEFAULT_MAX_MEM = 64 << 20
"""RE2 memory budget for the Set (program plus DFA cache)."""

FEW_TEXTS = 8
"""Values with at most this many texts find a matcher's texts by a Set pass over each."""

CHUNK = 4096
"""Slice size for locating a matcher's first candidate in a long text (`_first_chunks`)."""

_EMPTY: frozenset[str] = frozenset()
_SEP = b"\n"


class ScanError(Exception):
    """The engine could not give a trustworthy answer; the caller must fail closed."""


# Finding and _Joined are made by calling NamedTuple: a class statement's annotations are
# strings in this module (`from __future__ import annotations`), and typing compiles each
# one (ForwardRef) when it makes the class: ~0.3 ms of every hook call's first decision.
Finding = NamedTuple("Finding", [("name", str), ("start", int), ("end", int)])  # noqa: UP014
Finding.__doc__ = """A validated match in one string, in *character* offsets of that string."""


def _encode(text: str) -> bytes:
    # Lone surrogates can arrive from JSON (`"\ud800"`); keep them rather than raise.
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _next_char(data: bytes, pos: int) -> int:
    """Offset of the code point after the one at `pos` (skips UTF-8 continuation bytes)."""
    pos += 1
    while pos < len(data) and (data[pos] & 0xC0) == 0x80:
        pos += 1
    return pos


def iter_strings(value: object, max_depth: int = MAX_DEPTH) -> list[str]:
    """Every scannable text inside `value` (see `walk.texts`). Raises ScanError beyond
    `max_depth` levels of nesting."""
    try:
        return walk.texts(value, max_depth)
    except walk.WalkError as err:
        raise ScanError(str(err)) from None


class _Budget:
    """Candidates one call may still look at."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.limit = limit

    def exceeded(self, name: str) -> NoReturn:
        raise ScanError(
            f"more than {self.limit} candidate matches in one value ({name} among them); "
            "refused rather than half-scanned"
        )


_Joined = NamedTuple("_Joined", [  # noqa: UP014
    ("parts", list[bytes]),
    ("data", bytes),
    ("starts", list[int]),  # offset of each part in `data`
    ("sets", dict[int, list[int]]),  # the Set's candidates per part, filled as needed
])
_Joined.__doc__ = """A value's texts encoded, and joined with "\n" for the Set pass."""


class Scanner:
    """All matchers of a policy compiled into one RE2 Set. Thread-safe; build once.

    Names accepted by `count` and `redact` are spec names or group names (`pii.any`,
    `secrets.any`), which stand for the group members present in this scanner.
    `prefilters`: put each matcher's `MatcherSpec.prefilter` in the Set in place of its
    pattern (default: whether the process asked for it, `spec.use_prefilters`).
    """

    __slots__ = (
        "specs",
        "max_bytes",
        "max_candidates",
        "max_depth",
        "_index",
        "_set",
        "_set_match",
        "_sentinel",
        "_searches",
        "_ascii",
        "_opts",
        "_validators",
        "_groups",
        "_set_exact",
        "_per_text",
        "_placeholders",
        "_expanded",
        "_may",
    )

    def __init__(
        self,
        specs: Sequence[MatcherSpec],
        *,
        max_mem: int = DEFAULT_MAX_MEM,
        max_bytes: int = MAX_BYTES,
        max_candidates: int = MAX_CANDIDATES,
        max_depth: int = MAX_DEPTH,
        prefilters: bool | None = None,
    ) -> None:
        unique: dict[str, MatcherSpec] = {}
        for spec in specs:
            seen = unique.setdefault(spec.name, spec)
            if seen.pattern != spec.pattern:
                raise ValueError(f"two matchers named {spec.name!r} with different patterns")
        if not (prefilters_in_use() if prefilters is None else prefilters):
            unique = {n: s._replace(prefilter=None) for n, s in unique.items()}
        self.specs: tuple[MatcherSpec, ...] = tuple(unique.values())
        self.max_bytes = max_bytes
        self.max_candidates = max_candidates
        self.max_depth = max_depth
        self._index = {s.name: i for i, s in enumerate(self.specs)}
        opts = engine.engine_options(max_mem)
        regex_set = re2.Set.SearchSet(opts)
        for spec in self.specs:
            # A prefilter stands in for its pattern in the Set (see `MatcherSpec`): the
            # pattern is then parsed when a candidate first needs it (a bad one: ScanError).
            if spec.prefilter is not None and not anchoring(spec.prefilter).joinable:
                raise ValueError(f"matcher {spec.name}: its prefilter must be joinable")
            try:
                # parses it: a bad pattern fails here
                regex_set.Add(f"(?m:{spec.prefilter or spec.pattern})")
            except re2.error as err:
                raise ScanError(f"matcher {spec.name}: RE2 rejects the pattern ({err})") from None
        self._sentinel: int = regex_set.Add(r"\z")
        try:
            regex_set.Compile()
        except re2.error:
            raise ScanError(
                f"the {len(self.specs)} matchers do not fit RE2's memory budget ({max_mem} bytes)"
            ) from None
        self._set = regex_set  # keeps the extension object alive for _set_match
        self._set_match = engine.set_matcher(regex_set)
        # Each matcher's own regexes (for spans, once the Set names it a candidate) are
        # compiled on first use: two per matcher made building the scanner of a policy with
        # `pii.any` and `secrets.any` cost ~20 ms of every fresh process (a hook per tool
        # call, issue 11), and a clean value never needs them.
        self._opts = opts
        # Per matcher, by `joined + 2 * ascii`: over one text, over joined texts, and the
        # same two with its `ascii_pattern` for an all-ASCII buffer.
        self._searches: tuple[list[engine.SearchFn | None], ...] = tuple(
            [None] * len(self.specs) for _ in range(4)
        )
        self._ascii = [s.ascii_pattern is not None for s in self.specs]
        self._validators = [s.validator for s in self.specs]
        self._groups = [s.group for s in self.specs]
        kinds = [anchoring(s.pattern) for s in self.specs]
        self._set_exact = [
            s.validator is None and s.prefilter is None and not k.line
            for s, k in zip(self.specs, kinds, strict=True)
        ]
        self._per_text = tuple(i for i, k in enumerate(kinds) if not k.joinable)
        self._placeholders = [s.placeholder.encode("utf-8") for s in self.specs]
        self._expanded: dict[tuple[str, ...], tuple[int, ...]] = {}
        # per `names`: the matcher indices wanted, and whether one of them is scanned per
        # text (so a joined value always "may match"); `may_match` runs on every decision
        # of a redact rule, where working these out again was a fifth of a 200 B decide
        self._may: dict[tuple[str, ...], tuple[frozenset[int], bool]] = {}

    # -- the Set pass --------------------------------------------------------------------

    def _candidates(self, data: bytes) -> list[int]:
        """Indices the Set reports for `data`, sentinel removed; ScanError on engine failure."""
        hits = self._set_match(data)
        sentinel = self._sentinel
        if len(hits) == 1 and hits[0] == sentinel:
            return []
        if sentinel not in hits:
            raise ScanError("RE2 set match failed (DFA out of memory); failing closed")
        return [i for i in hits if i != sentinel]

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise ScanError(
                f"value too large to scan: {size} bytes of text (limit {self.max_bytes})"
            )

    def _encode_one(self, text: str) -> bytes:
        self._check_size(len(text))  # a lower bound of the UTF-8 size: refuse before encoding
        data = _encode(text)
        self._check_size(len(data))
        return data

    def _join(self, value: object) -> tuple[list[str], bytes]:
        """The texts of `value` and their UTF-8 joined with "\\n" (refused past the limits)."""
        texts = iter_strings(value, self.max_depth)
        joined = "\n".join(texts)
        self._check_size(len(joined))  # a lower bound of the UTF-8 size: refuse before encoding
        data = _encode(joined)
        self._check_size(len(data))
        return texts, data

    @staticmethod
    def _parts(texts: list[str], data: bytes) -> _Joined:
        """Each text encoded on its own, with its offset in the joined buffer."""
        parts = [_encode(t) for t in texts]
        starts = []
        at = 0
        for part in parts:
            starts.append(at)
            at += len(part) + 1
        return _Joined(parts, data, starts, {})

    # -- candidate spans -----------------------------------------------------------------

    def _searcher(self, i: int, joined: bool, ascii: bool) -> engine.SearchFn:
        """Matcher `i`'s search over one text (`joined`: over texts joined with newlines;
        `ascii`: its `ascii_pattern`, for an all-ASCII buffer), compiled the first time it
        is needed; a race only compiles it twice."""
        spec = self.specs[i]
        pattern = spec.ascii_pattern if ascii and spec.ascii_pattern else spec.pattern
        try:
            rx = re2.compile(f"(?m:{pattern})" if joined else pattern, self._opts)
        except re2.error as err:  # the Set parsed it (or holds its prefilter): fail closed
            raise ScanError(f"matcher {self.specs[i].name}: RE2 rejects the pattern ({err})") \
                from None
        search = engine.searcher(rx)
        self._searches[joined + 2 * ascii][i] = search
        return search

    def _walk(
        self, i: int, data: bytes, budget: _Budget, joined: bool = False, pos: int = 0
    ) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
        """Matcher `i`'s candidates in `data` from `pos` on, left to right: (value start,
        value end, spans of every group). The value is the first capture group from the
        spec's `group` on that took part (a pattern may hold the value in one of several
        alternatives). RE2 still sees the text before `pos` for `^` and `\\b`."""
        ascii = self._ascii[i] and data.isascii()
        search = self._searches[joined + 2 * ascii][i] or self._searcher(i, joined, ascii)
        group = self._groups[i]
        end = len(data)
        while pos <= end:
            spans = search(data, pos)
            if spans is None:
                return
            budget.left -= 1
            if budget.left < 0:
                budget.exceeded(self.specs[i].name)
            start, stop = spans[group]
            if start < 0 and group:
                start, stop = next((s for s in spans[group + 1 :] if s[0] >= 0), (-1, -1))
            yield start, stop, spans
            # Resume after the value, not after the whole match: a consumed boundary
            # character may be the left boundary of the next value.
            nxt = stop if stop > pos else spans[0][1]
            pos = nxt if nxt > pos else _next_char(data, pos)

    def _spans(
        self, i: int, data: bytes, budget: _Budget, pos: int = 0
    ) -> Iterator[tuple[int, int]]:
        """Validated byte spans of matcher `i` in one text from `pos` on, left to right,
        non-overlapping."""
        validator = self._validators[i]
        for start, stop, _ in self._walk(i, data, budget, pos=pos):
            if start >= 0 and (validator is None or validator(_decode(data[start:stop]))):
                yield start, stop

    def _texts_with(self, i: int, j: _Joined, budget: _Budget) -> Iterator[int]:
        """Indices of the texts where matcher `i` may match, each once, in order: those that
        a match of its multi-line form in the joined buffer touches. Every text holding a
        real match is among them (see `anchors.py`)."""
        if i in self._per_text:
            yield from range(len(j.parts))
            return
        if len(j.parts) <= FEW_TEXTS:
            # A few texts: a Set pass over each costs less than walking the joined buffer.
            for k, part in enumerate(j.parts):
                found = j.sets.get(k)
                if found is None:
                    found = j.sets[k] = self._candidates(part)
                if i in found:
                    yield k
            return
        # Imported here: only a value of many texts with a candidate gets this far; the
        # scanner's import (every hook call's first decision) is ~0.4 ms lighter without it.
        from bisect import bisect_right

        starts = j.starts
        last = -1
        for _, _, spans in self._walk(i, j.data, budget, joined=True):
            m_start, m_end = spans[0]
            first = max(last + 1, bisect_right(starts, m_start) - 1)
            stop = bisect_right(starts, max(m_start, m_end - 1)) - 1
            yield from range(first, stop + 1)
            last = max(last, stop)

    def _first_chunks(self, data: bytes, wanted: list[int]) -> dict[int, int]:
        """For a long text: per matcher, the start of the first `CHUNK`-byte slice in which
        the Set finds a candidate of it. Its own regex then starts there, rather than walk
        the text before it. A candidate across two slices is seen by neither; so a search
        from there that confirms nothing is redone from the start."""
        found: dict[int, int] = {}
        for at in range(0, len(data), CHUNK):
            hits = self._set_match(data[at : at + CHUNK])
            if self._sentinel not in hits:
                return {}  # the engine failed on a slice: search everything from the start
            for i in hits:
                found.setdefault(i, at)
            if all(i in found for i in wanted):
                break
        return found

    def _text_names(self, data: bytes, budget: _Budget) -> list[str]:
        """Names of the matchers with a validated match in one text."""
        candidates = self._candidates(data)
        if not candidates:
            return []
        firsts = self._first_chunks(data, candidates) if len(data) > 2 * CHUNK else {}
        names = []
        for i in candidates:
            at = firsts.get(i, 0)
            if (
                self._set_exact[i]
                or next(self._spans(i, data, budget, at), None) is not None
                or (at > 0 and next(self._spans(i, data, budget), None) is not None)
            ):
                names.append(self.specs[i].name)
        return names

    def _may_match(self, data: bytes) -> list[int]:
        """Matchers that may match somewhere in the joined value: the Set's candidates and
        the matchers scanned text by text."""
        found = self._candidates(data)
        found.extend(i for i in self._per_text if i not in found)
        return found

    # -- public API ----------------------------------------------------------------------

    def scan(self, value: object) -> frozenset[str]:
        """Names of the matchers with at least one validated match anywhere inside `value`.

        Strings are scanned whole; dicts (keys and values), lists, tuples and sets are
        walked; ints are scanned as decimal text, bytes as UTF-8. Raises ScanError rather
        than answer "nothing found" when the engine fails or the value is past the limits.
        """
        budget = _Budget(self.max_candidates)
        if type(value) is str:
            found = self._text_names(self._encode_one(value), budget)
            return frozenset(found) if found else _EMPTY
        texts, data = self._join(value)
        may = self._may_match(data) if texts else []
        if not may:
            return _EMPTY
        j = self._parts(texts, data)
        names = []
        for i in may:
            if any(
                next(self._spans(i, j.parts[k], budget), None) is not None
                for k in self._texts_with(i, j, budget)
            ):
                names.append(self.specs[i].name)
        return frozenset(names) if names else _EMPTY

    def expand(self, names: Collection[str]) -> tuple[int, ...]:
        """Matcher indices for spec or group names, in priority order, without duplicates.
        Raises KeyError for a name this scanner does not know."""
        key = tuple(names)
        cached = self._expanded.get(key)
        if cached is not None:
            return cached
        out: list[int] = []
        for name in key:
            if name in self._index:
                members: Sequence[str] = (name,)
            elif name in GROUPS:
                members = [m for m in GROUPS[name] if m in self._index]
            else:
                raise KeyError(f"matcher {name!r} is not in this scanner")
            out.extend(self._index[m] for m in members if self._index[m] not in out)
        result = tuple(out)
        self._expanded[key] = result
        return result

    def may_match(self, value: object, names: Collection[str]) -> bool:
        """Whether the Set pass finds a candidate of any of `names` in `value` (unvalidated:
        False means there is certainly nothing to redact)."""
        key = tuple(names)
        plan = self._may.get(key)
        if plan is None:
            wanted = self.expand(key)
            plan = self._may[key] = (
                frozenset(wanted),
                any(i in self._per_text for i in wanted),
            )
        wanted_set, per_text = plan
        if type(value) is str:
            data = self._encode_one(value)
        else:
            texts, data = self._join(value)
            if not texts:
                return False
            if per_text:
                return True
        candidates = self._candidates(data)
        return bool(candidates) and not wanted_set.isdisjoint(candidates)

    def _hits(self, data: bytes, wanted: tuple[int, ...], budget: _Budget) -> list[Hit]:
        """Chosen (non-overlapping) hits of `wanted` in one text."""
        candidates = self._candidates(data)
        if not candidates:
            return []
        hits: list[Hit] = []
        for priority, i in enumerate(wanted):
            if i in candidates:
                hits.extend(Hit(s, e, priority, i) for s, e in self._spans(i, data, budget))
        return redaction.select(hits)

    def _value_hits(
        self, value: object, wanted: tuple[int, ...]
    ) -> tuple[list[bytes], dict[int, list[Hit]]]:
        """The encoded texts of `value` and the chosen hits per text index (texts without
        a hit are absent)."""
        budget = _Budget(self.max_candidates)
        if type(value) is str:
            data = self._encode_one(value)
            chosen = self._hits(data, wanted, budget)
            return [data], ({0: chosen} if chosen else {})
        texts, data = self._join(value)
        may = self._may_match(data) if texts else []
        if not may:
            return [], {}
        j = self._parts(texts, data)
        found: dict[int, list[Hit]] = {}
        for priority, i in enumerate(wanted):
            if i not in may:
                continue
            for k in self._texts_with(i, j, budget):
                for s, e in self._spans(i, j.parts[k], budget):
                    found.setdefault(k, []).append(Hit(s, e, priority, i))
        return j.parts, {k: redaction.select(h) for k, h in found.items()}

    def _tally(self, hits: dict[int, list[Hit]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chosen in hits.values():
            for h in chosen:
                name = self.specs[h.matcher].name
                counts[name] = counts.get(name, 0) + 1
        return counts

    def count(self, value: object, name: str) -> int:
        """Validated, non-overlapping matches of one matcher (or group) inside `value`."""
        _, hits = self._value_hits(value, self.expand((name,)))
        return sum(len(h) for h in hits.values())

    def counts(self, value: object, names: Collection[str]) -> dict[str, int]:
        """What `redact(value, names)` would replace, per matcher name, without building the
        redacted value (empty when nothing matches)."""
        _, hits = self._value_hits(value, self.expand(names))
        return self._tally(hits)

    def find(self, text: str, names: Collection[str] | None = None) -> list[Finding]:
        """Chosen matches in one string with *character* offsets (correct for non-ASCII
        text). `names` defaults to every matcher; overlaps are resolved as in `redact`."""
        wanted = self.expand(names) if names is not None else tuple(range(len(self.specs)))
        data = self._encode_one(text)
        chosen = self._hits(data, wanted, _Budget(self.max_candidates))
        if len(data) == len(text):  # ASCII: byte and character offsets coincide
            return [Finding(self.specs[h.matcher].name, h.start, h.end) for h in chosen]
        out = []
        for h in chosen:
            start = len(_decode(data[: h.start]))
            out.append(
                Finding(
                    self.specs[h.matcher].name, start, start + len(_decode(data[h.start : h.end]))
                )
            )
        return out

    def redact(self, value: object, names: Collection[str]) -> tuple[object, dict[str, int]]:
        """`value` with every match of `names` replaced by its placeholder (`[EMAIL]`),
        structure preserved, and the number of replacements per matcher name (never the
        matched text). Dict keys are redacted too; ints that match become strings. When
        nothing matches, `value` itself is returned and nothing is copied."""
        parts, hits = self._value_hits(value, self.expand(names))
        if not hits:
            return value, {}
        counts = self._tally(hits)
        splice = redaction.splice
        texts = {k: _decode(splice(parts[k], h, self._placeholders)) for k, h in hits.items()}
        if type(value) is str:
            return texts[0], counts
        try:
            tree = walk.Tree(value, self.max_depth)
        except walk.WalkError as err:  # the first walk succeeded; this is for type checkers
            raise ScanError(str(err)) from None
        return tree.rebuild({tree.leaves[k][0]: t for k, t in texts.items()}), counts
