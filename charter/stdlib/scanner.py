"""The matcher engine: every matcher of a policy in one RE2 Set, scanned once per string.

Scanning model:
1. Each string is encoded to UTF-8 once and run through the Set in one pass. The Set says
   which matchers have a *candidate* somewhere in the string.
2. Only for those matchers, the matcher's own RE2 regex walks the bytes to find candidate
   spans, and the validator (Luhn, mod-97, …) confirms each one. `scan` stops at the first
   confirmed match per matcher; a matcher without a validator is confirmed by the Set alone.
3. Containers are walked: dict keys and values, list/tuple/set items, at any depth. Integers
   are scanned as their decimal text (a card number sent as a JSON number is still a card
   number); other non-strings are skipped.

Fail closed: RE2's Set reports "out of memory" and "no match" the same way (an empty result)
through the Python binding, so the Set carries a sentinel pattern `\\z` that matches every
string. A result without the sentinel means the engine failed, and `ScanError` is raised —
never an empty answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

import re2

from charter.stdlib import engine, redaction
from charter.stdlib.matchers import GROUPS
from charter.stdlib.redaction import Hit
from charter.stdlib.spec import MatcherSpec

MAX_DEPTH = 128
"""Containers nested deeper than this are refused (ScanError) rather than half-scanned."""

DEFAULT_MAX_MEM = 64 << 20
"""RE2 memory budget for the Set (program plus DFA cache)."""

_EMPTY: frozenset[str] = frozenset()
_CONTAINERS = (list, tuple, set, frozenset)


class ScanError(Exception):
    """The engine could not give a trustworthy answer; the caller must fail closed."""


class Finding(NamedTuple):
    """A validated match in one string, in *character* offsets of that string."""

    name: str
    start: int
    end: int


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


def iter_strings(value: object) -> Iterator[str]:
    """Every string inside `value`: itself, dict keys and values, container items, and
    integers as decimal text. Raises ScanError beyond MAX_DEPTH levels of nesting."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise ScanError(f"value nested deeper than {MAX_DEPTH} levels")
            for k, v in item.items():
                stack.append((v, depth + 1))
                stack.append((k, depth + 1))
        elif isinstance(item, _CONTAINERS):
            if depth >= MAX_DEPTH:
                raise ScanError(f"value nested deeper than {MAX_DEPTH} levels")
            stack.extend((v, depth + 1) for v in reversed(list(item)))
        elif isinstance(item, int) and not isinstance(item, bool):
            yield str(item)


class Scanner:
    """All matchers of a policy compiled into one RE2 Set. Thread-safe; build once.

    Names accepted by `count` and `redact` are spec names or group names (`pii.any`,
    `secrets.any`), which stand for the group members present in this scanner.
    """

    __slots__ = (
        "specs",
        "_index",
        "_set",
        "_set_match",
        "_sentinel",
        "_search",
        "_validators",
        "_groups",
        "_placeholders",
        "_expanded",
    )

    def __init__(self, specs: Sequence[MatcherSpec], *, max_mem: int = DEFAULT_MAX_MEM) -> None:
        unique: dict[str, MatcherSpec] = {}
        for spec in specs:
            seen = unique.setdefault(spec.name, spec)
            if seen.pattern != spec.pattern:
                raise ValueError(f"two matchers named {spec.name!r} with different patterns")
        self.specs: tuple[MatcherSpec, ...] = tuple(unique.values())
        self._index = {s.name: i for i, s in enumerate(self.specs)}
        opts = engine.engine_options(max_mem)
        regex_set = re2.Set.SearchSet(opts)
        regexps = []
        for spec in self.specs:
            try:
                regex_set.Add(spec.pattern)
                regexps.append(re2.compile(spec.pattern, opts))
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
        self._search = [engine.searcher(rx) for rx in regexps]
        self._validators = [s.validator for s in self.specs]
        self._groups = [s.group for s in self.specs]
        self._placeholders = [s.placeholder.encode("utf-8") for s in self.specs]
        self._expanded: dict[tuple[str, ...], tuple[int, ...]] = {}

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

    def _spans(self, i: int, data: bytes) -> Iterator[tuple[int, int]]:
        """Validated byte spans of matcher `i` in `data`, left to right, non-overlapping."""
        search = self._search[i]
        validator = self._validators[i]
        group = self._groups[i]
        pos = 0
        end = len(data)
        while pos <= end:
            spans = search(data, pos)
            if spans is None:
                return
            start, stop = spans[group]
            if start >= 0 and (validator is None or validator(_decode(data[start:stop]))):
                yield start, stop
            # Resume after the value, not after the whole match: a consumed boundary
            # character may be the left boundary of the next value.
            nxt = stop if stop > pos else spans[0][1]
            pos = nxt if nxt > pos else _next_char(data, pos)

    def _text_names(self, text: str) -> frozenset[str]:
        data = _encode(text)
        candidates = self._candidates(data)
        if not candidates:
            return _EMPTY
        names = []
        for i in candidates:
            if (
                self._validators[i] is None
                and self._groups[i] == 0
                or next(self._spans(i, data), None) is not None
            ):
                names.append(self.specs[i].name)
        return frozenset(names)

    # -- public API ----------------------------------------------------------------------

    def scan(self, value: object) -> frozenset[str]:
        """Names of the matchers with at least one validated match anywhere inside `value`.

        Strings are scanned whole; dicts (keys and values), lists, tuples and sets are
        walked; ints are scanned as decimal text. Raises ScanError rather than answer
        "nothing found" when the engine fails.
        """
        if type(value) is str:
            return self._text_names(value)
        found: set[str] = set()
        for text in iter_strings(value):
            found |= self._text_names(text)
        return frozenset(found)

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

    def _hits(self, data: bytes, wanted: tuple[int, ...]) -> list[Hit]:
        candidates = self._candidates(data)
        if not candidates:
            return []
        hits: list[Hit] = []
        for priority, i in enumerate(wanted):
            if i in candidates:
                hits.extend(Hit(s, e, priority, i) for s, e in self._spans(i, data))
        return redaction.select(hits)

    def count(self, value: object, name: str) -> int:
        """Validated, non-overlapping matches of one matcher (or group) inside `value`."""
        wanted = self.expand((name,))
        return sum(len(self._hits(_encode(t), wanted)) for t in iter_strings(value))

    def find(self, text: str, names: Collection[str] | None = None) -> list[Finding]:
        """Chosen matches in one string with *character* offsets (correct for non-ASCII
        text). `names` defaults to every matcher; overlaps are resolved as in `redact`."""
        wanted = self.expand(names) if names is not None else tuple(range(len(self.specs)))
        data = _encode(text)
        chosen = self._hits(data, wanted)
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
        matched text). Dict keys are redacted too; ints that match become strings."""
        wanted = self.expand(names)
        counts: dict[str, int] = {}
        return self._redact(value, wanted, counts, 0), counts

    def _redact_text(self, text: str, wanted: tuple[int, ...], counts: dict[str, int]) -> str:
        data = _encode(text)
        chosen = self._hits(data, wanted)
        if not chosen:
            return text
        for h in chosen:
            name = self.specs[h.matcher].name
            counts[name] = counts.get(name, 0) + 1
        return _decode(redaction.splice(data, chosen, self._placeholders))

    def _redact(
        self, value: object, wanted: tuple[int, ...], counts: dict[str, int], depth: int
    ) -> object:
        if isinstance(value, str):
            return self._redact_text(value, wanted, counts)
        if isinstance(value, bool) or not isinstance(value, (int, dict, *_CONTAINERS)):
            return value
        if isinstance(value, int):
            text = str(value)
            redacted = self._redact_text(text, wanted, counts)
            return value if redacted == text else redacted
        if depth >= MAX_DEPTH:
            raise ScanError(f"value nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            out: dict[object, object] = {}
            for k, v in value.items():
                nk = self._redact(k, wanted, counts, depth + 1)
                # Two keys redacting to the same placeholder must not overwrite each other.
                base, n = nk, 2
                while nk in out:
                    nk = f"{base}#{n}"
                    n += 1
                out[nk] = self._redact(v, wanted, counts, depth + 1)
            return out
        items = [self._redact(v, wanted, counts, depth + 1) for v in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return tuple(items)
        return type(value)(items) if isinstance(value, frozenset) else set(items)
