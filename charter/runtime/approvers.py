"""Who may approve for a group: the Guard's directory of approvers.

`Guard(approvers=...)` takes one of
- a mapping `{"finance": ["alice", "bob"], ...}`;
- a path to a JSON file holding such a mapping (read once, when the Guard is made);
- a callable `(person, group) -> bool` (a directory service, an IdP lookup).

With a directory, `Guard.approve(by=..., group=...)` refuses a person who is not a member,
and `check` rejects a grant whose approver is not (any more) a member of its group. Without
one, any name is accepted, as before. Whatever the directory, a grant whose approver is the
requester (`user.id` of the request, or `agent.id`) never counts: nobody approves their own
action.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from charter.engine.support import approved_by, requester_ids

__all__ = ["Directory", "IsMember", "approved_by", "directory", "requester_ids"]

IsMember = Callable[[str, str], bool]
Directory = Mapping[str, Collection[str]] | str | os.PathLike[str] | IsMember


def directory(spec: Directory | None) -> IsMember | None:
    """A membership test for `spec`, or None when no directory is configured."""
    if spec is None:
        return None
    if callable(spec):
        return spec
    if isinstance(spec, str | os.PathLike):
        spec = _load(os.fspath(spec))
    groups = {str(g): frozenset(str(p) for p in people) for g, people in spec.items()}
    return lambda person, group: person in groups.get(group, ())


def _load(path: str) -> dict[str, list[str]]:
    import json  # here: only a directory file needs it; a hook call pays ~1.4 ms otherwise

    with open(path, encoding="utf-8") as f:  # not pathlib: a hook call would import it
        data: Any = json.loads(f.read())
    if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(type(p) is str for p in v) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of group -> list of people")
    return data
