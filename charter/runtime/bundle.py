"""Signed policy bundles: the format, signing and verification (issue 16, L-S2, L-S4).

A bundle is a tar holding `manifest.json`, `manifest.sig`, the policy's sources under
`src/` and the compiled artifact (`policy.compiled`, `Policy.dumps`). The manifest lists
every other file with its SHA-256 and carries `policy_digest`, `source_digest`, the gate's
result, `built_at`, `builder` and `key_id`; `manifest.sig` signs the manifest's exact bytes.

Verification follows OPA's order, and the first failing step refuses the whole bundle:
signature -> the archive holds exactly the listed files -> every hash -> the loaded
artifact's digest equals `policy_digest`. A host loads only the compiled artifact, so this
module (and everything that follows bundles) never imports the compiler or Lark; the gate
ran where the bundle was built (`charter.control.bundle`) and its result is in the manifest.

Keys: a key ring maps `key_id` to a key. `bytes` are an HMAC-SHA256 secret (stdlib, as
grants are signed); an Ed25519 public key (`load_key` of a PEM file, needs `cryptography`)
verifies, so hosts hold no signing secret. The algorithm follows the ring's key, never the
signature file, so a bundle cannot choose a weaker check (JWT's `alg` confusion).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.runtime.policy import Policy

__all__ = [
    "ARTIFACT",
    "FORMAT",
    "MANIFEST",
    "SIGNATURE",
    "Bundle",
    "BundleError",
    "load_key",
    "manifest_of",
    "pack",
    "parse_key",
    "read_bundle",
    "source_digest",
    "verify_bundle",
]

FORMAT = "charter-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ARTIFACT = "policy.compiled"
SOURCES = "src/"
HMAC = "hmac-sha256"
ED25519 = "ed25519"
#: a bundle larger than this is refused before it is read (memory is bounded)
MAX_BYTES = 64 * 1024 * 1024
# Signed bytes start with this, so a bundle signature can never pass for a grant or a
# control write signed with the same key (and the other way round).
_DOMAIN = FORMAT.encode() + b"\0"


class BundleError(ValueError):
    """A bundle that must not be served. `stage` names the step that refused it: `read`,
    `signature`, `manifest`, `files`, `hashes`, `gate`, `artifact` or `digest`."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"bundle refused at {stage}: {message}")
        self.stage = stage
        self.detail = message


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle: its policy (loaded from the compiled artifact) and manifest."""

    policy: Policy
    manifest: dict[str, Any]
    digest: str  # SHA-256 of the bundle's bytes, 16 hex: names it in Redis and in records
    signed: bool

    @property
    def policy_digest(self) -> str:
        return str(self.manifest["policy_digest"])

    @property
    def source_digest(self) -> str:
        return str(self.manifest["source_digest"])

    @property
    def key_id(self) -> str | None:
        kid = self.manifest.get("key_id")
        return kid if isinstance(kid, str) else None

    @property
    def builder(self) -> str:
        return str(self.manifest.get("builder") or "")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_digest(sources: Mapping[str, bytes]) -> str:
    """The gate's source digest (`charter.control.gate.snapshot`) of files by base name:
    SHA-256 over `name NUL bytes NUL`, sorted by name, 16 hex."""
    h = hashlib.sha256()
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + sources[name] + b"\0")
    return h.hexdigest()[:16]


# ── keys ─────────────────────────────────────────────────────────────────────


def load_key(path: str | os.PathLike[str]) -> Any:
    """A key from a file: a PEM Ed25519 private key (signs) or public key (verifies), both
    needing `cryptography`; anything else is an HMAC secret written as hex, as
    `charter serve --secret-file` reads it. Raises ValueError naming the file."""
    where = Path(path)
    try:
        raw = where.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read key file {where}: {err}") from None
    return parse_key(raw, str(where))


def parse_key(raw: bytes, where: str = "key") -> Any:
    """A key from its text, as `load_key` reads a file (`where` names it in errors)."""
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ed25519
        except ImportError:
            raise ValueError(
                f"{where} is a PEM key: Ed25519 needs the `cryptography` package"
            ) from None
        try:
            key: Any
            if b"PRIVATE KEY" in raw:
                key = serialization.load_pem_private_key(raw, password=None)
                ok = isinstance(key, ed25519.Ed25519PrivateKey)
            else:
                key = serialization.load_pem_public_key(raw)
                ok = isinstance(key, ed25519.Ed25519PublicKey)
        except ValueError as err:
            raise ValueError(f"{where}: not a PEM key ({err})") from None
        if not ok:
            raise ValueError(f"{where}: only Ed25519 PEM keys are supported")
        return key
    try:
        secret = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{where}: an HMAC key file holds the secret as hex") from None
    if len(secret) < 16:
        raise ValueError(f"{where}: an HMAC secret needs at least 16 bytes")
    return secret


def _alg(key: Any) -> str:
    """The algorithm a key stands for; ValueError for anything that is not a key."""
    if isinstance(key, bytes | bytearray):
        if not key:
            raise ValueError("an HMAC secret must not be empty")
        return HMAC
    kind = type(key).__name__
    if kind.startswith("Ed25519") or "ed25519" in type(key).__module__:
        return ED25519
    raise ValueError(f"not a bundle key: {kind} (bytes for HMAC, or an Ed25519 key)")


def _sign(key: Any, manifest: bytes) -> str:
    if _alg(key) == HMAC:
        return hmac.new(bytes(key), _DOMAIN + manifest, hashlib.sha256).hexdigest()
    if not hasattr(key, "sign"):
        raise ValueError("signing with Ed25519 needs the private key")
    signature: bytes = key.sign(_DOMAIN + manifest)
    return signature.hex()


def _verify(key: Any, manifest: bytes, signature: str) -> bool:
    if _alg(key) == HMAC:
        good = hmac.new(bytes(key), _DOMAIN + manifest, hashlib.sha256).hexdigest()
        return hmac.compare_digest(good.encode(), signature.encode("utf-8", "surrogatepass"))
    from cryptography.exceptions import InvalidSignature

    public = key.public_key() if hasattr(key, "public_key") else key
    try:
        public.verify(bytes.fromhex(signature), _DOMAIN + manifest)
    except (InvalidSignature, ValueError):
        return False
    return True


# ── writing ──────────────────────────────────────────────────────────────────


def pack(
    sources: Mapping[str, bytes],
    artifact: bytes,
    *,
    policy_digest: str,
    gate: Mapping[str, Any],
    builder: str,
    key: Any = None,
    key_id: str | None = None,
    built_at: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The bytes of a bundle of `sources` (base name -> bytes) and `artifact`, signed with
    `key` under `key_id` (both or neither: unsigned). The caller ran the gate; `gate` is
    its summary and must say `ok`."""
    if (key is None) != (key_id is None):
        raise ValueError("a signed bundle needs both a key and a key id")
    if not gate.get("ok"):
        raise ValueError("a bundle is only written for a version that passed the gate")
    files = {ARTIFACT: artifact, **{SOURCES + n: data for n, data in sorted(sources.items())}}
    for name in sources:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"a source name is a base name: {name!r}")
    manifest = {
        "format": FORMAT,
        "policy_digest": policy_digest,
        "source_digest": source_digest(sources),
        "artifact": ARTIFACT,
        "files": {name: _sha256(data) for name, data in files.items()},
        "gate": dict(gate),
        "built_at": time.time() if built_at is None else built_at,
        "builder": builder,
        "key_id": key_id,
        "alg": None if key is None else _alg(key),
        **(extra or {}),
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    members = [(MANIFEST, body)]
    if key is not None:
        sig = {"key_id": key_id, "alg": _alg(key), "signature": _sign(key, body)}
        members.append((SIGNATURE, json.dumps(sig).encode()))
    members += list(files.items())
    out = io.BytesIO()
    mtime = int(manifest["built_at"])
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# ── reading ──────────────────────────────────────────────────────────────────


def archive_members(data: bytes) -> dict[str, bytes]:
    """name -> bytes of every member; refuses what is not a plain tar of regular files."""
    if len(data) > MAX_BYTES:
        raise BundleError("read", f"{len(data)} bytes is more than the {MAX_BYTES} allowed")
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            total = 0
            for member in tar:
                name = member.name
                # Plain files only: a link, a directory or a sparse file (whose declared size
                # can be far beyond the archive's: a memory bomb) is refused.
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                    raise BundleError("files", f"{name!r} is not a regular file")
                total += member.size
                if total > MAX_BYTES:
                    raise BundleError("read", f"the members exceed the {MAX_BYTES} bytes allowed")
                if name.startswith("/") or ".." in name.split("/") or name in out:
                    raise BundleError("files", f"member name {name!r} is not allowed")
                handle = tar.extractfile(member)
                if handle is None:
                    raise BundleError("files", f"{name!r} has no content")
                content = handle.read()
                if len(content) != member.size:
                    raise BundleError("read", f"{name!r} is truncated")
                out[name] = content
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise BundleError("read", f"not a readable tar ({err})") from None
    if not out:
        raise BundleError("read", "not a bundle (an empty archive)")
    return out


def json_object(data: bytes, stage: str, what: str) -> dict[str, Any]:
    """`data` as a JSON object, or a `BundleError` at `stage` naming `what`."""
    try:
        value = json.loads(data)
    except ValueError as err:
        raise BundleError(stage, f"{what} is not JSON ({err})") from None
    if not isinstance(value, dict):
        raise BundleError(stage, f"{what} is not a JSON object")
    return value


def manifest_of(data: bytes) -> dict[str, Any]:
    """A bundle's manifest, unverified (for listings and records; hosts verify everything)."""
    body = archive_members(data).get(MANIFEST)
    if body is None:
        raise BundleError("read", f"not a bundle: no {MANIFEST}")
    return json_object(body, "manifest", MANIFEST)


def verify_bundle(
    data: bytes,
    keys: Mapping[str, Any] | None = None,
    *,
    allow_unsigned: bool = False,
) -> Bundle:
    """Verify bundle bytes and load its policy, or raise `BundleError` saying which step
    refused it. `keys`: the key ring (`key_id` -> key). An unsigned bundle is refused
    unless `allow_unsigned` (development); a bundle that carries a signature is always
    checked, `allow_unsigned` or not."""
    files = archive_members(bytes(data))
    body = files.pop(MANIFEST, None)
    if body is None:
        raise BundleError("read", f"not a bundle: no {MANIFEST}")
    raw_sig = files.pop(SIGNATURE, None)
    ring = keys or {}
    # 1. signature, over the manifest's bytes before anything in it is trusted
    sig_kid: str | None = None
    signed_alg: str | None = None
    if raw_sig is None:
        if not allow_unsigned:
            raise BundleError(
                "signature", "the bundle is unsigned (allow_unsigned=True is for development)"
            )
    else:
        sig = json_object(raw_sig, "signature", SIGNATURE)
        sig_kid, signature = sig.get("key_id"), sig.get("signature")
        if not isinstance(sig_kid, str) or not isinstance(signature, str):
            raise BundleError("signature", f"{SIGNATURE} needs a key_id and a signature")
        key = ring.get(sig_kid)
        if key is None:
            known = ", ".join(sorted(ring)) or "none"
            raise BundleError("signature", f"unknown key id {sig_kid!r} (key ring: {known})")
        try:
            alg = _alg(key)
            good = _verify(key, body, signature)
        except (ValueError, ImportError) as err:
            raise BundleError("signature", f"key {sig_kid!r}: {err}") from None
        if sig.get("alg") != alg:
            raise BundleError(
                "signature", f"key {sig_kid!r} is {alg}, the signature says {sig.get('alg')!r}"
            )
        signed_alg = alg
        if not good:
            raise BundleError("signature", f"bad signature (key id {sig_kid!r})")
    manifest = json_object(body, "manifest", MANIFEST)
    if manifest.get("format") != FORMAT:
        raise BundleError("manifest", f"format {manifest.get('format')!r}, expected {FORMAT}")
    if raw_sig is not None and manifest.get("key_id") != sig_kid:
        raise BundleError(
            "signature",
            f"the manifest names key {manifest.get('key_id')!r}, the signature {sig_kid!r}",
        )
    if raw_sig is not None and manifest.get("alg") != signed_alg:
        raise BundleError(
            "signature", f"the manifest says {manifest.get('alg')!r}, the signature {signed_alg}"
        )
    listed = manifest.get("files")
    artifact = manifest.get("artifact")
    if (
        not isinstance(listed, dict)
        or not all(isinstance(v, str) for v in listed.values())
        or not isinstance(artifact, str)
        or not isinstance(manifest.get("policy_digest"), str)
        or not isinstance(manifest.get("source_digest"), str)
        or not isinstance(manifest.get("gate"), dict)
    ):
        raise BundleError(
            "manifest", "needs files, artifact, policy_digest, source_digest and gate"
        )
    # 2. exactly the listed files
    extra = sorted(set(files) - set(listed))
    if extra:
        raise BundleError("files", f"{extra[0]!r} is in the archive but not in the manifest")
    missing = sorted(set(listed) - set(files))
    if missing:
        raise BundleError("files", f"the manifest lists {missing[0]!r}, the archive lacks it")
    # 3. every hash
    for name in sorted(listed):
        if not hmac.compare_digest(_sha256(files[name]), listed[name]):
            raise BundleError("hashes", f"{name!r} does not match its SHA-256 in the manifest")
    if artifact not in files:
        raise BundleError("manifest", f"the artifact {artifact!r} is not in the bundle")
    if manifest["gate"].get("ok") is not True:
        raise BundleError("gate", "the manifest says the version did not pass the gate")
    sources = {n[len(SOURCES) :]: d for n, d in files.items() if n.startswith(SOURCES)}
    if source_digest(sources) != manifest["source_digest"]:
        raise BundleError("digest", "the sources do not have the manifest's source_digest")
    # 4. the loaded artifact is the version the manifest names
    try:
        policy = Policy.loads(files[artifact])
    except Exception as err:  # noqa: BLE001 - whatever the loader raises, it is refused
        raise BundleError("artifact", f"{artifact!r} does not load ({err})") from None
    if policy.digest != manifest["policy_digest"]:
        raise BundleError(
            "digest",
            f"the artifact is policy {policy.digest}, the manifest says "
            f"{manifest['policy_digest']}",
        )
    return Bundle(policy, manifest, _sha256(bytes(data))[:16], raw_sig is not None)


def read_bundle(
    path: str | os.PathLike[str],
    keys: Mapping[str, Any] | None = None,
    *,
    allow_unsigned: bool = False,
) -> Bundle:
    """`verify_bundle` of the file at `path` (a read error is a `BundleError` at `read`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise BundleError("read", f"cannot read {path}: {err}") from None
    return verify_bundle(data, keys, allow_unsigned=allow_unsigned)
