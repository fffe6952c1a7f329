"""The hook's policy: a compiled policy cached by the digest of its source files.

A hook is a fresh process per tool call, so it must not parse and compile the policy every
time. `load_cached` reads the policy's files (the one discovery, `compiler.sources`), hashes
them with Charter's version and the saved format's, and loads `<cache>/<digest>.policy` with
`Policy.loads` — neither the parser, the compiler nor Lark is imported then. A miss (first
call, edited sources) compiles once and writes the entry atomically; a corrupt or foreign
entry is compiled again and replaced, never trusted and never fatal while the sources
compile. A policy that does not compile, or is missing, raises `PolicyUnavailable`; the hook
turns that into its blocking answer. `--policy` may also name a file saved by
`charter compile -o`, which is loaded as it is (a corrupt one then has nothing to rebuild
from: refused).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from charter.engine.tree import FORMAT
from charter.hosts.hook import PolicyUnavailable
from charter.runtime.policy import SAVE_MAGIC, Policy

__all__ = ["cache_dir", "digest_of", "load_cached"]


def cache_dir(env: dict[str, str] | os._Environ[str]) -> Path:
    """`CHARTER_CACHE_DIR`, else `$XDG_CACHE_HOME/charter/policies`, else
    `~/.cache/charter/policies`."""
    if env.get("CHARTER_CACHE_DIR"):
        return Path(env["CHARTER_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "charter" / "policies"


def digest_of(files: list[Path], blobs: list[bytes]) -> str:
    from charter import __version__

    h = hashlib.sha256(f"charter {__version__} format {FORMAT}\0".encode())
    for path, blob in zip(files, blobs, strict=True):
        h.update(path.name.encode("utf-8", "surrogateescape") + b"\0")
        h.update(len(blob).to_bytes(8, "big") + blob)
    return h.hexdigest()


def load_cached(path: Path, cache: Path, notes: list[str]) -> Policy:
    """The policy at `path` (sources or a saved policy); `notes` gets what stderr should
    say (a cache rebuilt). Raises `PolicyUnavailable`."""
    if not path.exists():
        raise PolicyUnavailable(f"{path}: no such file or directory")
    if path.is_file():
        try:
            head = path.read_bytes()
        except OSError as err:
            raise PolicyUnavailable(f"cannot read {path}: {err.strerror or err}") from None
        if head.startswith(SAVE_MAGIC):
            try:
                return Policy.loads(head)
            except Exception as err:  # noqa: BLE001 - any damage: refused, named
                raise PolicyUnavailable(
                    f"{path} is not a usable compiled policy ({err}); "
                    "compile it again with `charter compile`"
                ) from None
    from charter.compiler.sources import discover, nothing_found

    try:
        files = discover(path)
        blobs = [f.read_bytes() for f in files]
    except OSError as err:
        raise PolicyUnavailable(f"cannot read {err.filename}: {err.strerror}") from None
    if not files:
        raise PolicyUnavailable(nothing_found(path))
    entry = cache / f"{digest_of(files, blobs)}.policy"
    try:
        data = entry.read_bytes()
    except OSError:
        data = None
    if data is not None:
        try:
            return Policy.loads(data)
        except Exception as err:  # noqa: BLE001 - a damaged entry is rebuilt
            notes.append(f"charter: cached policy {entry} was unusable ({err}); rebuilt it")
    policy = _compile(files, blobs)
    _store(entry, policy.dumps(), notes)
    return policy


def _compile(files: list[Path], blobs: list[bytes]) -> Policy:
    from charter.compiler.pipeline import compile_sources
    from charter.language.source import Source

    sources = []
    for f, blob in zip(files, blobs, strict=True):
        try:
            sources.append(Source(str(f), blob.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise PolicyUnavailable(
                f"cannot read {f}: not UTF-8 ({err.reason} at byte {err.start})"
            ) from None
    comp = compile_sources(sources)
    if comp.errors or comp.compiled is None:
        shown = "\n".join(d.render(comp.sources.get(d.span.file)) for d in comp.errors[:5])
        raise PolicyUnavailable(f"the policy does not compile:\n{shown}")
    return Policy(comp.compiled)


def _store(entry: Path, data: bytes, notes: list[str]) -> None:
    """Write the entry atomically (a concurrent hook reads the old file or the new one,
    never half of one); a cache that cannot be written only costs speed."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".policy")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        notes.append(f"charter: cannot write the policy cache {entry}: {err}")
