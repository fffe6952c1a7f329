"""Manifest mode for a watched directory (L-G6): `.charter-manifest.json` lists the policy
and test files with their SHA-256, and the deployer writes it last. With
`watch(path, require_manifest=True)` a directory is gated only when the manifest lists
exactly the files present with matching hashes, so a half-copied directory is "not ready"
(nothing is gated, nothing rejected, the active version serves) rather than "broken".
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from charter.control.gate import SourceSnapshot
from charter.stdlib.files import replace_file

__all__ = ["DIR_MANIFEST", "manifest_problem", "write_manifest"]

DIR_MANIFEST = ".charter-manifest.json"  # hidden: never read as a policy file
FORMAT = "charter-dir-manifest/1"


def _files(snap: SourceSnapshot) -> dict[str, str]:
    return {
        Path(name).name: hashlib.sha256(text.encode("utf-8")).hexdigest()
        for name, text in snap.files
    }


def write_manifest(path: str | os.PathLike[str], *, builder: str = "") -> Path:
    """Write `path/.charter-manifest.json` for the files there now (tmp+rename); run it
    after every other file of a deploy is in place."""
    from charter.control.gate import snapshot

    snap = snapshot(Path(path))
    if snap.error is not None:
        raise ValueError(snap.error)
    data = {
        "format": FORMAT,
        "files": _files(snap),
        "source_digest": snap.source_digest,
        "builder": builder,
        "built_at": time.time(),
    }
    out = Path(path) / DIR_MANIFEST
    replace_file(out, json.dumps(data, indent=2, sort_keys=True).encode(), fsync=False)
    return out


def manifest_problem(snap: SourceSnapshot) -> str | None:
    """Why the snapshot is not ready under manifest mode (None: it is): no manifest, an
    unreadable one, a file present and not listed, listed and absent, or another hash."""
    where = snap.directory / DIR_MANIFEST
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {DIR_MANIFEST} in {snap.directory}"
    except (OSError, ValueError) as err:
        return f"{where} cannot be read: {err}"
    listed = data.get("files") if isinstance(data, dict) else None
    if not isinstance(listed, dict) or data.get("format") != FORMAT:
        return f"{where} is not a {FORMAT} manifest"
    present = _files(snap)
    extra = sorted(set(present) - set(listed))
    if extra:
        return f"{extra[0]} is present but not in {DIR_MANIFEST}"
    missing = sorted(set(listed) - set(present))
    if missing:
        return f"{DIR_MANIFEST} lists {missing[0]}, which is absent"
    for name in sorted(present):
        if present[name] != listed[name]:
            return f"{name} does not match its SHA-256 in {DIR_MANIFEST}"
    return None
