"""Operations shared by generated code and the reference interpreter.

Anything here may raise; callers turn exceptions into request errors (interpreter) or fall
back to the interpreter (generated code), so both agree on every outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from charter.engine.operators import eq, key
from charter.engine.snapshot import Snapshot
from charter.stdlib.values import check_any, check_str, now_utc, to_time, type_name

_MISSING = object()


@lru_cache(maxsize=4096)
def like_pattern(glob: str) -> Any:
    """Cedar-style `like`: `*` matches any run of characters, `\\*` a literal star."""
    import re2  # here, not at the top: only policies with patterns pay for RE2 (~1.5 ms)

    return re2.compile("(?s)" + ".*".join(re2.escape(part) for part in glob_parts(glob)))


_NO_MATCH = (-1, -1)


def _tester(compiled: Any, anchor_name: str) -> Callable[[str], bool]:
    """`fn(text) -> bool` for a compiled RE2 pattern. google-re2's public `search` builds a
    match object per call; the extension's own `Match` on UTF-8 bytes is several times
    cheaper, and it is still RE2 doing the matching."""
    import re2

    raw = getattr(compiled, "_regexp", None)
    anchors = getattr(re2, "_Anchor", None)
    if raw is not None and anchors is not None and hasattr(raw, "Match"):
        match, anchor = raw.Match, getattr(anchors, anchor_name)

        def fast(text: str) -> bool:
            data = text.encode()
            return bool(match(anchor, data, 0, len(data))[0] != _NO_MATCH)

        return fast
    method = compiled.fullmatch if anchor_name == "ANCHOR_BOTH" else compiled.search
    return lambda text: method(text) is not None


def glob_parts(glob: str) -> list[str]:
    """The literal pieces of a glob between its unescaped stars."""
    parts, literal, i = [], "", 0
    while i < len(glob):
        if glob.startswith("\\*", i):
            literal += "*"
            i += 2
        elif glob[i] == "*":
            parts.append(literal)
            literal = ""
            i += 1
        else:
            literal += glob[i]
            i += 1
    parts.append(literal)
    return parts


@lru_cache(maxsize=4096)
def like_test(glob: str) -> Callable[[str], bool]:
    parts = glob_parts(glob)
    if len(parts) == 1:
        only = parts[0]
        return lambda text: text == only
    if len(parts) == 2:
        # `prefix*suffix`: the same strings RE2 would accept, without a regex call.
        head, tail = parts
        least = len(head) + len(tail)
        return lambda text: (len(text) >= least and text.startswith(head)
                             and text.endswith(tail))
    return _tester(like_pattern(glob), "ANCHOR_BOTH")


@lru_cache(maxsize=4096)
def search_test(pattern: str) -> Callable[[str], bool]:
    import re2

    return _tester(re2.compile(pattern), "UNANCHORED")


def like(value: object, glob: str) -> bool:
    return like_test(glob)(check_str(value))


def matches(value: object, pattern: str) -> bool:
    return search_test(pattern)(check_str(value))


def index(obj: Any, key: Any) -> Any:
    """`obj[key]`, read like an untyped field (floats as decimals, bytes as text). A map's
    key is looked up with `in`, as fields are: never through a subclass's `__missing__`
    (a `defaultdict` would gain the key, a `Counter` would read 0)."""
    if isinstance(obj, dict):
        if key not in obj:
            raise KeyError(key)
        return check_any(obj[key])
    if isinstance(obj, list | tuple) and type(key) is int:
        return check_any(obj[key])
    raise TypeError(f"cannot index {type(obj).__name__} with {type_name(key)}")


def now_of(req: Mapping[str, Any]) -> datetime:
    """The request's `now`, or the clock when the host did not send one."""
    v = req.get("now", _MISSING)
    return now_utc() if v is _MISSING or v is None else to_time(v)


def has(req: Mapping[str, Any], root: str, keys: Sequence[str], name: str) -> bool:
    if root == "tool":
        if keys == ("name",):
            return bool(name)
        obj: Any = req.get("tool")
        if not isinstance(obj, dict):
            return keys == ("tags",) and False
    elif root == "now":
        return True
    else:
        obj = req.get(root, _MISSING)
        if obj is _MISSING or obj is None:
            return False
    for k in keys:
        if not isinstance(obj, dict) or k not in obj or obj[k] is None:
            return False
        obj = obj[k]
    return True


_NO_LABELS: frozenset[str] = frozenset()


def labels(req: Mapping[str, Any], st: Snapshot | None) -> frozenset[str]:
    session = req.get("session")
    own = _NO_LABELS
    if isinstance(session, dict) and "labels" in session:
        raw = session["labels"]
        if not isinstance(raw, list | tuple) or any(type(x) is not str for x in raw):
            raise TypeError("session.labels: expected a list of strings")
        own = frozenset(raw)
    if st is None:
        return own
    return own | st.labels if own else st.labels


def counter(st: Snapshot, cid: str, key: object) -> int | Decimal:
    return st.counters.get((cid, check_str(key)), 0)


def estimate(req: Mapping[str, Any], field: str, check: Any) -> Any:
    est = req.get("estimate")
    if est is None:
        return 0
    v = est.get(field)
    return 0 if v is None else check(v)


def approved(st: Snapshot | None, group: str | None) -> bool:
    if st is None:
        return False
    return bool(st.approved_groups) if group is None else group in st.approved_groups


def previously(st: Snapshot | None, now: datetime | None, tool: str,
               fields: Sequence[tuple[str, object]], within: int | None) -> bool:
    """`now` is the decision's time; it is needed only with `within` and no `st.now`."""
    if st is None:
        return False
    calls = st.history.get(tool, ())
    if not calls:
        return False
    horizon = None
    if within is not None:
        if st.now is not None:
            horizon = st.now - within
        elif now is not None:
            horizon = now.timestamp() - within
        else:
            raise TypeError("previously ... within needs the time")
    for at, recorded in calls:
        if horizon is not None and at < horizon:
            continue
        if all(k in recorded and eq(recorded[k], v) for k, v in fields):
            return True
    return False


def make_set(*items: object) -> frozenset[object]:
    s = frozenset(items)
    if len(s) < len(items) and len({key(i) for i in items}) != len(s):
        # Python's set merges true with 1 and false with 0; the language keeps them apart.
        raise TypeError("a set cannot hold both a bool and a number (true and 1, false and 0)")
    return s


def make_list(*items: object) -> tuple[object, ...]:
    return items


def requester_ids(req: Mapping[str, Any]) -> frozenset[str]:
    """The ids of who asks for the action: `user.id` and `agent.id` when present."""
    ids = set()
    for part in ("user", "agent"):
        value = req.get(part)
        ident = value.get("id") if isinstance(value, dict) else None
        if type(ident) is str and ident:
            ids.add(ident)
    return frozenset(ids)


def approved_by(st: Snapshot | None, group: str, count: int) -> bool:
    """`approved by COUNT of "group"`: valid grants from that many different people."""
    return st is not None and len(st.approvers.get(group, ())) >= count
