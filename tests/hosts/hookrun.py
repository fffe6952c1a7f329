"""Running the real `charter hook` process on a recorded host event."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
POLICY = HERE / "policy"
SAMPLES = HERE / "samples"


@dataclass
class Answer:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Hook:
    """`charter hook` with its own state and cache directories."""

    home: Path
    cache: Path
    #: What starts the hook: by default the launcher command `charter hook install` writes
    #: (`python -IS <launcher>`); `MODULE` is `python -m charter.cli hook`.
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.command:
            self.command = launcher_command()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        env.update(
            PYTHONPATH=str(ROOT),
            HOME=str(self.home),
            CHARTER_CACHE_DIR=str(self.cache),
            CHARTER_STATE=str(self.home / "state.db"),
            **extra,
        )
        return env

    def run(
        self,
        agent: str,
        stdin: bytes | str,
        *args: str,
        policy: Path | str | None = POLICY,
        **env: str,
    ) -> Answer:
        argv = [*self.command, agent, *args]
        if policy is not None:
            argv += ["--policy", str(policy)]
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            argv,
            input=data,
            capture_output=True,
            env=self.env(**env),
            cwd=self.home,
            timeout=60,
            check=False,
        )
        return Answer(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    def sample(self, agent: str, name: str, *args: str, **kw: Any) -> Answer:
        return self.run(agent, (SAMPLES / agent / f"{name}.json").read_bytes(), *args, **kw)

    def approvals(self, *args: str) -> Answer:
        argv = [sys.executable, "-m", "charter.cli", "approvals", *args]
        proc = subprocess.run(
            argv, capture_output=True, env=self.env(), cwd=self.home, timeout=60, check=False
        )
        return Answer(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


MODULE = (sys.executable, "-m", "charter.cli", "hook")


@functools.cache
def launcher_command() -> tuple[str, ...]:
    """The command `charter hook install` writes, with its launcher written once per test
    process by a process importing this tree (as an install does)."""
    directory = tempfile.mkdtemp(prefix="charter-launcher-")
    atexit.register(shutil.rmtree, directory, True)
    code = (
        "import json, sys\n"
        "from charter.cli.hook_launcher import hook_command, write_launcher\n"
        "print(json.dumps(hook_command(write_launcher(sys.argv[1]))))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code, directory],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return tuple(json.loads(out.stdout))


def event(agent: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / agent / f"{name}.json").read_text())
    return loaded
