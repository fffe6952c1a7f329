"""Signed bundles (issue 16, L-S2, L-S4): `charter bundle` gates and writes them; hosts
verify them in OPA's order and refuse every kind of tampering with a clear reason, the
active version untouched; a bundle file is a `Live` source watched with real `watchfiles`;
loading one imports no compiler, language or Lark."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import charter
from charter.cli.main import cli
from charter.control.bundle import build_bundle
from charter.control.gate import run_gate
from charter.runtime.bundle import (
    ARTIFACT,
    MANIFEST,
    SIGNATURE,
    BundleError,
    load_key,
    pack,
    verify_bundle,
)
from charter.runtime.changes import read_changes
from charter.runtime.live_bundle import watch_bundle
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = bytes(range(32))
KEYS = {"ops-1": SECRET}
TESTS = 'test "x is allowed" {\n  call "x" {n: 1}\n  expect allow\n}\n'
X = {"tool": "x", "args": {"n": 1}}


def policy_text(effect: str = "allow", tag: str = "a") -> str:
    return f'policy "p"\ndefault deny\ntool "x" (n: int)\n@id("{tag}")\n{effect} tool "x"\n'


def make_dir(where: Path, effect: str = "allow", tag: str = "a") -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "policy.agentpolicy").write_text(policy_text(effect, tag))
    (where / "policy_test.agentpolicy").write_text(TESTS if effect == "allow" else "")
    return where


def build(where: Path, key: object = SECRET, key_id: str | None = "ops-1", **kw: object) -> bytes:
    built = build_bundle(
        where, key=key, key_id=key_id if key is not None else None, builder="ci", **kw
    )  # type: ignore[arg-type]
    assert built.data is not None, built.gate.reason
    return built.data


def members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def retar(items: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def edit(data: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    return retar([(n, change(d) if n == name else d) for n, d in members(data)])


@pytest.fixture
def good(tmp_path: Path) -> bytes:
    return build(make_dir(tmp_path / "v1"))


# ── building ─────────────────────────────────────────────────────────────────


def test_a_bundle_holds_the_manifest_signature_sources_and_artifact(
    tmp_path: Path, good: bytes
) -> None:
    names = [n for n, _ in members(good)]
    assert names[:2] == [MANIFEST, SIGNATURE]
    assert set(names) == {
        MANIFEST,
        SIGNATURE,
        ARTIFACT,
        "src/policy.agentpolicy",
        "src/policy_test.agentpolicy",
    }
    manifest = json.loads(dict(members(good))[MANIFEST])
    result = run_gate(tmp_path / "v1")
    assert manifest["policy_digest"] == result.policy.digest  # type: ignore[union-attr]
    assert manifest["source_digest"] == result.source_digest
    assert manifest["gate"]["ok"] is True and manifest["gate"]["tests"]["passed"] == 1
    assert manifest["key_id"] == "ops-1" and manifest["builder"] == "ci"
    assert manifest["alg"] == "hmac-sha256" and manifest["built_at"] <= time.time()
    assert set(manifest["files"]) == set(names) - {MANIFEST, SIGNATURE}

    bundle = verify_bundle(good, KEYS)
    assert bundle.policy.digest == manifest["policy_digest"] and bundle.signed
    assert bundle.policy.decide(X).allowed
    assert bundle.key_id == "ops-1" and bundle.builder == "ci"


def test_a_version_that_fails_the_gate_gets_no_bundle(tmp_path: Path) -> None:
    where = make_dir(tmp_path / "v1")
    (where / "policy.agentpolicy").write_text(policy_text("deny"))  # its test now fails
    built = build_bundle(where, key=SECRET, key_id="ops-1")
    assert built.data is None and built.gate.stage_failed == "tests"


# ── verification: every tampering refused, in OPA's order ────────────────────


def _flip(data: bytes) -> bytes:
    return data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]


def _artifact_of_another_policy(tmp_path: Path) -> bytes:
    """Signed, every hash right, but the artifact is another policy than the manifest
    names (a builder bug or a forged build): caught by the last step."""
    where = make_dir(tmp_path / "v1")
    other = charter.compile(policy_text("deny", "b"))
    sources = {p.name: p.read_bytes() for p in sorted(where.iterdir())}
    return pack(
        sources,
        other.dumps(),
        policy_digest=charter.load(where).digest,
        gate={"ok": True},
        builder="ci",
        key=SECRET,
        key_id="ops-1",
    )


def _signed_garbage_artifact(tmp_path: Path) -> bytes:
    where = make_dir(tmp_path / "v1")
    sources = {p.name: p.read_bytes() for p in sorted(where.iterdir())}
    return pack(
        sources,
        b"not a compiled policy",
        policy_digest="0" * 16,
        gate={"ok": True},
        builder="ci",
        key=SECRET,
        key_id="ops-1",
    )


TAMPERING: dict[str, tuple[Callable[[bytes, Path], bytes], str, str]] = {
    "flipped byte in a source": (
        lambda d, _: edit(d, "src/policy.agentpolicy", _flip),
        "hashes",
        "'src/policy.agentpolicy' does not match its SHA-256",
    ),
    "flipped byte in the artifact": (
        lambda d, _: edit(d, ARTIFACT, _flip),
        "hashes",
        f"'{ARTIFACT}' does not match",
    ),
    "extra file": (
        lambda d, _: retar([*members(d), ("src/extra.agentpolicy", b'allow tool "*"\n')]),
        "files",
        "'src/extra.agentpolicy' is in the archive but not in the manifest",
    ),
    "missing file": (
        lambda d, _: retar([(n, b) for n, b in members(d) if n != "src/policy_test.agentpolicy"]),
        "files",
        "the manifest lists 'src/policy_test.agentpolicy', the archive lacks it",
    ),
    "manifest edited": (
        lambda d, _: edit(d, MANIFEST, lambda b: b.replace(b'"builder": "ci"', b'"builder": "x"')),
        "signature",
        "bad signature (key id 'ops-1')",
    ),
    "wrong key id": (
        lambda d, _: edit(d, SIGNATURE, lambda b: b.replace(b"ops-1", b"ops-9")),
        "signature",
        "unknown key id 'ops-9' (key ring: ops-1)",
    ),
    "wrong signature": (
        lambda d, _: edit(
            d,
            SIGNATURE,
            lambda b: json.dumps({**json.loads(b), "signature": "ab" * 32}).encode(),
        ),
        "signature",
        "bad signature",
    ),
    "signature removed": (
        lambda d, _: retar([(n, b) for n, b in members(d) if n != SIGNATURE]),
        "signature",
        "the bundle is unsigned",
    ),
    "artifact digest mismatch": (
        lambda _, tmp: _artifact_of_another_policy(tmp),
        "digest",
        "the manifest says",
    ),
    "artifact that does not load": (
        lambda _, tmp: _signed_garbage_artifact(tmp),
        "artifact",
        "does not load",
    ),
    "truncated tar": (lambda d, _: d[: len(d) // 2], "", ""),
    "truncated to the first member": (lambda d, _: d[:1536], "", ""),
    "not a tar": (lambda _d, _t: b"hello", "read", "not a readable tar"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_every_tampering_is_refused_with_a_clear_reason(
    case: str, good: bytes, tmp_path: Path
) -> None:
    tamper, stage, message = TAMPERING[case]
    bad = tamper(good, tmp_path / "t")
    with pytest.raises(BundleError) as caught:
        verify_bundle(bad, KEYS)
    if stage:
        assert caught.value.stage == stage, caught.value
        assert message in str(caught.value)
    assert str(caught.value).startswith("bundle refused at ")


def test_a_manifest_key_id_other_than_the_signatures_is_refused(good: bytes) -> None:
    # Both ids hold the same secret, so the signature checks; the manifest names the other.
    moved = edit(good, SIGNATURE, lambda b: b.replace(b"ops-1", b"ops-2"))
    with pytest.raises(BundleError, match="the manifest names key 'ops-1', the signature 'ops-2'"):
        verify_bundle(moved, {"ops-1": SECRET, "ops-2": SECRET})


def test_unsigned_bundles_only_with_allow_unsigned(tmp_path: Path) -> None:
    data = build(make_dir(tmp_path / "v1"), key=None, key_id=None)
    with pytest.raises(BundleError, match="unsigned"):
        verify_bundle(data, KEYS)
    bundle = verify_bundle(data, allow_unsigned=True)
    assert not bundle.signed and bundle.policy.decide(X).allowed
    # A signature that is present is checked, allow_unsigned or not.
    signed = build(make_dir(tmp_path / "v2"))
    with pytest.raises(BundleError, match="unknown key id"):
        verify_bundle(signed, {}, allow_unsigned=True)


def test_ed25519_hosts_hold_only_the_public_key(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "k.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    data = build(make_dir(tmp_path / "v1"), key=load_key(tmp_path / "k.pem"), key_id="ed-1")
    public = load_key(tmp_path / "k.pub")
    assert verify_bundle(data, {"ed-1": public}).manifest["alg"] == "ed25519"
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BundleError, match="bad signature"):
        verify_bundle(data, {"ed-1": other})
    # The ring's key type chooses the check: an HMAC-signed bundle under an Ed25519 id
    # (say, signed with the public key's bytes as a secret) is refused.
    pub_bytes = (tmp_path / "k.pub").read_bytes()
    forged = build(make_dir(tmp_path / "v2"), key=pub_bytes, key_id="ed-1")
    with pytest.raises(BundleError, match="is ed25519, the signature says 'hmac-sha256'"):
        verify_bundle(forged, {"ed-1": public})
    with pytest.raises(ValueError, match="needs the private key"):
        build_bundle(tmp_path / "v1", key=public, key_id="ed-1")


def test_hmac_key_files_hold_hex(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(SECRET.hex() + "\n")
    assert load_key(tmp_path / "k") == SECRET
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        load_key(tmp_path / "short")
    (tmp_path / "raw").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="as hex"):
        load_key(tmp_path / "raw")


# ── a bundle file as a Live source ───────────────────────────────────────────


def move_into_place(data: bytes, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_refused_bundle_leaves_the_active_version_serving(
    case: str, good: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "policy.bundle"
    path.write_bytes(good)
    live = watch_bundle(path, keys=KEYS, state_dir=tmp_path / "state", start=False)
    before = live.active
    v2 = build(make_dir(tmp_path / "v2", tag="b"))
    tamper, stage, _ = TAMPERING[case]
    move_into_place(tamper(v2, tmp_path / "t"), path)
    attempt = live.watcher.reload()
    assert attempt is not None and not attempt.ok and attempt.diagnostics
    assert live.active is before and live.decide(X).rules == ("a",)
    status = live.status()
    assert status.state == "DEGRADED" and status.reloads_rejected == 1
    assert status.last_attempt is not None and status.last_attempt.ok is False
    if stage:
        assert status.last_attempt.stage_failed == stage
    rejected = [c for c in read_changes(tmp_path / "state" / "changes.jsonl")]
    assert rejected[-1]["action"] == "reject" and rejected[-1]["from_digest"] == before.digest
    # the same bytes are not verified again; the good bundle that follows activates
    assert live.watcher.reload() is None
    move_into_place(v2, path)
    attempt = live.watcher.reload()
    assert attempt is not None and attempt.ok
    assert live.decide(X).rules == ("b",) and live.status().state == "READY"
    live.close()


def test_a_watched_bundle_file_reloads_when_replaced_by_a_move(good: bytes, tmp_path: Path) -> None:
    path = tmp_path / "policy.bundle"
    path.write_bytes(good)
    live = watch_bundle(path, keys=KEYS, state_dir=tmp_path / "state", poll_interval_s=0.5)
    assert live.decide(X).rules == ("a",)
    first = live.active.digest
    move_into_place(build(make_dir(tmp_path / "v2", tag="b")), path)
    wait_for(lambda: live.decide(X).rules == ("b",), "the moved-in bundle going live")
    move_into_place(build(make_dir(tmp_path / "v3", tag="c"), key=bytes(32)), path)  # other key
    wait_for(lambda: live.watcher.reloads_rejected == 1, "the foreign-key bundle refused")
    assert live.decide(X).rules == ("b",)
    # a symlink swap (Kubernetes `..data`): the link is replaced, the file never written
    target = tmp_path / "v4.bundle"
    target.write_bytes(build(make_dir(tmp_path / "v4", tag="d")))
    link = tmp_path / ".link.tmp"
    link.symlink_to(target)
    os.replace(link, path)
    wait_for(lambda: live.decide(X).rules == ("d",), "the symlinked bundle going live")
    log = tmp_path / "state" / "changes.jsonl"
    wait_for(lambda: len(list(read_changes(log))) == 4, "its change record")  # after the swap
    actions = [c["action"] for c in read_changes(log)]
    assert actions == ["activate", "activate", "reject", "activate"]
    changes = list(read_changes(tmp_path / "state" / "changes.jsonl"))
    assert changes[1]["from_digest"] == first and changes[1]["actor"] == "key:ops-1"
    live.close()


def test_a_host_starts_on_the_last_good_bundle_when_its_file_is_bad(
    good: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "policy.bundle"
    path.write_bytes(good)
    watch_bundle(path, keys=KEYS, state_dir=tmp_path / "state", start=False).close()
    path.write_bytes(good[:1000])
    live = watch_bundle(path, keys=KEYS, state_dir=tmp_path / "state", start=False)
    assert live.decide(X).rules == ("a",) and live.status().state == "DEGRADED"
    live.close()
    with pytest.raises(BundleError, match="no last-known-good bundle"):
        watch_bundle(path, keys=KEYS, state_dir=tmp_path / "empty", start=False)


def test_loading_a_bundle_imports_no_compiler(good: bytes, tmp_path: Path) -> None:
    path = tmp_path / "policy.bundle"
    path.write_bytes(good)
    code = (
        "import sys, json\n"
        "from charter.runtime.live_bundle import watch_bundle\n"
        "from charter.runtime import live_redis_source\n"
        f"live = watch_bundle({str(path)!r}, keys={{'ops-1': {SECRET!r}}}, start=False)\n"
        "assert live.decide({'tool': 'x', 'args': {'n': 1}}).allowed\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'lark'"
        " or m.split('.')[:2] in (['charter', 'compiler'], ['charter', 'language'],"
        " ['charter', 'control']))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# ── the command ──────────────────────────────────────────────────────────────


def test_charter_bundle_writes_a_verifiable_bundle_or_exits_1(tmp_path: Path) -> None:
    where = make_dir(tmp_path / "v1")
    (tmp_path / "key").write_text(SECRET.hex())
    out = tmp_path / "p.bundle"
    args = ["bundle", str(where), "-o", str(out), "--key-file", str(tmp_path / "key")]
    ok = CliRunner().invoke(cli, [*args, "--key-id", "ops-1", "--actor", "release-bot"])
    assert ok.exit_code == 0, ok.output
    assert "key ops-1" in ok.output
    bundle = verify_bundle(out.read_bytes(), KEYS)
    assert bundle.builder == "release-bot" and bundle.manifest["gate"]["property_examples"] == 25
    assert CliRunner().invoke(cli, args).exit_code == 2  # no --key-id
    assert CliRunner().invoke(cli, ["bundle", str(where), "-o", str(out)]).exit_code == 2
    (where / "policy.agentpolicy").write_text(policy_text("deny"))
    out.unlink()
    failed = CliRunner().invoke(cli, [*args, "--key-id", "ops-1", "--properties", "all"])
    assert failed.exit_code == 1 and "gate failed at tests" in failed.output
    assert not out.exists()


def test_links_directories_and_oversized_archives_are_refused(
    good: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    for kind in (tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.GNUTYPE_SPARSE):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in members(good):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            odd = tarfile.TarInfo("src/odd")
            odd.type = kind
            odd.linkname = "/etc/passwd"
            tar.addfile(odd)
        with pytest.raises(BundleError, match="'src/odd' is not a regular file"):
            verify_bundle(out.getvalue(), KEYS)
    import charter.runtime.bundle as bundle_mod

    monkeypatch.setattr(bundle_mod, "MAX_BYTES", len(good) - 1)
    with pytest.raises(BundleError, match="more than the"):
        verify_bundle(good, KEYS)
    monkeypatch.setattr(bundle_mod, "MAX_BYTES", len(good) // 2)
    with pytest.raises(BundleError, match="more than the"):
        verify_bundle(good, KEYS)


def test_charter_status_reads_a_bundle_hosts_state_dir(good: bytes, tmp_path: Path) -> None:
    path = tmp_path / "policy.bundle"
    path.write_bytes(good)
    state = tmp_path / "state"
    live = watch_bundle(path, keys=KEYS, state_dir=state, start=False)
    shown = CliRunner().invoke(cli, ["status", "--state-dir", str(state)])
    assert shown.exit_code == 0 and "READY" in shown.output, shown.output
    assert live.active.digest in shown.output
    move_into_place(good[:3000], path)  # torn
    live.watcher.reload()
    shown = CliRunner().invoke(cli, ["status", "--state-dir", str(state), "--format", "json"])
    assert shown.exit_code == 1
    body = json.loads(shown.output)
    assert body["state"] == "DEGRADED" and body["last_attempt"]["ok"] is False
    live.close()


def test_rollback_to_a_kept_bundle_pins_it_until_the_file_changes(tmp_path: Path) -> None:
    from charter.runtime.live import LiveError

    path = tmp_path / "policy.bundle"
    versions = {t: build(make_dir(tmp_path / t, tag=t)) for t in "abcd"}
    path.write_bytes(versions["a"])
    state = tmp_path / "state"
    live = watch_bundle(path, keys=KEYS, state_dir=state, start=False)
    digests = {}
    for t in "abc":
        move_into_place(versions[t], path)
        live.watcher.reload()
        digests[t] = live.active.digest
    assert [k.digest for k in live.status().history] == [digests[t] for t in "abc"]

    assert live.rollback(actor="oncall", reason="bad c") == digests["b"]
    assert live.decide(X).rules == ("b",)
    assert live.watcher.reload() is None  # the file still holds c: pinned
    status = live.status()
    assert status.pinned == digests["b"] and live.decide(X).rules == ("b",)
    live.unpin(actor="oncall")
    assert live.decide(X).rules == ("c",) and live.status().pinned is None

    assert live.rollback(digests["a"][:6]) == digests["a"]
    assert live.decide(X).rules == ("a",)
    move_into_place(versions["d"], path)  # another bundle ends the pin
    attempt = live.watcher.reload()
    assert attempt is not None and attempt.ok and live.decide(X).rules == ("d",)
    with pytest.raises(LiveError, match="no kept bundle ffff"):
        live.rollback("ffff")
    actions = [c["action"] for c in read_changes(state / "changes.jsonl")]
    assert actions[-6:] == ["activate", "rollback", "unpin", "activate", "rollback", "activate"]
    shown = CliRunner().invoke(cli, ["history", "--state-dir", str(state)])
    assert shown.exit_code == 0
    live.close()


def test_charter_rollback_and_unpin_reach_a_bundle_host(tmp_path: Path) -> None:
    path = tmp_path / "policy.bundle"
    state = tmp_path / "state"
    path.write_bytes(build(make_dir(tmp_path / "a", tag="a")))
    live = watch_bundle(path, keys=KEYS, state_dir=state, poll_interval_s=0.5, step_ms=10)
    first = live.active.digest
    move_into_place(build(make_dir(tmp_path / "b", tag="b")), path)
    wait_for(lambda: len(live.status().history) == 2, "b going live and kept")
    listed = CliRunner().invoke(cli, ["history", "--state-dir", str(state), "--format", "json"])
    assert [v["digest"] for v in json.loads(listed.output)["versions"]][-2:] == [
        first,
        live.active.digest,
    ]
    out = CliRunner().invoke(cli, ["rollback", "--state-dir", str(state), "--actor", "oncall"])
    assert out.exit_code == 0, out.output
    assert live.decide(X).rules == ("a",) and live.status().pinned == first
    out = CliRunner().invoke(cli, ["unpin", "--state-dir", str(state)])
    assert out.exit_code == 0, out.output
    assert live.decide(X).rules == ("b",)
    out = CliRunner().invoke(cli, ["rollback", "--state-dir", str(state), "--to", first[:6]])
    assert out.exit_code == 0 and live.decide(X).rules == ("a",)
    bad = CliRunner().invoke(cli, ["rollback", "--state-dir", str(state), "--to", "ffff"])
    assert bad.exit_code == 2  # no kept version: refused before anything is written
    live.close()
    # a restart does not apply the last command again
    again = watch_bundle(path, keys=KEYS, state_dir=state, start=False)
    assert again.watcher.command_seq == 3 and not again.watcher.follow_commands()
    assert again.decide(X).rules == ("b",)  # the file's bundle: pins do not survive restarts
    again.close()
