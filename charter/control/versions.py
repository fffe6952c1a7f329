"""Last-known-good versions on disk (L-K2): every activated version's compiled policy in
`state_dir/versions/`, the newest few kept, read back without the compiler."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from charter.runtime.policy import Policy
from charter.stdlib.files import replace_file

__all__ = ["KEEP", "VersionStore"]

KEEP = 5  # versions kept


class VersionStore:
    """`state_dir/versions/{seq:08d}-{digest}.policy` (`Policy.dumps`), each with a
    `.json` beside it (source digest, actor, time); written by tmp+rename."""

    def __init__(self, state_dir: str | os.PathLike[str], keep: int = KEEP) -> None:
        self.dir = Path(state_dir) / "versions"
        self.keep = keep

    def _entries(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("*.policy"))

    def save(self, policy: Policy, source_digest: str | None, actor: str) -> Path:
        """Keep `policy` (a newer file than any kept); drops the oldest beyond `keep`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entries = self._entries()
        seq = int(entries[-1].name.split("-", 1)[0]) + 1 if entries else 1
        path = self.dir / f"{seq:08d}-{policy.digest}.policy"
        replace_file(path, policy.dumps())
        meta = {
            "digest": policy.digest,
            "source_digest": source_digest,
            "actor": actor,
            "since": time.time(),
        }
        replace_file(path.with_suffix(".json"), json.dumps(meta).encode())
        for old in self._entries()[: -self.keep]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return path

    def history(self) -> list[dict[str, object]]:
        """The kept versions, oldest first: digest, source digest, actor, since."""
        out = []
        for path in self._entries():
            try:
                meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            digest = path.stem.split("-", 1)[1] if "-" in path.stem else path.stem
            out.append({**(meta if isinstance(meta, dict) else {}), "digest": digest})
        return out

    def load(self, digest: str) -> tuple[Policy, dict[str, object]] | None:
        """The newest kept version with this policy digest; None when none loads."""
        for path in reversed(self._entries()):
            if path.stem.endswith("-" + digest):
                try:
                    policy = Policy.loads(path.read_bytes())
                    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                return policy, meta if isinstance(meta, dict) else {}
        return None

    def newest(self) -> tuple[Policy, dict[str, object]] | None:
        """The newest kept version that loads, with its metadata; None when none does."""
        for path in reversed(self._entries()):
            try:
                policy = Policy.loads(path.read_bytes())
            except (OSError, ValueError):
                continue  # a torn or foreign file: try the one before
            try:
                meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            return policy, meta if isinstance(meta, dict) else {}
        return None

