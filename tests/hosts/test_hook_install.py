"""`charter hook install`: merges Charter's entries into each host's settings, keeps the
user's own hooks, and changes nothing the second time."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hookrun import MODULE, POLICY, SAMPLES, Hook

from charter.cli.hook_launcher import launcher_text

AGENTS = ["claude-code", "cursor", "gemini", "codex", "copilot"]
FILES = {
    "claude-code": ".claude/settings.json",
    "codex": ".codex/hooks.json",
    "gemini": ".gemini/settings.json",
    "cursor": ".cursor/hooks.json",
    "copilot": ".github/hooks/charter.json",
}


def _install(hook: Hook, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "charter.cli",
        "hook",
        "install",
        *args,
        "--policy",
        str(POLICY),
        "--project",
        str(project),
    ]
    return subprocess.run(argv, capture_output=True, text=True, env=hook.env(), check=False)


@pytest.mark.parametrize("agent", AGENTS)
def test_install_twice_changes_nothing_and_keeps_user_hooks(
    hook: Hook, tmp_path: Path, agent: str
) -> None:
    project = tmp_path / "project"
    path = project / FILES[agent]
    path.parent.mkdir(parents=True)
    event = {
        "claude-code": "PreToolUse",
        "codex": "PreToolUse",
        "gemini": "BeforeTool",
        "cursor": "preToolUse",
        "copilot": "preToolUse",
    }[agent]
    mine = {"matcher": "Bash", "hooks": [{"type": "command", "command": "./audit.sh"}]}
    path.write_text(json.dumps({"theme": "dark", "hooks": {event: [mine]}}))
    first = _install(hook, project, agent)
    assert first.returncode == 0, first.stderr
    settings = json.loads(path.read_text())
    assert settings["theme"] == "dark"
    assert settings["hooks"][event][0] == mine  # the user's hook, first and unchanged
    ours = json.dumps(settings["hooks"][event][1])
    assert f"hook {agent} --policy {POLICY}" in ours
    before = path.read_text()
    second = _install(hook, project, agent)
    assert second.returncode == 0 and "already installed" in second.stderr
    assert path.read_text() == before


def test_dry_run_prints_and_writes_nothing(hook: Hook, tmp_path: Path) -> None:
    out = _install(hook, tmp_path, "claude-code", "--dry-run", "--hook-args", "--ask-group user")
    assert out.returncode == 0
    settings = json.loads(out.stdout)
    (entry,) = settings["hooks"]["PreToolUse"]
    assert entry["matcher"] == "*"
    assert entry["hooks"][0]["command"].endswith(f"--policy {POLICY} --ask-group user")
    assert not (tmp_path / ".claude").exists()


def test_cursor_entries_fail_closed_and_copilot_names_the_event(hook: Hook, tmp_path: Path) -> None:
    cursor = json.loads(_install(hook, tmp_path, "cursor", "--dry-run").stdout)
    assert cursor["version"] == 1
    assert all(e["failClosed"] is True for es in cursor["hooks"].values() for e in es)
    copilot = json.loads(_install(hook, tmp_path, "copilot", "--dry-run").stdout)
    assert copilot["hooks"]["postToolUse"][0]["bash"].endswith(" postToolUse")


def test_unreadable_settings_are_left_alone(hook: Hook, tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text("{not json")
    out = _install(hook, tmp_path, "claude-code")
    assert out.returncode == 2 and "left unchanged" in out.stderr
    assert path.read_text() == "{not json"


def _bare_install(hook: Hook, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "charter.cli",
        "hook",
        "install",
        *args,
        "--project",
        str(project),
    ]
    return subprocess.run(argv, capture_output=True, text=True, env=hook.env(), check=False)


def test_http_install_writes_claude_code_http_hooks(hook: Hook, tmp_path: Path) -> None:
    project = tmp_path / "project"
    done = _bare_install(hook, project, "claude-code", "--http", "http://127.0.0.1:8181/")
    assert done.returncode == 0, done.stderr
    path = project / FILES["claude-code"]
    hooks = json.loads(path.read_text())["hooks"]
    assert set(hooks) == {"PreToolUse", "PostToolUse", "PostToolUseFailure", "UserPromptSubmit"}
    (pre,) = hooks["PreToolUse"]
    assert pre == {
        "matcher": "*",
        "hooks": [{"type": "http", "url": "http://127.0.0.1:8181/v1/hooks/claude-code"}],
    }
    assert hooks["UserPromptSubmit"] == [
        {"hooks": [{"type": "http", "url": "http://127.0.0.1:8181/v1/hooks/claude-code"}]}
    ]
    # A URL naming the route keeps its query; the command hook replaces it and back.
    url = "http://127.0.0.1:9/v1/hooks/claude-code?authoritative=1"
    assert _bare_install(hook, project, "claude-code", "--http", url).returncode == 0
    (pre,) = json.loads(path.read_text())["hooks"]["PreToolUse"]
    assert pre["hooks"][0]["url"] == url
    assert _install(hook, project, "claude-code").returncode == 0
    (pre,) = json.loads(path.read_text())["hooks"]["PreToolUse"]
    assert pre["hooks"][0]["type"] == "command"


def test_http_install_refuses_what_it_cannot_write(hook: Hook, tmp_path: Path) -> None:
    project = tmp_path / "project"
    cursor = _bare_install(hook, project, "cursor", "--http", "http://127.0.0.1:8181")
    assert cursor.returncode == 2 and "only Claude Code" in cursor.stderr
    mixed = _bare_install(
        hook, project, "claude-code", "--http", "http://x", "--hook-args=--authoritative"
    )
    assert mixed.returncode == 2 and "query" in mixed.stderr
    none = _bare_install(hook, project, "claude-code")
    assert none.returncode == 2 and "--policy is required" in none.stderr
    assert not (project / FILES["claude-code"]).exists()


def _command(path: Path, event: str = "PreToolUse") -> list[str]:
    entry = json.loads(path.read_text())["hooks"][event][0]
    return shlex.split(entry["hooks"][0]["command"])


def test_the_installed_command_runs_the_policy_and_nothing_from_the_project(
    hook: Hook, tmp_path: Path
) -> None:
    """The default entry is this interpreter under -I -S with a launcher: a `charter`
    package in the agent's working directory or on its PYTHONPATH, which `python -m
    charter.cli` would import, does not replace the hook."""
    project = tmp_path / "project"
    assert _install(hook, project, "claude-code").returncode == 0
    words = _command(project / FILES["claude-code"])
    assert words[:2] == [sys.executable, "-IS"]
    launcher = Path(words[2])
    assert launcher.parent == hook.home / ".local" / "share" / "charter" / "bin"
    assert launcher.name.startswith("charter-") and launcher.name.endswith("-hook")
    assert words[3:] == ["claude-code", "--policy", str(POLICY)]
    fake = project / "charter"
    (fake / "cli").mkdir(parents=True)
    for init in (fake / "__init__.py", fake / "cli" / "__init__.py"):
        init.write_text("import sys\nprint('{}')\nsys.exit(0)\n")  # would allow everything
    env = {**hook.env(), "PYTHONPATH": str(project)}
    for name, decision in (("pre_deny", "deny"), ("pre_redact", "allow")):
        proc = subprocess.run(
            words,
            input=(SAMPLES / "claude-code" / f"{name}.json").read_bytes(),
            capture_output=True,
            env=env,
            cwd=project,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert answer["hookSpecificOutput"]["permissionDecision"] == decision
    module = Hook(hook.home, hook.cache, MODULE).sample("claude-code", "pre_deny")
    assert module.json["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_the_launcher_is_written_once_and_not_on_a_dry_run(hook: Hook, tmp_path: Path) -> None:
    bin_dir = hook.home / ".local" / "share" / "charter" / "bin"
    dry = _install(hook, tmp_path / "a", "claude-code", "--dry-run")
    assert dry.returncode == 0 and not bin_dir.exists()
    assert _install(hook, tmp_path / "a", "claude-code").returncode == 0
    (launcher,) = bin_dir.iterdir()
    stamp = launcher.stat().st_mtime_ns
    assert _install(hook, tmp_path / "b", "codex").returncode == 0
    assert list(bin_dir.iterdir()) == [launcher] and launcher.stat().st_mtime_ns == stamp
    assert _command(tmp_path / "b" / FILES["codex"])[2] == str(launcher)
    own = _install(hook, tmp_path / "c", "claude-code", "--launcher-dir", str(tmp_path / "l"))
    assert own.returncode == 0
    assert Path(_command(tmp_path / "c" / FILES["claude-code"])[2]).parent == tmp_path / "l"


def test_command_names_another_way_to_run_charter(hook: Hook, tmp_path: Path) -> None:
    out = _install(hook, tmp_path, "claude-code", "--dry-run", "--command", "charter")
    (entry,) = json.loads(out.stdout)["hooks"]["PreToolUse"]
    assert entry["hooks"][0]["command"] == f"charter hook claude-code --policy {POLICY}"


@pytest.mark.parametrize("agent", AGENTS)
def test_a_launcher_that_cannot_find_charter_blocks(hook: Hook, tmp_path: Path, agent: str) -> None:
    """A launcher left behind by a moved or deleted install exits 2 (a block in every
    host; Python's own exit 1 lets the call run in Claude Code) and says what to do."""
    stale = tmp_path / "charter-stale-hook"
    stale.write_text(launcher_text([str(tmp_path / "gone")]))
    proc = subprocess.run(
        [sys.executable, "-IS", str(stale), agent, "--policy", str(POLICY)],
        input=b"{}",
        capture_output=True,
        env=hook.env(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert b"cannot load Charter" in proc.stderr
    assert b"charter hook install" in proc.stderr


def test_the_agent_may_be_named_by_option(hook: Hook, tmp_path: Path) -> None:
    """`charter hook install --agent NAME`, as the README and the issue write it."""
    by_option = _install(hook, tmp_path, "--agent", "codex", "--dry-run")
    positional = _install(hook, tmp_path, "codex", "--dry-run")
    assert by_option.returncode == 0, by_option.stderr
    assert by_option.stdout == positional.stdout
    clash = _install(hook, tmp_path, "cursor", "--agent", "codex", "--dry-run")
    assert clash.returncode == 2 and "two agents" in clash.stderr
    none = _install(hook, tmp_path, "--dry-run")
    assert none.returncode == 2 and "name the agent" in none.stderr
