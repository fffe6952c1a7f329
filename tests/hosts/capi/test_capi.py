"""libcharter: built with cffi's embedding API, called from a C program compiled here with
the system cc. Every example request decided through the C ABI gives `Policy.decide`'s
JSON byte for byte (the sidecar's stateless decide gives the same bytes:
tests/hosts/serve/test_sidecar.py), from one thread and from four; the error paths answer
JSON, never NULL; a guard approves and spends a grant; eight threads making their first
call at once all get answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

import charter
from charter.hosts.capi.build import build

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[2] / "examples"
FOLDERS = sorted(p for p in EXAMPLES.iterdir() if (p / "requests").is_dir())


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libcharter.so and the C test program linked against it."""
    out = tmp_path_factory.mktemp("capi")
    lib = build(out)
    assert lib == out / "libcharter.so" and (out / "charter.h").is_file()
    exe = out / "main"
    subprocess.run(
        [
            "cc",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            f"-I{out}",
            str(HERE / "main.c"),
            f"-L{out}",
            "-lcharter",
            f"-Wl,-rpath,{out}",
            "-o",
            str(exe),
        ],
        check=True,
    )
    return exe


def _run(exe: Path, *args: str) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHARTER_PYTHONPATH")}
    done = subprocess.run([str(exe), *args], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return [line.split("\t") for line in done.stdout.decode().splitlines()]


def test_the_library_links_this_interpreters_libpython(program: Path) -> None:
    if shutil.which("ldd") is None:
        pytest.skip("no ldd")
    out = subprocess.run(
        ["ldd", str(program.with_name("libcharter.so"))], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if "libpython" in x)
    assert str(sysconfig.get_config_var("LIBDIR")) in line


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_corpus_through_the_c_abi_is_policy_decide(program: Path, folder: Path) -> None:
    requests = sorted((folder / "requests").glob("*.json"))
    lines = _run(program, "corpus", str(folder), *map(str, requests))
    assert lines[0][0] == "VERSION" and "C ABI 1" in lines[0][1]
    policy = charter.load(folder)
    got = {row[1]: row[2] for row in lines if row[0] == "DECISION"}
    assert list(got) == [p.name for p in requests]
    for path in requests:
        assert got[path.name].encode() == policy.decide(path.read_bytes()).to_json(), path.name
    rows = {row[0]: row[1:] for row in lines}
    # error paths: an error JSON for a bad load, a deny (never NULL) for bad input
    assert "no .agentpolicy files" in rows["LOADERR"][0]
    assert '"code":"CH' in rows["SOURCEERR"][0] and '"line":2' in rows["SOURCEERR"][0]
    for key in ("BADJSON", "NULLREQ", "BADHANDLE"):
        assert rows[key][0].startswith('{"effect":"deny","allowed":false'), key
    assert "not valid JSON" in rows["BADJSON"][0]
    threads, calls, mismatches = rows["THREADS"]
    assert threads == "4" and int(calls) == 4 * 250 * len(requests) and mismatches == "0"


def test_guard_approves_once_through_the_c_abi(program: Path) -> None:
    folder = EXAMPLES / "support"
    rows = {
        r[0]: r[1]
        for r in _run(
            program,
            "guard",
            str(folder),
            str(folder / "requests" / "04-refund-needs-approval.json"),
        )
    }
    assert '"effect":"require_approval"' in rows["CHECK"] and '"action":"' in rows["CHECK"]
    assert rows["GRANT"].startswith('{"grant":"cg1.')
    assert rows["RETRY"].startswith('{"effect":"allow"')
    assert '"effect":"require_approval"' in rows["REPLAY"] and "replayed" in rows["REPLAY"]
    assert rows["SETTLEBAD"] == "0"


def test_first_calls_from_eight_threads_all_answer(program: Path) -> None:
    folder = EXAMPLES / "support"
    rows = {
        r[0]: r[1:]
        for r in _run(program, "race", str(folder), str(folder / "requests" / "01-kb-search.json"))
    }
    assert rows["RACE"] == ["8", "8"]


NODE_DIR = HERE / "node"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_node_through_koffi_gets_the_same_decisions(program: Path, folder: Path) -> None:
    """A second language: Node loads libcharter with koffi (dlopen, RTLD_LOCAL: the
    library promotes libpython to global so Python's extension modules load)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "koffi").is_dir():
        pytest.skip("koffi is not installed (cd tests/hosts/capi/node && npm ci)")
    requests = sorted((folder / "requests").glob("*.json"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHARTER_PYTHONPATH")}
    done = subprocess.run(
        [
            node,
            str(NODE_DIR / "decide.js"),
            str(program.with_name("libcharter.so")),
            str(folder),
            *map(str, requests),
        ],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = [line.split("\t") for line in done.stdout.decode().splitlines()]
    policy = charter.load(folder)
    got = {r[1]: r[2] for r in rows if r[0] == "DECISION"}
    assert list(got) == [p.name for p in requests]
    for path in requests:
        assert got[path.name].encode() == policy.decide(path.read_bytes()).to_json(), path.name
    kinds = {r[0]: r[1] for r in rows}
    assert "no .agentpolicy files" in kinds["LOADERR"]
    assert kinds["BADJSON"].startswith('{"effect":"deny"')


def _lost(exe: Path, calls: int) -> tuple[int, int]:
    """valgrind's definitely + indirectly lost and possibly lost bytes for `calls` calls."""
    import re

    folder = EXAMPLES / "support"
    done = subprocess.run(
        [
            "valgrind",
            "--leak-check=full",
            str(exe),
            "leak",
            str(folder),
            str(folder / "requests" / "04-refund-needs-approval.json"),
            str(calls),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    def bytes_of(kind: str) -> int:
        m = re.search(rf"{kind}: ([\d,]+) bytes", done.stderr)
        assert m is not None, done.stderr[-2000:]
        return int(m.group(1).replace(",", ""))

    return bytes_of("definitely lost") + bytes_of("indirectly lost"), bytes_of("possibly lost")


@pytest.mark.skipif(not os.environ.get("CHARTER_VALGRIND"), reason="slow: CHARTER_VALGRIND=1")
def test_no_leak_per_call_under_valgrind(program: Path) -> None:
    """6,000 calls (decide, guard check, bad JSON) leak nothing beyond a run with none: the
    interpreter's one-time allocations are the same in both (about a minute each)."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    lost0, possibly0 = _lost(program, 0)
    lost, possibly = _lost(program, 2000)
    assert lost == lost0 == 0
    assert possibly - possibly0 < 8 * 1024  # one-time growth, not 6,000 answers' worth


def test_a_signed_bundle_loads_through_the_c_abi(program: Path, tmp_path: Path) -> None:
    """`charter_load_bundle`: a verified bundle decides as its policy does; one signed with
    another key is refused with the stage and reason, never loaded."""
    import json

    from charter.control.bundle import build_bundle

    folder = EXAMPLES / "support"
    request = folder / "requests" / "04-refund-needs-approval.json"
    secret = bytes(range(32))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"ops-1": secret.hex()}))
    for name, key in (("good", secret), ("bad", bytes(32))):
        built = build_bundle(folder, key=key, key_id="ops-1", properties=0)
        assert built.data is not None
        (tmp_path / f"{name}.bundle").write_bytes(built.data)
    rows = dict(_run(program, "bundle", str(tmp_path / "good.bundle"), str(keys), str(request)))
    expected = charter.load(folder).decide(request.read_bytes()).to_json()
    assert rows["BUNDLE"].encode() == expected  # the same policy, byte for byte
    bad = dict(_run(program, "bundle", str(tmp_path / "bad.bundle"), str(keys), str(request)))
    answer = json.loads(bad["BUNDLEERR"])
    assert answer["error"].startswith("bundle refused at signature: bad signature")
    assert answer["diagnostics"] == [
        {"stage": "signature", "message": "bad signature (key id 'ops-1')"}
    ]
