"""The hook's policy and state: a cache keyed by the sources' digest, loaded without the
compiler; a missing policy, a policy that does not compile, a corrupt saved policy or an
unusable state never let a call through (exit 2, the reason on stderr)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hookrun import POLICY, ROOT, Hook

AGENTS = ["claude-code", "cursor", "gemini", "codex", "copilot"]
RM = {
    "claude-code": "claude-code/pre_deny",
    "cursor": "cursor/pre_deny",
    "gemini": "gemini/pre_deny",
    "codex": "codex/pre_deny",
    "copilot": "copilot/pre_deny",
}


def _sample(agent: str, name: str = "pre_allow") -> bytes:
    return (Path(__file__).parent / "samples" / agent / f"{name}.json").read_bytes()


def _blocked(answer: object, *needles: str) -> None:
    assert answer.code == 2, answer  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in answer.stderr, answer.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize("agent", AGENTS)
def test_missing_policy_blocks(hook: Hook, agent: str, tmp_path: Path) -> None:
    answer = hook.run(agent, _sample(agent), policy=tmp_path / "nowhere")
    _blocked(answer, "no policy, so nothing is allowed", "nowhere: no such file or directory")
    assert answer.json  # the host's deny form, in case it reads stdout on exit 2


def test_no_policy_named_blocks(hook: Hook) -> None:
    _blocked(
        hook.run("claude-code", _sample("claude-code"), policy=None),
        "no --policy given and CHARTER_POLICY is not set",
    )
    # CHARTER_POLICY names it instead.
    assert (
        hook.run(
            "claude-code", _sample("claude-code"), policy=None, CHARTER_POLICY=str(POLICY)
        ).code
        == 0
    )


def test_empty_directory_and_broken_policy_block(hook: Hook, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _blocked(hook.run("claude-code", _sample("claude-code"), policy=empty), "no policy")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "p.agentpolicy").write_text('policy "x"\nallow tool "a" when args.n = 1\n')
    _blocked(
        hook.run("claude-code", _sample("claude-code"), policy=broken),
        "the policy does not compile",
        "p.agentpolicy:2",
    )


def _entries(hook: Hook) -> list[Path]:
    return sorted(hook.cache.glob("*.policy"))


def _own_cache(hook: Hook, tmp_path: Path) -> tuple[Hook, Path]:
    policy = tmp_path / "policy"
    shutil.copytree(POLICY, policy)
    return Hook(hook.home, tmp_path / "cache"), policy


def test_cache_is_made_once_and_follows_the_sources(hook: Hook, tmp_path: Path) -> None:
    own, policy = _own_cache(hook, tmp_path)
    assert own.run("claude-code", _sample("claude-code"), policy=policy).json == {}
    first = _entries(own)
    assert len(first) == 1
    assert own.run("claude-code", _sample("claude-code"), policy=policy).json == {}
    assert _entries(own) == first  # a hit: nothing new
    # An edited policy is another digest: compiled again, and its decision is the new one.
    text = (policy / "policy.agentpolicy").read_text()
    (policy / "policy.agentpolicy").write_text(
        text + '\ndeny tool "shell.run" when args.command like "echo*" because "quiet"\n'
    )
    answer = own.run("claude-code", _sample("claude-code"), policy=policy)
    assert answer.json["hookSpecificOutput"]["permissionDecisionReason"] == "quiet"
    assert len(_entries(own)) == 2


@pytest.mark.parametrize(
    "damage", [b"", b"CHARTER-POLICY/2\n\x00garbage", b"not a policy", b"CHARTER-POLICY/999\n"]
)
def test_corrupt_cache_entry_is_rebuilt_not_trusted(
    hook: Hook, tmp_path: Path, damage: bytes
) -> None:
    own, policy = _own_cache(hook, tmp_path)
    own.run("claude-code", _sample("claude-code"), policy=policy)
    (entry,) = _entries(own)
    entry.write_bytes(damage)
    denied = own.run("claude-code", _sample("claude-code", "pre_deny"), policy=policy)
    assert denied.code == 0
    assert denied.json["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert f"cached policy {entry} was unusable" in denied.stderr
    assert entry.read_bytes() != damage  # replaced by a good one
    again = own.run("claude-code", _sample("claude-code", "pre_deny"), policy=policy)
    assert "unusable" not in again.stderr


def test_saved_policy_is_used_and_a_corrupt_one_blocks(hook: Hook, tmp_path: Path) -> None:
    saved = tmp_path / "policy.charter"
    subprocess.run(
        [sys.executable, "-m", "charter.cli", "compile", str(POLICY), "-o", str(saved)],
        check=True,
        env=hook.env(),
        capture_output=True,
    )
    denied = hook.run("codex", _sample("codex", "pre_deny"), policy=saved)
    assert denied.json["hookSpecificOutput"]["permissionDecision"] == "deny"
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    for agent in AGENTS:
        _blocked(hook.run(agent, _sample(agent), policy=saved), "is not a usable compiled policy")


def test_unusable_state_blocks(hook: Hook, tmp_path: Path) -> None:
    state = tmp_path / "state-dir"
    state.mkdir()
    _blocked(
        hook.run("claude-code", _sample("claude-code"), "--state", str(state)),
        "cannot open the policy or its state",
    )
    # `memory` keeps nothing between calls and still decides.
    answer = hook.run("claude-code", _sample("claude-code", "pre_deny"), "--state", "memory")
    assert answer.json["hookSpecificOutput"]["permissionDecision"] == "deny"


@pytest.mark.parametrize("argv", [["--bogus"], ["--names", "sideways"], []])
def test_usage_errors_block(hook: Hook, argv: list[str]) -> None:
    cmd = [sys.executable, "-m", "charter.cli", "hook", *argv]
    proc = subprocess.run(
        cmd, input=_sample("claude-code"), capture_output=True, env=hook.env(), check=False
    )
    assert proc.returncode == 2
    assert b"charter: hook usage" in proc.stderr


def test_warm_cache_imports_no_compiler_parser_lark_or_click(hook: Hook) -> None:
    hook.run("claude-code", _sample("claude-code"))  # warms the cache
    script = (
        "import sys, json\n"
        "from charter.cli.hook import run\n"
        "import os\n"
        f"answer = run(['claude-code', '--policy', {str(POLICY)!r}], "
        f"open({str(Path(__file__).parent / 'samples/claude-code/pre_deny.json')!r}, 'rb')"
        ".read(), os.environ)\n"
        "print(json.dumps([answer.code, answer.stdout, sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=hook.env(),
        cwd=ROOT,
        check=True,
    )
    code, stdout, modules = json.loads(proc.stdout)
    assert code == 0 and "no rm in this project" in stdout
    loaded = set(modules)
    forbidden = {
        "lark",
        "click",
        "charter.compiler.pipeline",
        "charter.language.parser",
        "charter.language.checker",
        "charter.compiler.lower",
    }
    assert not loaded & forbidden, loaded & forbidden


def test_console_entry_goes_straight_to_the_hook(hook: Hook) -> None:
    script = (
        "import sys\nsys.argv = ['charter', 'hook', 'claude-code', '--policy', "
        f"{str(POLICY)!r}]\n"
        "import os\nout = os._exit\n"
        "before = set(sys.modules)\n"  # what the interpreter's site (.pth files) loaded
        "def seen(code):\n"
        "    print('EXIT', code, 'click' in sys.modules, file=sys.stderr, flush=True)\n"
        "    print('LOADED', ' '.join(sorted(set(sys.modules) - before)), file=sys.stderr,"
        " flush=True)\n"
        "    out(code)\n"
        "os._exit = seen\n"  # the hook leaves by os._exit, once its answer is flushed
        "from charter.cli.entry import main\n"
        "main()\n"
    )
    # Without site (-S, the site-packages on PYTHONPATH instead): this machine's .pth files
    # (an editable install's finder) load pathlib and more before any hook code runs.
    hook.run("claude-code", _sample("claude-code"))  # warms the cache: no compile below
    env = hook.env()
    site_dirs = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *site_dirs])
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script],
        input=_sample("claude-code"),
        capture_output=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.stdout.strip() == b"{}", proc.stderr
    assert b"EXIT 0 False" in proc.stderr
    assert proc.returncode == 0
    # What a warm allow never needs, and the hook process does not load: typing_extensions
    # (hidden while msgspec loads), and what is imported where it is used — logging (an
    # error to report), dataclasses and inspect (wrapping a function), secrets and hmac
    # (minting or checking a grant), pathlib and ipaddress (paths are text on the way; an
    # address is read only by the functions that read one), the decision log (--log).
    line = next(x for x in proc.stderr.decode().splitlines() if x.startswith("LOADED "))
    loaded = set(line.split()[1:])
    deferred = {"typing_extensions", "logging", "dataclasses", "inspect", "secrets", "hmac"}
    deferred |= {"pathlib", "ipaddress", "charter.runtime.audit", "charter.runtime.capture"}
    assert not loaded & deferred, loaded & deferred
    assert "msgspec" in loaded


def test_a_hook_that_cannot_load_blocks(hook: Hook, tmp_path: Path) -> None:
    """A broken install (here: msgspec failing to import) is exit 2, never Python's exit 1
    for an uncaught exception, which Claude Code reads as "let the call run"."""
    broken = tmp_path / "broken" / "msgspec"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('msgspec is broken here')\n")
    env = hook.env()
    env["PYTHONPATH"] = f"{broken.parent}{os.pathsep}{env['PYTHONPATH']}"
    proc = subprocess.run(
        [sys.executable, "-m", "charter.cli", "hook", "claude-code", "--policy", str(POLICY)],
        input=_sample("claude-code"),
        capture_output=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2, proc
    assert b"charter: the hook cannot load" in proc.stderr
    assert b"msgspec is broken here" in proc.stderr


def test_a_decision_that_needs_no_state_never_opens_it(hook: Hook) -> None:
    """The SQLite state (counters, tickets, held reservations) is opened by the first call
    that reads or writes it: a deny or an allow of this stateless policy loads no SQLite
    and leaves no database; a call that needs approval parks its ticket there."""
    state = hook.home / "state.db"
    script = (
        "import sys, json, os\n"
        "from charter.cli.hook import run\n"
        f"answer = run(['claude-code', '--policy', {str(POLICY)!r}], "
        "sys.stdin.buffer.read(), os.environ)\n"
        "print(json.dumps([answer.code, answer.stdout, 'sqlite3' in sys.modules]))\n"
    )
    for name in ("pre_deny", "pre_allow", "pre_redact"):
        proc = subprocess.run(
            [sys.executable, "-c", script],
            input=_sample("claude-code", name),
            capture_output=True,
            env=hook.env(),
            cwd=ROOT,
            check=True,
        )
        code, stdout, sqlite_loaded = json.loads(proc.stdout)
        assert code == 0 and stdout, proc.stderr
        assert not sqlite_loaded, name
    assert not state.exists()
    parked = hook.sample("claude-code", "pre_approval")
    assert parked.code == 0
    assert state.exists()
