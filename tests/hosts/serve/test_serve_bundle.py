"""`charter serve BUNDLE --bundle-key ID=FILE` (issue 16, L-S2): the sidecar serves a signed
bundle's compiled artifact, verified, never compiled; with `--state-dir` it follows the
file (replace by move) and a refused bundle leaves the served version in place, visible
on `/health?strict` and `/status`; over a real uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from servekit import serving

from charter.cli.serve import build
from charter.control.bundle import build_bundle
from tests.waiting import wait_for

CALL = {"tool": "kb.search", "session": {"id": "s-b"}, "args": {"q": "x"}}
SECRET = bytes(range(32))


def bundle(tmp: Path, tag: str, key: bytes = SECRET) -> bytes:
    d = tmp / f"src-{tag}"
    d.mkdir()
    (d / "kb.agentpolicy").write_text(
        f'policy "kb"\ndefault deny\ntool "kb.search" (q: str)\n'
        f'@id("{tag}-search")\nallow tool "kb.search"\n'
    )
    built = build_bundle(d, key=key, key_id="ops-1", properties=0)
    assert built.data is not None
    return built.data


def move_into_place(data: bytes, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def options(policy: Path, key: Path, **kw: object) -> dict[str, object]:
    return {
        "policy": str(policy),
        "state": "memory",
        "secret_file": None,
        "approvers_path": None,
        "log": None,
        "max_body": 1 << 20,
        "bundle_keys": [f"ops-1={key}"],
        **kw,
    }


@pytest.fixture
def key(tmp_path: Path) -> Path:
    (tmp_path / "ops-1.key").write_text(SECRET.hex())
    return tmp_path / "ops-1.key"


def test_a_live_sidecar_follows_a_bundle_file(tmp_path: Path, key: Path) -> None:
    path = tmp_path / "kb.bundle"
    path.write_bytes(bundle(tmp_path, "a"))
    sidecar = build(**options(path, key, state_dir=str(tmp_path / "state")))  # type: ignore[arg-type]
    assert sidecar.live is not None
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["a-search"]
        move_into_place(bundle(tmp_path, "b"), path)
        wait_for(
            lambda: http.post("/v1/decide", json=CALL).json()["rules"] == ["b-search"],
            "the new bundle serving",
        )
        move_into_place(bundle(tmp_path, "c", key=bytes(32)), path)  # signed with another key
        wait_for(lambda: http.get("/health?strict").status_code == 503, "strict health fails")
        body = http.get("/status").json()
        assert body["state"] == "DEGRADED" and body["last_attempt"]["stage_failed"] == "signature"
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["b-search"]
        # POST /v1/reload answers for a bundle too: unchanged bytes are not tried again
        assert http.post("/v1/reload").json()["changed"] is False
    sidecar.live.close()


def test_a_fixed_sidecar_verifies_the_bundle_at_start_and_on_reload(
    tmp_path: Path, key: Path
) -> None:
    path = tmp_path / "kb.bundle"
    path.write_bytes(bundle(tmp_path, "a"))
    sidecar = build(**options(path, key))  # type: ignore[arg-type]
    assert sidecar.live is None
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["a-search"]
        path.write_bytes(bundle(tmp_path, "b", key=bytes(32)))
        refused = http.post("/v1/reload").json()
        assert refused["reloaded"] is False and "bad signature" in str(refused["diagnostics"])
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["a-search"]
        path.write_bytes(bundle(tmp_path, "c"))
        assert http.post("/v1/reload").json()["reloaded"] is True
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["c-search"]


def test_a_bundle_that_does_not_verify_is_never_served(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kb.bundle"
    path.write_bytes(bundle(tmp_path, "a", key=bytes(32)))
    with pytest.raises(SystemExit) as stopped:
        build(**options(path, key))  # type: ignore[arg-type]
    assert stopped.value.code == 2 and "bad signature" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build(**options(path, key, bundle_keys=[]))  # type: ignore[arg-type]
    assert "give the keys that verify them" in capsys.readouterr().err
    src = tmp_path / "src-a"
    with pytest.raises(SystemExit):
        build(**options(src, key))  # type: ignore[arg-type]
    assert "--bundle-key is for a bundle POLICY" in capsys.readouterr().err


def test_a_sidecar_follows_the_bundles_pushed_to_redis(
    tmp_path: Path, key: Path, redis_url: str
) -> None:
    import uuid

    from charter.runtime.live_redis_source import RedisSource

    prefix = f"test-{uuid.uuid4().hex}:"
    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "a"))
    sidecar = build(  # type: ignore[arg-type]
        **options(redis_url, key, state_dir=str(tmp_path / "state"), bundle_prefix=prefix)
    )
    assert sidecar.live is not None
    with serving(sidecar.app()) as url, httpx.Client(base_url=url) as http:
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["a-search"]
        writer.push(bundle(tmp_path, "b"))
        wait_for(
            lambda: http.post("/v1/decide", json=CALL).json()["rules"] == ["b-search"],
            "the pushed bundle serving",
        )
        writer.channel = f"{prefix}nobody"  # announced nowhere: POST /v1/reload reads it
        writer.push(bundle(tmp_path, "c", key=bytes(32)))
        refused = http.post("/v1/reload").json()
        assert refused["reloaded"] is False or refused["changed"] is False
        wait_for(lambda: http.get("/health?strict").status_code == 503, "the refusal shown")
        assert http.get("/status").json()["last_attempt"]["stage_failed"] == "signature"
        assert http.post("/v1/decide", json=CALL).json()["rules"] == ["b-search"]
    sidecar.live.close()
    with pytest.raises(SystemExit):
        build(**options(redis_url, key))  # type: ignore[arg-type]
