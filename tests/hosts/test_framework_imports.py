"""Every adapter module imports without its framework, and `import charter` loads none."""

from __future__ import annotations

import subprocess
import sys

import pytest

ADAPTERS = {
    "langchain": ("langchain", "langgraph", "langchain_core"),
    "pydantic_ai": ("pydantic_ai",),
    "openai_agents": ("agents",),
    "adk": ("google.adk",),
}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_adapter_imports_without_its_framework(module: str) -> None:
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in ADAPTERS[module])
    done = _run(f"import sys\n{blocked}import charter.hosts.adapters.{module}\nprint('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_import_charter_loads_no_framework() -> None:
    frameworks = [name for names in ADAPTERS.values() for name in names]
    done = _run(f"import sys, charter\nprint([m for m in {frameworks!r} if m in sys.modules])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
