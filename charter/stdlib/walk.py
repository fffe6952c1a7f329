"""Walking a request value without recursion: its scannable texts, and rebuilding it.

A value is a tree of dicts, lists, tuples and sets whose leaves are strings, integers, bytes
and other scalars. Scanning needs only the texts in order (`texts`); redaction also needs the
shape, to put the redacted texts back (`Tree`). Both walks use an explicit stack, so a value
nested thousands of levels deep neither overflows Python's stack nor fails half-way: past
`max_depth` levels (or a cycle, which is infinitely deep) the walk raises `WalkError` with the
reason, and the caller refuses the value as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import cast

_CONTAINERS = (list, tuple, set, frozenset)
_NODES = (dict, *_CONTAINERS)


class WalkError(Exception):
    """The value cannot be walked within the limits (too deep, or cyclic)."""


def leaf_text(item: object) -> str | None:
    """The text a leaf is scanned as: a string itself, an int in decimal (a card number sent
    as a JSON number is still a card number), bytes as UTF-8; None for other scalars."""
    if isinstance(item, str):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    if isinstance(item, bytes | bytearray):
        return bytes(item).decode("utf-8", "replace")
    return None


def _too_deep(max_depth: int) -> WalkError:
    return WalkError(f"value nested deeper than {max_depth} levels (or cyclic)")


def _children(item: object) -> Iterator[object]:
    if isinstance(item, dict):
        return chain.from_iterable(item.items())  # key, value, key, value, ...
    return iter(cast("Iterable[object]", item))


def texts(value: object, max_depth: int) -> list[str]:
    """Every scannable text inside `value`, in pre-order: dict keys and values (key first),
    container items. A stack of iterators keeps the order without recursion."""
    if type(value) is str:
        return [value]
    out: list[str] = []
    add = out.append
    if type(value) is dict:  # the usual arguments: a flat dict of scalars
        for k, v in value.items():
            if type(k) is not str or isinstance(v, _NODES):
                out.clear()
                break
            add(k)
            text = v if type(v) is str else leaf_text(v)
            if text is not None:
                add(text)
        else:
            return out
    stack: list[Iterator[object]] = [iter((value,))]
    while stack:
        for item in stack[-1]:
            kind = type(item)
            if kind is str:
                add(item)  # type: ignore[arg-type]
            elif kind is dict or isinstance(item, _NODES):
                if len(stack) > max_depth:
                    raise _too_deep(max_depth)
                stack.append(_children(item))
                break
            else:
                text = leaf_text(item)
                if text is not None:
                    add(text)
        else:
            stack.pop()
    return out


class Tree:
    """`value` flattened in pre-order: `nodes[i]` is the original object, `children[i]` the
    node indices of a container's items (a dict's as key, value, key, value, ...) or None for a
    leaf, and `leaves` the (node index, text) of every scannable leaf, in `texts` order."""

    __slots__ = ("nodes", "children", "leaves")

    def __init__(self, value: object, max_depth: int) -> None:
        self.nodes: list[object] = []
        self.children: list[list[int] | None] = []
        self.leaves: list[tuple[int, str]] = []
        # (object, depth, parent's child list to append this node's index to)
        stack: list[tuple[object, int, list[int] | None]] = [(value, 0, None)]
        while stack:
            item, depth, into = stack.pop()
            index = len(self.nodes)
            if into is not None:
                into.append(index)
            self.nodes.append(item)
            if isinstance(item, _NODES):
                if depth >= max_depth:
                    raise _too_deep(max_depth)
                kids: list[int] = []
                self.children.append(kids)
                items = (
                    [x for kv in item.items() for x in kv] if isinstance(item, dict) else list(item)
                )
                stack.extend((x, depth + 1, kids) for x in reversed(items))
            else:
                self.children.append(None)
                text = leaf_text(item)
                if text is not None:
                    self.leaves.append((index, text))

    def rebuild(self, replaced: dict[int, str]) -> object:
        """The value with leaf `i` replaced by `replaced[i]`; every container is rebuilt (the
        result shares no container with the input). A bytes leaf stays bytes; an int leaf
        that changed becomes its redacted text. Two dict keys that redact to the same text
        are kept apart as `[EMAIL]`, `[EMAIL]#2`, ..."""
        built: list[object] = [None] * len(self.nodes)
        for i in range(len(self.nodes) - 1, -1, -1):
            kids = self.children[i]
            node = self.nodes[i]
            if kids is None:
                new = replaced.get(i)
                if new is None:
                    built[i] = node
                elif isinstance(node, bytes | bytearray):
                    built[i] = type(node)(new.encode("utf-8"))
                else:
                    built[i] = new
            elif isinstance(node, dict):
                built[i] = _rebuild_dict(built, kids)
            else:
                items = [built[k] for k in kids]
                built[i] = items if isinstance(node, list) else _like(node, items)
        return built[0]


def _rebuild_dict(built: list[object], kids: list[int]) -> dict[object, object]:
    out: dict[object, object] = {}
    for j in range(0, len(kids), 2):
        key, n = built[kids[j]], 2
        base = key
        while key in out:
            key = f"{base}#{n}"
            n += 1
        out[key] = built[kids[j + 1]]
    return out


def _like(node: object, items: list[object]) -> object:
    if isinstance(node, tuple):
        return tuple(items)
    return frozenset(items) if isinstance(node, frozenset) else set(items)
